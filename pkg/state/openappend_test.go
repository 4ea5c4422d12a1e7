package state

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// hookRun is one short-lived writer: OpenAppend, one record, Close.
func hookRun(t *testing.T, path, scope string, rec *Record) {
	t.Helper()
	st, _, err := OpenAppend(path, scope, func(err error) { t.Errorf("compaction: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Append(rec); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOpenAppend: hook runs append to the newest journal and leave the
// snapshot alone until the journals outweigh a quarter of it (at least
// 4 KiB), then fold them; every record is read back.
func TestOpenAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	const scope = "/sys/fs/cgroup v2"
	// A first writer (the plugin, or a first hook) makes the snapshot:
	// 200 requests, about 10 KiB.
	st, _, err := Open(path, scope, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]int64{}
	for i := range 200 {
		base[fmt.Sprintf("base-%03d", i)] = int64(i) << 20
	}
	if err := st.Append(&Record{Requests: base}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	hookRun(t, path, scope, &Record{Requests: map[string]int64{"warm": 1}}) // folds the first writer's journal
	snap, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	gens, _ := journals(path)
	if len(snap) < 4<<10 || len(gens) != 1 {
		t.Fatalf("after the fold: snapshot %d B, journals %v; want > 4 KiB and one journal", len(snap), gens)
	}

	want := maps.Clone(base)
	want["warm"] = 1
	folds := 0
	for i := range 60 {
		id := fmt.Sprintf("hook-%02d", i)
		hookRun(t, path, scope, &Record{Requests: map[string]int64{id: int64(i)}, Promises: map[string]Promise{id: {Path: "/p/" + id, Min: 1 << 20}}})
		want[id] = int64(i)
		now, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(now, snap) {
			folds++
			snap = now
		}
		gens, _ := journals(path)
		if len(gens) != 1 {
			t.Fatalf("run %d: journals %v, want one", i, gens)
		}
	}
	// Each run appends about 90 B; the journals reach 4 KiB (a quarter of
	// the snapshot is less) after about 45 runs: one or two folds in 60.
	if folds < 1 || folds > 2 {
		t.Errorf("the snapshot was rewritten %d times in 60 hook runs, want 1 or 2", folds)
	}
	s, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Requests, want) || len(s.Promises) != 60 {
		t.Errorf("read back %d requests (want %d, equal: %v) and %d promises (want 60)", len(s.Requests), len(want), reflect.DeepEqual(s.Requests, want), len(s.Promises))
	}
}

// TestOpenAppendAfterCrash: a journal whose last record was cut short (a
// writer killed mid-write) is not appended to: OpenAppend folds, the cut
// record is skipped and the next one is kept.
func TestOpenAppendAfterCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	const scope = "/sys/fs/cgroup v2"
	hookRun(t, path, scope, &Record{Requests: map[string]int64{"a": 1}})
	hookRun(t, path, scope, &Record{Requests: map[string]int64{"b": 2}})
	gens, _ := journals(path)
	f, err := os.OpenFile(journalName(path, gens[len(gens)-1]), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"req":{"cut":`); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	hookRun(t, path, scope, &Record{Requests: map[string]int64{"c": 3}})
	s, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int64{"a": 1, "b": 2, "c": 3}; !reflect.DeepEqual(s.Requests, want) {
		t.Errorf("requests %v, want %v", s.Requests, want)
	}
}

// TestOpenAppendOtherScope: a state of another cgroup mount is dropped, as
// Open drops it.
func TestOpenAppendOtherScope(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	hookRun(t, path, "/sys/fs/cgroup v1", &Record{Requests: map[string]int64{"v1": 1}})
	hookRun(t, path, "/sys/fs/cgroup v2", &Record{Requests: map[string]int64{"v2": 2}})
	s, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int64{"v2": 2}; s.Scope != "/sys/fs/cgroup v2" || !reflect.DeepEqual(s.Requests, want) {
		t.Errorf("scope %q, requests %v; want the v2 state alone", s.Scope, s.Requests)
	}
}
