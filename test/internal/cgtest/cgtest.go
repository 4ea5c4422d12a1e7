// Package cgtest reads and writes cgroup files for tests, in the real
// hierarchy (/sys/fs/cgroup) and in fake trees laid out in a temporary
// directory, and reads the /proc files the tests size their workloads by.
// Every function fails the test when a file cannot be read or written.
package cgtest

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"nri-memqos/test/internal/wait"
)

// Itoa is v in decimal, as cgroup files hold numbers.
func Itoa(v int64) string { return strconv.FormatInt(v, 10) }

// Read returns the trimmed content of the file at the path elem joins to.
func Read(t testing.TB, elem ...string) string {
	t.Helper()
	path := filepath.Join(elem...)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return strings.TrimSpace(string(b))
}

// ReadInt returns the integer the file at the path elem joins to holds.
func ReadInt(t testing.TB, elem ...string) int64 {
	t.Helper()
	s := Read(t, elem...)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%s = %q: not an integer", filepath.Join(elem...), s)
	}
	return v
}

// Write writes content to path, creating its directory.
func Write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ZeroProtection gives the fake cgroup v2 directory dir the protection files
// of a fresh cgroup, memory.min and memory.low holding "0\n"; a file that
// exists already keeps its value.
func ZeroProtection(t testing.TB, dir string) {
	t.Helper()
	for _, f := range []string{"memory.min", "memory.low"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			Write(t, filepath.Join(dir, f), "0\n")
		}
	}
}

// CheckFiles asserts the exact trimmed content of files: want maps a path
// below dir (or an absolute path, with dir "") to its value.
func CheckFiles(t testing.TB, dir string, want map[string]string) {
	t.Helper()
	for _, f := range slices.Sorted(maps.Keys(want)) {
		path := filepath.Join(dir, f)
		if got := Read(t, path); got != want[f] {
			t.Errorf("%s = %q, want %q", path, got, want[f])
		}
	}
}

// EventuallyFiles waits, at most timeout, until the files hold what want
// says (as CheckFiles), and reports the files that still differ then: for
// values the plugin's background writer puts in place after an event.
func EventuallyFiles(t testing.TB, dir string, want map[string]string, timeout time.Duration) {
	t.Helper()
	wait.Until(t, timeout, func() string {
		var bad []string
		for _, f := range slices.Sorted(maps.Keys(want)) {
			path := filepath.Join(dir, f)
			b, err := os.ReadFile(path)
			if got := strings.TrimSpace(string(b)); err != nil || got != want[f] {
				bad = append(bad, fmt.Sprintf("%s = %q (%v), want %q", path, got, err, want[f]))
			}
		}
		return strings.Join(bad, "; ")
	})
}

// KiB reads a "<field>: <n> kB" line of a /proc file such as /proc/meminfo
// or /proc/<pid>/status and returns n.
func KiB(t testing.TB, path, field string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			t.Fatalf("%s: %s: %v", path, field, err)
		}
		return n
	}
	t.Fatalf("%s has no %s", path, field)
	return 0
}

// Meminfo reads a field of /proc/meminfo (MemTotal, MemAvailable, ...) in
// bytes.
func Meminfo(t testing.TB, field string) int64 {
	t.Helper()
	return KiB(t, "/proc/meminfo", field) * 1024
}
