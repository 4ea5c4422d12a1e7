package cgroupfs

import (
	"os"
	"path/filepath"
	"slices"
)

// UnifiedFiles are the cgroup v2 files the plugin may set through a
// container's unified map.
var UnifiedFiles = []string{FileMin, FileLow, FileHigh, FileSwapMax, FileOOMGroup}

// ProbeUnified tells which of files a non-root cgroup on this cgroup v2
// mount offers: memory.swap.max is missing without swap accounting, and
// memory.min, memory.low, memory.high and memory.oom.group on kernels too
// old for them. The root cgroup has none of these files, so it looks in
// kubepods (kubepods.slice with the systemd driver), else, when scan is
// set, in the first child cgroup of the root that has the memory
// controller. ok is false when there is no such cgroup yet (kubelet has
// not started): nothing is known. Without scan it costs two stat(2) calls.
func (f *FS) ProbeUnified(files []string, scan bool) (offered map[string]bool, dir string, ok bool) {
	if f.Version != 2 {
		return nil, "", false
	}
	dir, ok = f.probeDir(scan)
	if !ok {
		return nil, "", false
	}
	offered = make(map[string]bool, len(files))
	for _, file := range files {
		_, err := os.Stat(filepath.Join(dir, file))
		offered[file] = err == nil
	}
	return offered, dir, true
}

// probeDir finds a non-root cgroup with the memory controller: kubepods,
// else, with scan, any child of the root.
func (f *FS) probeDir(scan bool) (string, bool) {
	hasMemory := func(d string) bool {
		_, err := os.Stat(filepath.Join(d, FileCurrent))
		return err == nil
	}
	for _, rel := range []string{"/kubepods.slice", "/kubepods"} {
		if d := f.MemoryDir(rel); hasMemory(d) {
			return d, true
		}
	}
	if !scan {
		return "", false
	}
	entries, err := os.ReadDir(f.MemoryDir("/"))
	if err != nil {
		return "", false
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	for _, n := range names {
		if d := f.MemoryDir("/" + n); hasMemory(d) {
			return d, true
		}
	}
	return "", false
}
