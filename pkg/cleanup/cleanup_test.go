package cleanup

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/state"
)

func plainFS(t *testing.T, version int, files map[string]string) *cgroupfs.FS {
	t.Helper()
	fs := &cgroupfs.FS{Root: t.TempDir(), Version: version, PlainFiles: true}
	for p, v := range files {
		full := filepath.Join(fs.MemoryDir(filepath.Dir(p)), filepath.Base(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return fs
}

func read(t *testing.T, fs *cgroupfs.FS, p string) string {
	t.Helper()
	s, err := fs.Read(filepath.Dir(p), filepath.Base(p))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRunV2 covers what the plugin's tests over the core do not reach: an
// ancestor someone set to max, a memory.high above the container's
// memory.max (not the guard's), the order ancestors are lowered in.
func TestRunV2(t *testing.T) {
	fs := plainFS(t, 2, map[string]string{
		"/a/memory.min": "max", "/a/memory.low": "300", "/a/b/memory.low": "300", "/a/b/c/memory.low": "300",
		"/a/b/c/x/memory.high": "900", "/a/b/c/x/memory.max": "800", "/a/b/c/x/memory.low": "300",
	})
	st := &state.State{
		Ancestors: []state.Value{
			{Path: "/a", File: "memory.min", Value: 300}, {Path: "/a", File: "memory.low", Value: 300, Baseline: 100},
			{Path: "/a/b/c", File: "memory.low", Value: 300}, {Path: "/a/b", File: "memory.low", Value: 300},
		},
		Containers: map[string]*state.Container{"x": {Path: "/a/b/c/x", Set: map[string]string{"memory.high": "400", "memory.low": "300"}}},
	}
	if err := Validate(st, 2); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	sum := Run(fs, 2, st, Options{Out: &out})
	if sum != (Summary{Reset: 4, Kept: 2}) {
		t.Errorf("summary %+v:\n%s", sum, out.String())
	}
	for p, want := range map[string]string{
		"/a/memory.min": "max", "/a/memory.low": "100", "/a/b/memory.low": "0", "/a/b/c/memory.low": "0",
		"/a/b/c/x/memory.high": "900", "/a/b/c/x/memory.low": "0",
	} {
		if got := read(t, fs, p); got != want {
			t.Errorf("%s = %s, want %s", p, got, want)
		}
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	order := []string{"container x /a/b/c/x memory.high", "container x /a/b/c/x memory.low", "ancestor /a/b/c ", "ancestor /a/b ", "ancestor /a memory.low", "ancestor /a memory.min"}
	if len(lines) != len(order) {
		t.Fatalf("lines:\n%s", out.String())
	}
	for i, want := range order {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %q, want %q (containers first, then ancestors innermost first)", i, lines[i], want)
		}
	}
}

// TestRunV1Unlimited: the kernel shows -1 as the largest page-aligned
// value; it is still the plugin's -1.
func TestRunV1Unlimited(t *testing.T) {
	fs := plainFS(t, 1, map[string]string{"/p/c/memory.memsw.limit_in_bytes": "9223372036854771712", "/p/c/memory.swappiness": "0"})
	st := &state.State{Containers: map[string]*state.Container{"c": {Path: "/p/c",
		Set:     map[string]string{"memory.memsw.limit_in_bytes": "-1", "memory.swappiness": "0"},
		Restore: map[string]string{"memory.memsw.limit_in_bytes": "536870912"}}}}
	sum := Run(fs, 1, st, Options{})
	if sum != (Summary{Reset: 2}) {
		t.Errorf("summary %+v", sum)
	}
	if got := read(t, fs, "/p/c/memory.memsw.limit_in_bytes"); got != "536870912" {
		t.Errorf("memsw = %s", got)
	}
	if got := read(t, fs, "/p/c/memory.swappiness"); got != "60" {
		t.Errorf("swappiness = %s", got)
	}
}

func TestValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		st      *state.State
		version int
	}{
		"version":        {&state.State{}, 3},
		"ancestor file":  {&state.State{Ancestors: []state.Value{{Path: "/a", File: "cgroup.procs"}}}, 2},
		"ancestor path":  {&state.State{Ancestors: []state.Value{{Path: "a/b", File: "memory.min"}}}, 2},
		"root":           {&state.State{Ancestors: []state.Value{{Path: "/", File: "memory.min"}}}, 2},
		"container nil":  {&state.State{Containers: map[string]*state.Container{"c": nil}}, 2},
		"container file": {&state.State{Containers: map[string]*state.Container{"c": {Path: "/a/c", Set: map[string]string{"memory.swappiness": "0"}}}}, 2},
		"v1 file on v2":  {&state.State{Containers: map[string]*state.Container{"c": {Path: "/a/c", Set: map[string]string{"memory.min": "0"}}}}, 1},
		"container path": {&state.State{Containers: map[string]*state.Container{"c": {Path: "/a/../../c", Set: map[string]string{}}}}, 2},
	} {
		if err := Validate(tc.st, tc.version); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, tc.st)
		}
	}
}
