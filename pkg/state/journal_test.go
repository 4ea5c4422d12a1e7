package state

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

// TestJournalRoundTrip: what is appended is read back, by Read (the
// cleanup command) and by the next Open, in the order appended.
func TestJournalRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ancestors.json")
	st, s, err := Open(path, "/cg v2", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Scope != "/cg v2" || len(s.Requests) != 0 {
		t.Fatalf("Open on nothing = %+v; want an empty state of scope /cg v2", s)
	}
	recs := []*Record{
		{Requests: map[string]int64{"a": 1, "b": 2}, Containers: map[string]*Container{"a": {Path: "/p/a", Set: map[string]string{"memory.min": "1"}}}},
		{Ancestors: []Value{{Path: "/kubepods", File: "memory.min", Value: 10, Baseline: 4}, {Path: "/kubepods/burstable", File: "memory.low", Value: 7}}},
		{Requests: map[string]int64{"b": 3}, DropRequests: []string{"a"}, DropContainers: []string{"a"}},
		{Ancestors: []Value{{Path: "/kubepods", File: "memory.min", Value: 12, Baseline: 4, Previous: ptr[int64](10)}},
			DropAncestors: []Value{{Path: "/kubepods/burstable", File: "memory.low"}}},
		{},
	}
	for _, r := range recs {
		if err := st.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	want := &State{Scope: "/cg v2", Requests: map[string]int64{"b": 3}, Containers: map[string]*Container{},
		Ancestors: []Value{{Path: "/kubepods", File: "memory.min", Value: 12, Baseline: 4, Previous: ptr[int64](10)}}}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	got.Journal = 0
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Read = %+v; want %+v", got, want)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2, s2, err := Open(path, "/cg v2", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	s2.Journal = 0
	if !reflect.DeepEqual(s2, want) {
		t.Errorf("Open after restart = %+v; want %+v", s2, want)
	}
	gens, _ := journals(path)
	if len(gens) != 1 {
		t.Errorf("journals after Open: %v; want only the new one", gens)
	}
	if _, s3, _ := Open(path, "/other v2", nil); len(s3.Requests) != 0 || s3.Scope != "/other v2" {
		t.Errorf("Open for another scope = %+v; want an empty state", s3)
	}
}

// TestJournalCrashLeftovers: a record cut short by a crash is skipped
// silently; a bad line elsewhere is reported by name and line, the rest
// kept; a journal the snapshot already took in (crash between the
// snapshot's rename and the journal's removal) changes nothing.
func TestJournalCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ancestors.json")
	snap := `{"scope":"s","requests":{"a":5,"b":6},"journal":3}`
	if err := os.WriteFile(path, []byte(snap), 0o600); err != nil {
		t.Fatal(err)
	}
	files := map[uint64]string{
		// Taken in by the snapshot: the old value of a must not come back.
		2: `{"req":{"a":1}}` + "\n",
		3: `{"req":{"c":7}}` + "\n" + `{not json}` + "\n" + `{"reqDrop":["b"]}` + "\n",
		4: `{"req":{"d":8}}` + "\n" + `{"req":{"e"`,
	}
	for g, data := range files {
		if err := os.WriteFile(journalName(path, g), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Load(path, "s")
	if err == nil || !strings.Contains(err.Error(), journalName(path, 3)+" line 2") || strings.Contains(err.Error(), "-4") {
		t.Errorf("Load error = %v; want one naming line 2 of journal 3 only", err)
	}
	want := map[string]int64{"a": 5, "c": 7, "d": 8}
	if !reflect.DeepEqual(s.Requests, want) {
		t.Errorf("Load requests = %v; want %v", s.Requests, want)
	}
	st, s2, _ := Open(path, "s", nil)
	defer st.Close()
	if !reflect.DeepEqual(s2.Requests, want) {
		t.Errorf("Open requests = %v; want %v", s2.Requests, want)
	}
	if gens, _ := journals(path); !reflect.DeepEqual(gens, []uint64{5}) {
		t.Errorf("journals after Open = %v; want [5]", gens)
	}
}

// TestJournalCompaction: the journal is folded into the snapshot once it
// outgrows it, in the background; nothing appended meanwhile is lost, and
// the bytes written per record stay those of the record (amortized: the
// snapshots add a bounded share).
func TestJournalCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ancestors.json")
	st, _, err := Open(path, "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const live, events = 2000, 20000
	var recBytes uint64
	start := st.BytesWritten()
	for i := range events {
		r := &Record{Requests: map[string]int64{fmt.Sprintf("c%05d", i): int64(i)}}
		if i >= live {
			r.DropRequests = []string{fmt.Sprintf("c%05d", i-live)}
		}
		if err := st.Append(r); err != nil {
			t.Fatal(err)
		}
		line, _ := json.Marshal(r)
		recBytes = max(recBytes, uint64(len(line)+1))
	}
	st.Wait()
	if gens, _ := journals(path); len(gens) > 2 {
		t.Errorf("journals after compaction: %v; want at most the current and one being folded", gens)
	}
	s, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Requests) != live || s.Requests[fmt.Sprintf("c%05d", events-1)] != events-1 || s.Requests[fmt.Sprintf("c%05d", events-live)] != events-live {
		t.Errorf("after %d events: %d requests; want the last %d", events, len(s.Requests), live)
	}
	perEvent := float64(st.BytesWritten()-start) / events
	if recBytes > 64 || perEvent > 4*float64(recBytes) {
		t.Errorf("bytes written: at most %d per record, %.0f per event with snapshots; want <= 64 and <= 4x", recBytes, perEvent)
	}
}

// TestAppendReportsWriteErrors: a record that cannot be written is an
// error naming the journal, never a silent loss.
func TestAppendReportsWriteErrors(t *testing.T) {
	st, _, err := Open(filepath.Join(t.TempDir(), "ancestors.json"), "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = st.f.Close() // the journal's file goes bad under the store
	err = st.Append(&Record{Requests: map[string]int64{"a": 1}})
	if err == nil || !strings.Contains(err.Error(), "failed to save state to ") || !strings.Contains(err.Error(), ".journal-1") {
		t.Errorf("Append on a closed journal = %v; want an error naming the journal", err)
	}
}

// BenchmarkReplay replays a journal of 20 000 events over 2 000 ancestor
// values: linear in records plus values (a replay that re-sorted the
// ancestors per record took seconds at 10 000 containers).
func BenchmarkReplay(b *testing.B) {
	path := filepath.Join(b.TempDir(), "ancestors.json")
	st, _, err := Open(path, "s", nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 20000 {
		r := &Record{Ancestors: []Value{{Path: fmt.Sprintf("/kubepods/burstable/pod%04d", i%2000), File: "memory.min", Value: int64(i)}}}
		if err := st.Append(r); err != nil {
			b.Fatal(err)
		}
	}
	st.Wait()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s, err := Read(path)
		if err != nil || len(s.Ancestors) != 2000 {
			b.Fatalf("Read = %d ancestors, %v", len(s.Ancestors), err)
		}
	}
}
