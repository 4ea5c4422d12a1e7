package state

import (
	"path/filepath"
	"reflect"
	"testing"
)

func TestScope(t *testing.T) {
	for _, tc := range []struct {
		root    string
		version int
	}{{"/sys/fs/cgroup", 2}, {"/sys/fs/cgroup", 1}, {"/tmp/a v2 tree", 2}} {
		root, v, ok := ParseScope(Scope(tc.root, tc.version))
		if !ok || root != tc.root || v != tc.version {
			t.Errorf("ParseScope(Scope(%q, %d)) = %q, %d, %v", tc.root, tc.version, root, v, ok)
		}
	}
	for _, bad := range []string{"", "/sys/fs/cgroup", " v2", "/sys/fs/cgroup v3", "/sys/fs/cgroup vx"} {
		if _, _, ok := ParseScope(bad); ok {
			t.Errorf("ParseScope(%q) ok", bad)
		}
	}
}

func TestV1Value(t *testing.T) {
	for v, want := range map[int64]string{
		0: "0", 268435456: "268435456", -1: "-1",
		9223372036854771712: "-1", // unlimited on 4 KiB pages
		9223372036854710272: "-1", // on 64 KiB pages
	} {
		if got := V1Value(v); got != want {
			t.Errorf("V1Value(%d) = %q, want %q", v, got, want)
		}
	}
}

// TestContainersRoundTrip: container entries survive Save and Read; a file
// without them (saved before entries existed) reads as none.
func TestContainersRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	in := &State{Scope: Scope("/sys/fs/cgroup", 2), Containers: map[string]*Container{
		"c1": {Path: "/kubepods/burstable/pod1/c1", Set: map[string]string{"memory.min": "268435456", "memory.swap.max": "0"},
			Older: map[string]string{"memory.min": "134217728"}, Restore: map[string]string{"memory.min": "1048576"}},
	}}
	if err := Save(path, in); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil || !reflect.DeepEqual(got, in) {
		t.Errorf("Read = %+v, %v; want %+v", got, err, in)
	}
	if err := Save(path, &State{Scope: in.Scope, Requests: map[string]int64{"c1": 1}}); err != nil {
		t.Fatal(err)
	}
	if got, err := Load(path, in.Scope); err != nil || got.Containers != nil {
		t.Errorf("Load of a state without entries = %+v, %v", got, err)
	}
}
