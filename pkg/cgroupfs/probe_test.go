package cgroupfs_test

import (
	"maps"
	"testing"

	"nri-memqos/pkg/cgroupfs"
)

func TestProbeUnified(t *testing.T) {
	all := map[string]string{"memory.current": "0", "memory.min": "0", "memory.low": "0", "memory.high": "max", "memory.swap.max": "max", "memory.oom.group": "0"}
	noSwap := maps.Clone(all)
	delete(noSwap, "memory.swap.max")
	tests := []struct {
		name    string
		tree    map[string]map[string]string // rel dir -> files
		version int
		wantOK  bool
		wantDir string
		want    map[string]bool
		noScan  bool
	}{
		{name: "kubepods without swap accounting", version: 2, tree: map[string]map[string]string{"/kubepods": noSwap},
			wantOK: true, wantDir: "/kubepods",
			want: map[string]bool{"memory.min": true, "memory.low": true, "memory.high": true, "memory.swap.max": false, "memory.oom.group": true}},
		{name: "systemd driver", version: 2, tree: map[string]map[string]string{"/kubepods.slice": all, "/kubepods": noSwap},
			wantOK: true, wantDir: "/kubepods.slice",
			want: map[string]bool{"memory.min": true, "memory.low": true, "memory.high": true, "memory.swap.max": true, "memory.oom.group": true}},
		{name: "before kubelet: another child of the root", version: 2,
			tree:   map[string]map[string]string{"/a-no-memory": {"cgroup.procs": ""}, "/init.scope": noSwap},
			wantOK: true, wantDir: "/init.scope",
			want: map[string]bool{"memory.min": true, "memory.low": true, "memory.high": true, "memory.swap.max": false, "memory.oom.group": true}},
		{name: "before kubelet, without a scan: kubepods only", version: 2, noScan: true,
			tree: map[string]map[string]string{"/init.scope": noSwap}},
		{name: "no child cgroup yet", version: 2, tree: map[string]map[string]string{"/": {"cgroup.controllers": "memory"}}},
		{name: "cgroup v1", version: 1, tree: map[string]map[string]string{"/memory/kubepods": all}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for rel, files := range tc.tree {
				writeTree(t, root+rel, files)
			}
			f := &cgroupfs.FS{Root: root, Version: tc.version, PlainFiles: true}
			got, dir, ok := f.ProbeUnified(cgroupfs.UnifiedFiles, !tc.noScan)
			if ok != tc.wantOK {
				t.Fatalf("ok = %v; want %v", ok, tc.wantOK)
			}
			if !ok {
				return
			}
			if dir != root+tc.wantDir {
				t.Errorf("dir = %s; want %s", dir, root+tc.wantDir)
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("offered = %v; want %v", got, tc.want)
			}
		})
	}
}
