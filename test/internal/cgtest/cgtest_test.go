package cgtest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReadCheck(t *testing.T) {
	dir := t.TempDir()
	Write(t, filepath.Join(dir, "kubepods", "memory.max"), "536870912\n")
	if got := Read(t, dir, "kubepods", "memory.max"); got != "536870912" {
		t.Errorf("Read = %q, want %q", got, "536870912")
	}
	if got := ReadInt(t, dir, "kubepods/memory.max"); got != 536870912 {
		t.Errorf("ReadInt = %d, want 536870912", got)
	}
	if got := Itoa(512 << 20); got != "536870912" {
		t.Errorf("Itoa(512Mi) = %q, want %q", got, "536870912")
	}
	CheckFiles(t, dir, map[string]string{"kubepods/memory.max": "536870912"})
	CheckFiles(t, "", map[string]string{filepath.Join(dir, "kubepods", "memory.max"): "536870912"})
}

func TestZeroProtectionKeepsValues(t *testing.T) {
	dir := t.TempDir()
	Write(t, filepath.Join(dir, "memory.low"), "1073741824\n")
	ZeroProtection(t, dir)
	for f, want := range map[string]string{"memory.min": "0\n", "memory.low": "1073741824\n"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q (%v), want %q", f, b, err, want)
		}
	}
}

func TestKiB(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status")
	Write(t, path, "Name:\tnri-memqos\nVmHWM:\t   12345 kB\nVmRSS:\t    9876 kB\nThreads:\t7\n")
	if got := KiB(t, path, "VmRSS"); got != 9876 {
		t.Errorf("VmRSS = %d, want 9876", got)
	}
	if got := KiB(t, path, "Threads"); got != 7 {
		t.Errorf("Threads = %d, want 7", got)
	}
	if total := Meminfo(t, "MemTotal"); total <= 0 || total%1024 != 0 {
		t.Errorf("MemTotal = %d bytes, want a positive multiple of 1024", total)
	}
}
