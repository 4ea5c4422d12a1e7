package cgroupfs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nri-memqos/pkg/cgroupfs"
)

const rel = "/kubepods/burstable/pod1/c1"

// statsFS lays out files (name -> content; nil: absent) in rel's memory
// directory of a test tree of the given version.
func statsFS(t *testing.T, version int, files map[string]*string) *cgroupfs.FS {
	t.Helper()
	f := &cgroupfs.FS{Root: t.TempDir(), Version: version, PlainFiles: true}
	dir := f.MemoryDir(rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if content == nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(*content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func str(s string) *string { return &s }

// checkErr checks err against wantErr (substrings; none: no error) and
// wantGone.
func checkErr(t *testing.T, err error, wantErr []string, wantGone bool) {
	t.Helper()
	if len(wantErr) == 0 {
		if err != nil {
			t.Fatalf("err = %v; want none", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("err = nil; want one containing %q", wantErr)
	}
	for _, w := range wantErr {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("err = %q; want it to contain %q", err, w)
		}
	}
	if g := cgroupfs.IsGone(err); g != wantGone {
		t.Errorf("IsGone(%v) = %v; want %v", err, g, wantGone)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name     string
		version  int
		content  *string
		want     int64
		wantErr  []string
		wantGone bool
	}{
		{name: "v2", version: 2, content: str("314572800\n"), want: 314572800},
		{name: "v2 without newline", version: 2, content: str("4096"), want: 4096},
		{name: "v2 zero", version: 2, content: str("0\n"), want: 0},
		{name: "v2 max reads as the largest value", version: 2, content: str("max\n"), want: 1<<63 - 1},
		{name: "v2 beyond int64 is clamped", version: 2, content: str("18446744073709551615\n"), want: 1<<63 - 1},
		{name: "v2 negative (kernel bug) reads as 0", version: 2, content: str("-4096\n"), want: 0},
		{name: "v2 missing file: gone", version: 2, content: nil,
			wantErr: []string{"failed to read", "memory.current"}, wantGone: true},
		{name: "v2 garbage: an error, not gone", version: 2, content: str("lots\n"),
			wantErr: []string{"failed to read", "unable to parse", "memory.current"}},
		{name: "v2 empty file: an error, not gone", version: 2, content: str(""),
			wantErr: []string{"unable to parse", "memory.current"}},
		{name: "v1", version: 1, content: str("1048576\n"), want: 1048576},
		{name: "v1 missing file: gone", version: 1, content: nil,
			wantErr: []string{"memory.usage_in_bytes"}, wantGone: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := "memory.current"
			if tc.version == 1 {
				file = "memory.usage_in_bytes"
			}
			f := statsFS(t, tc.version, map[string]*string{file: tc.content})
			got, err := f.Usage(rel)
			checkErr(t, err, tc.wantErr, tc.wantGone)
			if err == nil && got != tc.want {
				t.Fatalf("Usage() = %d; want %d", got, tc.want)
			}
		})
	}
	t.Run("cgroup gone", func(t *testing.T) {
		f := &cgroupfs.FS{Root: t.TempDir(), Version: 2, PlainFiles: true}
		_, err := f.Usage(rel)
		checkErr(t, err, []string{"memory.current"}, true)
	})
}

func TestReadEvents(t *testing.T) {
	const kernel = "low 7\nhigh 40\nmax 9\noom 3\noom_kill 2\noom_group_kill 1\n"
	// A file longer than the read buffer, with the counters at its end.
	long := strings.Repeat("future_event 1\n", 100) + kernel
	tests := []struct {
		name     string
		version  int
		files    map[string]*string
		want     cgroupfs.Events
		wantErr  []string
		wantGone bool
	}{
		{name: "v2", version: 2, files: map[string]*string{"memory.events": str(kernel)},
			want: cgroupfs.Events{OOMKill: 2, OOM: 3, High: 40, Max: 9}},
		{name: "v2 quiet", version: 2, files: map[string]*string{"memory.events": str("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n")}},
		{name: "v2 older kernel without oom_group_kill, no final newline", version: 2,
			files: map[string]*string{"memory.events": str("low 0\nhigh 5\nmax 1\noom 1\noom_kill 1")},
			want:  cgroupfs.Events{OOMKill: 1, OOM: 1, High: 5, Max: 1}},
		{name: "v2 longer than the read buffer", version: 2, files: map[string]*string{"memory.events": str(long)},
			want: cgroupfs.Events{OOMKill: 2, OOM: 3, High: 40, Max: 9}},
		{name: "v2 large counters", version: 2, files: map[string]*string{"memory.events": str("high 18446744073709551615\n")},
			want: cgroupfs.Events{High: 1<<64 - 1}},
		{name: "v2 missing memory.events: gone, not quiet", version: 2, files: map[string]*string{"memory.current": str("0\n")},
			wantErr: []string{"failed to read", "memory.events"}, wantGone: true},
		{name: "v2 malformed line: an error, not gone", version: 2, files: map[string]*string{"memory.events": str("high 1\noom_kill\n")},
			wantErr: []string{"memory.events", `"oom_kill"`}},
		{name: "v2 malformed value: an error, not gone", version: 2, files: map[string]*string{"memory.events": str("high lots\n")},
			wantErr: []string{"memory.events", "lots"}},
		{name: "v1", version: 1, files: map[string]*string{
			"memory.oom_control": str("oom_kill_disable 0\nunder_oom 0\noom_kill 4\n"),
			"memory.failcnt":     str("12\n"),
		}, want: cgroupfs.Events{OOMKill: 4, Max: 12}},
		{name: "v1 missing memory.oom_control: gone", version: 1, files: map[string]*string{"memory.failcnt": str("12\n")},
			wantErr: []string{"memory.oom_control"}, wantGone: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := statsFS(t, tc.version, tc.files)
			got, err := f.ReadEvents(rel)
			checkErr(t, err, tc.wantErr, tc.wantGone)
			if err == nil && got != tc.want {
				t.Fatalf("ReadEvents() = %+v; want %+v", got, tc.want)
			}
		})
	}
	t.Run("cgroup gone", func(t *testing.T) {
		f := &cgroupfs.FS{Root: t.TempDir(), Version: 2, PlainFiles: true}
		_, err := f.ReadEvents(rel)
		checkErr(t, err, []string{"memory.events"}, true)
	})
}

// TestReadsConcurrently reads files of different sizes from many goroutines:
// the pooled read buffers must never mix contents.
func TestReadsConcurrently(t *testing.T) {
	f := &cgroupfs.FS{Root: t.TempDir(), Version: 2, PlainFiles: true}
	const n = 8
	for i := range n {
		dir := f.MemoryDir(fmt.Sprintf("/c%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		events := strings.Repeat("future_event 1\n", i*20) + fmt.Sprintf("high %d\noom_kill %d\n", i, i)
		for name, content := range map[string]string{"memory.current": fmt.Sprintf("%d\n", i*4096), "memory.events": events} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	errs := make(chan error, n)
	for i := range n {
		go func() {
			rel := fmt.Sprintf("/c%d", i)
			for range 200 {
				u, err := f.Usage(rel)
				if err == nil && u != int64(i*4096) {
					err = fmt.Errorf("%s: Usage() = %d; want %d", rel, u, i*4096)
				}
				if err != nil {
					errs <- err
					return
				}
				e, err := f.ReadEvents(rel)
				if err == nil && (e.High != uint64(i) || e.OOMKill != uint64(i)) {
					err = fmt.Errorf("%s: ReadEvents() = %+v; want high and oom_kill %d", rel, e, i)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
