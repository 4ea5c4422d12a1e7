package state

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// readSnapshot decodes the snapshot file at path alone, without journals.
func readSnapshot(t *testing.T, path string) *State {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("snapshot %s: %v", path, err)
	}
	return &s
}

// TestPromisesSurviveReopen: promises set and dropped by journal records
// are read back exactly by Read, Load and the next Open, and the snapshot
// Open writes holds them on its own.
func TestPromisesSurviveReopen(t *testing.T) {
	tests := []struct {
		name string
		recs []*Record
		want map[string]Promise
	}{{
		name: "set",
		recs: []*Record{{Promises: map[string]Promise{
			"a": {Path: "/kubepods/burstable/poda/a", Min: 256 << 20},
			"b": {Path: "/kubepods/burstable/podb/b", Low: 128 << 20},
		}}},
		want: map[string]Promise{
			"a": {Path: "/kubepods/burstable/poda/a", Min: 256 << 20},
			"b": {Path: "/kubepods/burstable/podb/b", Low: 128 << 20},
		},
	}, {
		name: "replace, drop, set again",
		recs: []*Record{
			{Promises: map[string]Promise{"a": {Path: "/p/a", Min: 1}, "b": {Path: "/p/b", Min: 2}, "c": {Path: "/p/c", Low: 3}}},
			{Promises: map[string]Promise{"a": {Path: "/p/a", Min: 10, Low: 5}}, DropPromises: []string{"b"}},
			// An unrelated record leaves them alone.
			{Requests: map[string]int64{"x": 7}},
			{DropPromises: []string{"c", "never-set"}},
			{Promises: map[string]Promise{"c": {Min: 30}}},
		},
		want: map[string]Promise{"a": {Path: "/p/a", Min: 10, Low: 5}, "c": {Min: 30}},
	}, {
		name: "every promise dropped",
		recs: []*Record{
			{Promises: map[string]Promise{"a": {Path: "/p/a", Min: 1}}},
			{DropPromises: []string{"a"}},
		},
		want: map[string]Promise{},
	}, {
		name: "a record of drops only, on nothing",
		recs: []*Record{{DropPromises: []string{"a"}}},
		want: nil,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ancestors.json")
			st, _, err := Open(path, "/cg v2", nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range tc.recs {
				if err := st.Append(r); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := Read(path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Promises, tc.want) {
				t.Errorf("Read: promises = %v; want %v", got.Promises, tc.want)
			}
			loaded, err := Load(path, "/cg v2")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(loaded.Promises, tc.want) {
				t.Errorf("Load: promises = %v; want %v", loaded.Promises, tc.want)
			}
			st2, s2, err := Open(path, "/cg v2", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer st2.Close()
			if !reflect.DeepEqual(s2.Promises, tc.want) {
				t.Errorf("Open after Close: promises = %v; want %v", s2.Promises, tc.want)
			}
			// Open compacted: the snapshot alone holds them (an empty map
			// is not written).
			want := tc.want
			if len(want) == 0 {
				want = nil
			}
			if snap := readSnapshot(t, path); !reflect.DeepEqual(snap.Promises, want) {
				t.Errorf("snapshot written by Open: promises = %v; want %v", snap.Promises, want)
			}
			// Another scope (another cgroup mount) has none.
			if other, _ := Load(path, "/other v2"); other.Promises != nil {
				t.Errorf("Load for another scope: promises = %v; want none", other.Promises)
			}
		})
	}
}

// TestPromisesSurviveCompaction: the background compaction of a grown
// journal folds the promises into the snapshot, which then holds them
// without the journal that carried them; Save keeps them too.
func TestPromisesSurviveCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ancestors.json")
	st, _, err := Open(path, "s", func(err error) { t.Errorf("compaction: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Append(&Record{Promises: map[string]Promise{
		"a": {Path: "/kubepods/burstable/poda/a", Min: 256 << 20},
		"b": {Path: "/kubepods/burstable/podb/b", Min: 64 << 20, Low: 32 << 20},
		"c": {Path: "/kubepods/besteffort/podc/c", Low: 1 << 20},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Append(&Record{DropPromises: []string{"c"}}); err != nil {
		t.Fatal(err)
	}
	first, _ := journals(path)
	if len(first) != 1 {
		t.Fatalf("journals before compaction: %v; want one", first)
	}
	// Grow the journal past compactMin with records of other kinds.
	for i := 0; st.BytesWritten() < 2*compactMin; i++ {
		if err := st.Append(&Record{Requests: map[string]int64{fmt.Sprintf("r%06d", i): int64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	st.Wait()
	// (The compaction removes the folded journal after Wait may have
	// returned: the snapshot alone is checked, not the journal's removal.)
	want := map[string]Promise{
		"a": {Path: "/kubepods/burstable/poda/a", Min: 256 << 20},
		"b": {Path: "/kubepods/burstable/podb/b", Min: 64 << 20, Low: 32 << 20},
	}
	snap := readSnapshot(t, path)
	if snap.Journal <= first[0] {
		t.Fatalf("snapshot includes journals before %d; want past %d", snap.Journal, first[0])
	}
	if !reflect.DeepEqual(snap.Promises, want) {
		t.Errorf("compacted snapshot: promises = %v; want %v", snap.Promises, want)
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Promises, want) {
		t.Errorf("Read after compaction: promises = %v; want %v", got.Promises, want)
	}

	// Save writes them into a snapshot of its own.
	saved := filepath.Join(t.TempDir(), "saved.json")
	if err := Save(saved, &State{Scope: "s", Promises: want}); err != nil {
		t.Fatal(err)
	}
	if s := readSnapshot(t, saved); !reflect.DeepEqual(s.Promises, want) {
		t.Errorf("Save: promises = %v; want %v", s.Promises, want)
	}
}

// TestPromiseRecordNotEmpty: a record that only sets or drops promises is
// appended, not skipped as empty.
func TestPromiseRecordNotEmpty(t *testing.T) {
	tests := []struct {
		r    Record
		want bool
	}{
		{Record{}, true},
		{Record{Promises: map[string]Promise{"a": {Min: 1}}}, false},
		{Record{DropPromises: []string{"a"}}, false},
		{Record{Promises: map[string]Promise{}}, true},
	}
	for _, tc := range tests {
		if got := tc.r.Empty(); got != tc.want {
			t.Errorf("%+v.Empty() = %v; want %v", tc.r, got, tc.want)
		}
	}
}
