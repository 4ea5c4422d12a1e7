package state

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	in := &State{
		Scope:     "/sys/fs/cgroup v2",
		Ancestors: []Value{{Path: "/kubepods", File: "memory.min", Value: 268435456}},
		Requests:  map[string]int64{"c1": 268435456, "c2": 0},
	}
	if err := Save(path, in); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		path  string
		scope string
		want  *State
	}{
		{"same scope", path, in.Scope, in},
		{"other scope", path, "/tmp/x v2", &State{Scope: "/tmp/x v2"}},
		{"missing file", filepath.Join(dir, "none.json"), in.Scope, &State{Scope: in.Scope}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Load(tc.path, tc.scope)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Load = %+v; want %+v", got, tc.want)
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries; want only the state file (no temporary left)", len(entries))
	}
}

func TestLoadCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path, "s")
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Load error = %v; want one naming %s", err, path)
	}
	if got == nil || got.Scope != "s" || len(got.Ancestors) != 0 || len(got.Requests) != 0 {
		t.Errorf("Load = %+v; want an empty state for scope s", got)
	}
}

func TestSaveUnwritableDir(t *testing.T) {
	err := Save(filepath.Join(t.TempDir(), "missing", "state.json"), &State{})
	if err == nil || !strings.Contains(err.Error(), "failed to save state") {
		t.Errorf("Save error = %v; want failed to save state", err)
	}
}
