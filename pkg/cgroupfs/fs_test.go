package cgroupfs_test

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"nri-memqos/pkg/cgroupfs"
)

// writeTree creates files (relative path -> content) under root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name        string
		files       map[string]string // tree to create under a fresh temp root
		dirs        []string          // empty directories to create
		root        string            // overrides the temp root when set
		want        string
		wantVersion int
		wantErr     []string // substrings of the error
	}{
		{name: "forced 1", want: "1", wantVersion: 1},
		{name: "forced 2", want: "2", wantVersion: 2},
		{name: "forced 1 on a v2 layout", files: map[string]string{"cgroup.controllers": "memory\n"}, want: "1", wantVersion: 1},
		{name: "forced 2 on a missing root", root: "/nonexistent/memqos-root", want: "2", wantVersion: 2},
		{name: "auto memory dir is v1", dirs: []string{"memory"}, want: "auto", wantVersion: 1},
		{name: "empty want is auto", dirs: []string{"memory"}, want: "", wantVersion: 1},
		{name: "auto cgroup.controllers is v2", files: map[string]string{"cgroup.controllers": "cpu memory\n"}, want: "auto", wantVersion: 2},
		{name: "auto memory dir wins over cgroup.controllers", dirs: []string{"memory"}, files: map[string]string{"cgroup.controllers": ""}, want: "auto", wantVersion: 1},
		{name: "auto memory file is not a hierarchy", files: map[string]string{"memory": "x"}, want: "auto", wantErr: []string{"no cgroup v2 mount and no v1 memory hierarchy"}},
		{name: "auto empty dir", want: "auto", wantErr: []string{"no cgroup v2 mount and no v1 memory hierarchy"}},
		{name: "auto missing root", root: "/nonexistent/memqos-root", want: "auto", wantErr: []string{"/nonexistent/memqos-root", "no such file"}},
		{name: "bad version 3", want: "3", wantErr: []string{"allowed", `"3"`}},
		{name: "bad version v2", want: "v2", wantErr: []string{"allowed", `"v2"`}},
		{name: "bad version AUTO", want: "AUTO", wantErr: []string{"allowed"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := tc.root
			if root == "" {
				root = t.TempDir()
				writeTree(t, root, tc.files)
				for _, d := range tc.dirs {
					if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
						t.Fatal(err)
					}
				}
			}
			got, err := cgroupfs.Detect(root, tc.want)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Detect(%q, %q) = %+v, nil; want an error", root, tc.want, got)
				}
				if got != nil {
					t.Errorf("Detect(%q, %q) returned %+v with an error; want nil", root, tc.want, got)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("Detect(%q, %q) error = %q; want it to contain %q", root, tc.want, err, s)
					}
				}
				// Errors about the filesystem name the root.
				if !strings.Contains(err.Error(), "allowed") && !strings.Contains(err.Error(), root) {
					t.Errorf("Detect(%q, %q) error = %q; want it to name the root", root, tc.want, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Detect(%q, %q): %v", root, tc.want, err)
			}
			// Temporary roots (and missing ones) are not cgroup filesystems.
			if want := (cgroupfs.FS{Root: root, Version: tc.wantVersion, PlainFiles: true}); *got != want {
				t.Fatalf("Detect(%q, %q) = %+v; want %+v", root, tc.want, *got, want)
			}
		})
	}
}

// TestDetectHost checks detection on this machine's real cgroup mounts.
func TestDetectHost(t *testing.T) {
	if fi, err := os.Stat("/sys/fs/cgroup/memory"); err != nil || !fi.IsDir() {
		t.Skip("no cgroup v1 memory hierarchy at /sys/fs/cgroup/memory")
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Fatal(err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		t.Skip("/sys/fs/cgroup is a cgroup2 mount")
	}

	got, err := cgroupfs.Detect("/sys/fs/cgroup", "auto")
	if err != nil {
		t.Fatalf("Detect(/sys/fs/cgroup, auto): %v", err)
	}
	if want := (cgroupfs.FS{Root: "/sys/fs/cgroup", Version: 1}); *got != want {
		t.Fatalf("Detect(/sys/fs/cgroup, auto) = %+v; want %+v", *got, want)
	}

	fsTests := []struct {
		name string
		dir  string
		want bool
	}{
		{name: "v1 memory controller", dir: "/sys/fs/cgroup/memory", want: true},
		{name: "v1 memory dir of the detected FS", dir: got.MemoryDir("/"), want: true},
		// On a v1/hybrid host the root itself is a tmpfs, not a cgroup fs.
		{name: "tmpfs root of a v1 host", dir: "/sys/fs/cgroup", want: st.Type == unix.CGROUP_SUPER_MAGIC},
		{name: "temp dir", dir: t.TempDir(), want: false},
		{name: "missing dir", dir: "/nonexistent/memqos", want: false},
	}
	if fi, err := os.Stat("/sys/fs/cgroup/unified"); err == nil && fi.IsDir() {
		var ust unix.Statfs_t
		if unix.Statfs("/sys/fs/cgroup/unified", &ust) == nil && ust.Type == unix.CGROUP2_SUPER_MAGIC {
			fsTests = append(fsTests, struct {
				name string
				dir  string
				want bool
			}{name: "hybrid unified cgroup2", dir: "/sys/fs/cgroup/unified", want: true})

			v2, err := cgroupfs.Detect("/sys/fs/cgroup/unified", "auto")
			if err != nil {
				t.Fatalf("Detect(/sys/fs/cgroup/unified, auto): %v", err)
			}
			if v2.Version != 2 {
				t.Errorf("Detect(/sys/fs/cgroup/unified, auto).Version = %d; want 2", v2.Version)
			}
		}
	}
	for _, tc := range fsTests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cgroupfs.IsCgroupFilesystem(tc.dir); got != tc.want {
				t.Fatalf("IsCgroupFilesystem(%q) = %v; want %v", tc.dir, got, tc.want)
			}
		})
	}
}

func TestMemoryDir(t *testing.T) {
	tests := []struct {
		name string
		fs   cgroupfs.FS
		rel  string
		want string
	}{
		{name: "v1 container", fs: cgroupfs.FS{Root: "/sys/fs/cgroup", Version: 1}, rel: "/kubepods/burstable/pod1/c1", want: "/sys/fs/cgroup/memory/kubepods/burstable/pod1/c1"},
		{name: "v1 root", fs: cgroupfs.FS{Root: "/sys/fs/cgroup", Version: 1}, rel: "/", want: "/sys/fs/cgroup/memory"},
		{name: "v1 custom root trailing slash", fs: cgroupfs.FS{Root: "/tmp/cg/", Version: 1, PlainFiles: true}, rel: "/kubepods", want: "/tmp/cg/memory/kubepods"},
		{name: "v2 container", fs: cgroupfs.FS{Root: "/sys/fs/cgroup", Version: 2}, rel: "/kubepods.slice/kubepods-pod1.slice/crio-abc.scope", want: "/sys/fs/cgroup/kubepods.slice/kubepods-pod1.slice/crio-abc.scope"},
		{name: "v2 root", fs: cgroupfs.FS{Root: "/sys/fs/cgroup", Version: 2}, rel: "/", want: "/sys/fs/cgroup"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.fs.MemoryDir(tc.rel); got != tc.want {
				t.Fatalf("%+v.MemoryDir(%q) = %q; want %q", tc.fs, tc.rel, got, tc.want)
			}
		})
	}
	// On v2, MemoryDir is filepath.Join(root, rel) whatever the shortcut it
	// takes for clean paths.
	roots := []string{"/sys/fs/cgroup", "/sys/fs/cgroup/", "/", "", ".", "cg", "./cg", "/tmp//cg", "/tmp/cg/..", "/tmp/./cg", "/a/b/../c"}
	rels := []string{"/kubepods/burstable/pod1/c1", "/", "", "/c1", "c1", "/c1/", "//c1", "/./c1", "/../c1", "/kubepods/../c1", "/a//b", "..", "/.."}
	for _, root := range roots {
		for _, rel := range rels {
			f := cgroupfs.FS{Root: root, Version: 2, PlainFiles: true}
			if got, want := f.MemoryDir(rel), filepath.Join(root, rel); got != want {
				t.Errorf("FS{Root: %q}.MemoryDir(%q) = %q; want %q (filepath.Join)", root, rel, got, want)
			}
		}
	}
}

func TestReadInt(t *testing.T) {
	tests := []struct {
		name     string
		content  *string // nil: file absent
		want     int64
		wantErr  []string
		wantGone bool
	}{
		{name: "plain", content: strPtr("12345\n"), want: 12345},
		{name: "no newline", content: strPtr("42"), want: 42},
		{name: "surrounding space", content: strPtr("  7 \n"), want: 7},
		{name: "zero", content: strPtr("0\n"), want: 0},
		{name: "max", content: strPtr("max\n"), want: -1},
		{name: "negative", content: strPtr("-1\n"), want: -1},
		{name: "v1 unlimited", content: strPtr("9223372036854771712\n"), want: 9223372036854771712},
		{name: "garbage", content: strPtr("garbage\n"), wantErr: []string{"memory.min", `"garbage" is not an integer`}},
		{name: "empty", content: strPtr(""), wantErr: []string{"memory.min", `"" is not an integer`}},
		{name: "two values", content: strPtr("1 2\n"), wantErr: []string{"memory.min", "not an integer"}},
		{name: "overflow", content: strPtr("9223372036854775808\n"), wantErr: []string{"memory.min", "not an integer"}},
		{name: "missing file", content: nil, wantErr: []string{"memory.min", "failed to read"}, wantGone: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			f := &cgroupfs.FS{Root: root, Version: 2, PlainFiles: true}
			dir := filepath.Join(root, "kubepods", "pod1")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.content != nil {
				writeTree(t, dir, map[string]string{"memory.min": *tc.content})
			}
			got, err := f.ReadInt("/kubepods/pod1", "memory.min")
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("ReadInt = %d, nil; want an error", got)
				}
				full := filepath.Join(dir, "memory.min")
				if !strings.Contains(err.Error(), full) {
					t.Errorf("ReadInt error = %q; want it to name %s", err, full)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("ReadInt error = %q; want it to contain %q", err, s)
					}
				}
				if g := cgroupfs.IsGone(err); g != tc.wantGone {
					t.Errorf("IsGone(%v) = %v; want %v", err, g, tc.wantGone)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadInt: %v", err)
			}
			if got != tc.want {
				t.Fatalf("ReadInt = %d; want %d", got, tc.want)
			}
		})
	}
}

func strPtr(s string) *string { return &s }

func TestRead(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"memory/kubepods/memory.stat": "  anon 4096\nfile 0\n\n"})
	f := &cgroupfs.FS{Root: root, Version: 1, PlainFiles: true}
	got, err := f.Read("/kubepods", "memory.stat")
	if err != nil {
		t.Fatal(err)
	}
	if want := "anon 4096\nfile 0"; got != want {
		t.Fatalf("Read = %q; want %q", got, want)
	}
}

func TestWrite(t *testing.T) {
	const rel = "/kubepods/burstable/pod1"
	tests := []struct {
		name        string
		initial     *string // nil: file absent
		removeDir   bool
		value       string
		wantChanged bool
		wantContent *string // nil: file must not exist
		wantErr     bool
	}{
		{name: "new value", initial: strPtr("0\n"), value: "100", wantChanged: true, wantContent: strPtr("100")},
		{name: "shorter value truncates", initial: strPtr("123456789\n"), value: "5", wantChanged: true, wantContent: strPtr("5")},
		{name: "same value not rewritten", initial: strPtr("100\n"), value: "100", wantChanged: false, wantContent: strPtr("100\n")},
		{name: "same value without newline", initial: strPtr("100"), value: "100", wantChanged: false, wantContent: strPtr("100")},
		{name: "same max not rewritten", initial: strPtr("max\n"), value: "max", wantChanged: false, wantContent: strPtr("max\n")},
		{name: "max replaced by number", initial: strPtr("max\n"), value: "0", wantChanged: true, wantContent: strPtr("0")},
		{name: "missing file in existing dir", initial: nil, value: "100", wantErr: true},
		{name: "missing cgroup dir", removeDir: true, value: "100", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			f := &cgroupfs.FS{Root: root, Version: 2, PlainFiles: true}
			dir := f.MemoryDir(rel)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.initial != nil {
				writeTree(t, dir, map[string]string{"memory.low": *tc.initial})
			}
			if tc.removeDir {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
			}
			full := filepath.Join(dir, "memory.low")
			changed, err := f.Write(rel, "memory.low", tc.value)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Write = %v, nil; want an error", changed)
				}
				if changed {
					t.Errorf("Write returned changed=true with an error")
				}
				if !cgroupfs.IsGone(err) {
					t.Errorf("IsGone(%v) = false; want true", err)
				}
				if !errors.Is(err, os.ErrNotExist) {
					t.Errorf("errors.Is(%v, os.ErrNotExist) = false; want true", err)
				}
				for _, s := range []string{full, `"` + tc.value + `"`} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("Write error = %q; want it to contain %q", err, s)
					}
				}
				if _, statErr := os.Stat(full); !errors.Is(statErr, fs.ErrNotExist) {
					t.Errorf("Write created %s despite the error (stat: %v)", full, statErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Write: %v", err)
			}
			if changed != tc.wantChanged {
				t.Errorf("Write changed = %v; want %v", changed, tc.wantChanged)
			}
			if got := readFile(t, full); got != *tc.wantContent {
				t.Errorf("content of %s = %q; want %q", full, got, *tc.wantContent)
			}
		})
	}
}

func TestExists(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"memory/pod1/memory.memsw.limit_in_bytes": "0\n"})
	f := &cgroupfs.FS{Root: root, Version: 1, PlainFiles: true}
	tests := []struct {
		name, rel, file string
		want            bool
	}{
		{name: "present", rel: "/pod1", file: cgroupfs.V1MemSwLimit, want: true},
		{name: "absent file", rel: "/pod1", file: cgroupfs.V1SoftLimit, want: false},
		{name: "absent dir", rel: "/pod2", file: cgroupfs.V1MemSwLimit, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := f.Exists(tc.rel, tc.file); got != tc.want {
				t.Fatalf("Exists(%q, %q) = %v; want %v", tc.rel, tc.file, got, tc.want)
			}
		})
	}
}

func TestIsGone(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "nil", err: nil, want: false},
		{name: "ErrNotExist", err: os.ErrNotExist, want: true},
		{name: "PathError ENOENT", err: &os.PathError{Op: "open", Path: "/x", Err: unix.ENOENT}, want: true},
		{name: "wrapped ENOENT", err: fmt.Errorf("failed: %w", &os.PathError{Op: "openat2", Path: "/x", Err: unix.ENOENT}), want: true},
		{name: "ENODEV", err: fmt.Errorf("write: %w", unix.ENODEV), want: true},
		{name: "joined", err: errors.Join(errors.New("other"), fmt.Errorf("x: %w", os.ErrNotExist)), want: true},
		{name: "EACCES", err: &os.PathError{Op: "open", Path: "/x", Err: unix.EACCES}, want: false},
		{name: "EINVAL", err: fmt.Errorf("write: %w", unix.EINVAL), want: false},
		{name: "plain", err: errors.New("not found"), want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cgroupfs.IsGone(tc.err); got != tc.want {
				t.Fatalf("IsGone(%v) = %v; want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestNotPlainRefusesOrdinaryFiles: an FS without PlainFiles reads and
// writes only cgroup files; the same tree as PlainFiles is read and written.
// No process-wide test mode exists that could let one FS loosen another.
func TestNotPlainRefusesOrdinaryFiles(t *testing.T) {
	root := t.TempDir()
	rel := "/kubepods/pod1/c1"
	strict := &cgroupfs.FS{Root: root, Version: 2}
	plain := &cgroupfs.FS{Root: root, Version: 2, PlainFiles: true}
	writeTree(t, strict.MemoryDir(rel), map[string]string{"memory.min": "0\n", "memory.current": "4096\n"})

	if _, err := strict.Read(rel, "memory.min"); err == nil || !strings.Contains(err.Error(), "not a cgroup file") {
		t.Errorf("strict Read of an ordinary file: err = %v; want \"not a cgroup file\"", err)
	}
	if _, err := strict.Write(rel, "memory.min", "4096"); err == nil {
		t.Error("strict Write of an ordinary file: no error")
	}
	if _, err := strict.Usage(rel); err == nil {
		t.Error("strict Usage of an ordinary file: no error")
	}
	if got := readFile(t, filepath.Join(strict.MemoryDir(rel), "memory.min")); got != "0\n" {
		t.Errorf("memory.min = %q after a refused write; want it untouched", got)
	}
	if ok, err := plain.Write(rel, "memory.min", "4096"); err != nil || !ok {
		t.Fatalf("plain Write = %v, %v; want true, nil", ok, err)
	}
	if got, err := plain.ReadInt(rel, "memory.min"); err != nil || got != 4096 {
		t.Errorf("plain ReadInt = %d, %v; want 4096", got, err)
	}
	if got, err := plain.Usage(rel); err != nil || got != 4096 {
		t.Errorf("plain Usage = %d, %v; want 4096", got, err)
	}
}

func TestApplyV1RefusesUnknownFile(t *testing.T) {
	root := t.TempDir()
	f := &cgroupfs.FS{Root: root, Version: 1, PlainFiles: true}
	rel := "/kubepods/pod1/c1"
	writeTree(t, f.MemoryDir(rel), map[string]string{cgroupfs.V1Limit: "1\n"})
	_, err := f.ApplyV1(rel, map[string]int64{cgroupfs.V1Limit: 4096})
	if err == nil || !strings.Contains(err.Error(), `"memory.limit_in_bytes" is not a file it writes`) || !strings.Contains(err.Error(), "allowed: "+cgroupfs.V1SoftLimit) {
		t.Fatalf("ApplyV1 of memory.limit_in_bytes: err = %v; want a refusal naming the allowed files", err)
	}
	if got := readFile(t, filepath.Join(f.MemoryDir(rel), cgroupfs.V1Limit)); got != "1\n" {
		t.Errorf("%s = %q; want it untouched", cgroupfs.V1Limit, got)
	}
}

func TestApplyV1(t *testing.T) {
	const (
		rel       = "/kubepods/burstable/pod1/c1"
		unlimited = "9223372036854771712\n"
	)
	tests := []struct {
		name        string
		memsw       bool // whether memory.memsw.limit_in_bytes exists
		initial     map[string]string
		values      map[string]int64
		wantChanged []string
		wantFiles   map[string]string // file -> exact content afterwards
	}{
		{
			name:        "soft limit and swappiness",
			values:      map[string]int64{cgroupfs.V1SoftLimit: 64 << 20, cgroupfs.V1Swappiness: 10},
			wantChanged: []string{cgroupfs.V1SoftLimit, cgroupfs.V1Swappiness},
			wantFiles:   map[string]string{cgroupfs.V1SoftLimit: "67108864", cgroupfs.V1Swappiness: "10"},
		},
		{
			name:        "nil values leave files untouched",
			memsw:       true,
			values:      map[string]int64{},
			wantChanged: nil,
			wantFiles:   map[string]string{cgroupfs.V1SoftLimit: unlimited, cgroupfs.V1Swappiness: "60\n", cgroupfs.V1MemSwLimit: unlimited},
		},
		{
			name:        "only swappiness",
			values:      map[string]int64{cgroupfs.V1Swappiness: 0},
			wantChanged: []string{cgroupfs.V1Swappiness},
			wantFiles:   map[string]string{cgroupfs.V1SoftLimit: unlimited, cgroupfs.V1Swappiness: "0"},
		},
		{
			name:        "memsw written when the file exists",
			memsw:       true,
			values:      map[string]int64{cgroupfs.V1SoftLimit: 1 << 20, cgroupfs.V1Swappiness: 30, cgroupfs.V1MemSwLimit: 3 << 30},
			wantChanged: []string{cgroupfs.V1SoftLimit, cgroupfs.V1Swappiness, cgroupfs.V1MemSwLimit},
			wantFiles:   map[string]string{cgroupfs.V1SoftLimit: "1048576", cgroupfs.V1Swappiness: "30", cgroupfs.V1MemSwLimit: "3221225472"},
		},
		{
			name:        "memsw limited to unlimited",
			memsw:       true,
			initial:     map[string]string{cgroupfs.V1MemSwLimit: "1073741824\n"},
			values:      map[string]int64{cgroupfs.V1MemSwLimit: -1},
			wantChanged: []string{cgroupfs.V1MemSwLimit},
			wantFiles:   map[string]string{cgroupfs.V1MemSwLimit: "-1"},
		},
		{
			name:        "memsw unlimited",
			memsw:       true,
			values:      map[string]int64{cgroupfs.V1MemSwLimit: -1},
			wantChanged: nil, // the kernel shows -1 as the largest page-aligned value: already unlimited
			wantFiles:   map[string]string{cgroupfs.V1SoftLimit: unlimited, cgroupfs.V1Swappiness: "60\n", cgroupfs.V1MemSwLimit: unlimited},
		},
		{
			name:        "memsw skipped without swap accounting",
			memsw:       false,
			values:      map[string]int64{cgroupfs.V1SoftLimit: 4096, cgroupfs.V1MemSwLimit: 3 << 30},
			wantChanged: []string{cgroupfs.V1SoftLimit},
			wantFiles:   map[string]string{cgroupfs.V1SoftLimit: "4096", cgroupfs.V1Swappiness: "60\n"},
		},
		{
			name:        "values already present",
			memsw:       true,
			initial:     map[string]string{cgroupfs.V1SoftLimit: "67108864\n", cgroupfs.V1Swappiness: "10\n", cgroupfs.V1MemSwLimit: "1073741824\n"},
			values:      map[string]int64{cgroupfs.V1SoftLimit: 64 << 20, cgroupfs.V1Swappiness: 10, cgroupfs.V1MemSwLimit: 1 << 30},
			wantChanged: nil,
			wantFiles:   map[string]string{cgroupfs.V1SoftLimit: "67108864\n", cgroupfs.V1Swappiness: "10\n", cgroupfs.V1MemSwLimit: "1073741824\n"},
		},
		{
			name:        "one of three changed",
			memsw:       true,
			initial:     map[string]string{cgroupfs.V1SoftLimit: "67108864\n", cgroupfs.V1Swappiness: "10\n", cgroupfs.V1MemSwLimit: "1073741824\n"},
			values:      map[string]int64{cgroupfs.V1SoftLimit: 64 << 20, cgroupfs.V1Swappiness: 20, cgroupfs.V1MemSwLimit: 1 << 30},
			wantChanged: []string{cgroupfs.V1Swappiness},
			wantFiles:   map[string]string{cgroupfs.V1SoftLimit: "67108864\n", cgroupfs.V1Swappiness: "20", cgroupfs.V1MemSwLimit: "1073741824\n"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			f := &cgroupfs.FS{Root: root, Version: 1, PlainFiles: true}
			dir := f.MemoryDir(rel)
			files := map[string]string{
				cgroupfs.V1SoftLimit:  unlimited,
				cgroupfs.V1Swappiness: "60\n",
				cgroupfs.V1Limit:      unlimited,
			}
			if tc.memsw {
				files[cgroupfs.V1MemSwLimit] = unlimited
			}
			for k, v := range tc.initial {
				files[k] = v
			}
			writeTree(t, dir, files)

			changed, err := f.ApplyV1(rel, tc.values)
			if err != nil {
				t.Fatalf("ApplyV1: %v", err)
			}
			if !slices.Equal(changed, tc.wantChanged) {
				t.Errorf("ApplyV1 changed = %q; want %q", changed, tc.wantChanged)
			}
			for file, want := range tc.wantFiles {
				if got := readFile(t, filepath.Join(dir, file)); got != want {
					t.Errorf("%s = %q; want %q", file, got, want)
				}
			}
			if got := readFile(t, filepath.Join(dir, cgroupfs.V1Limit)); got != unlimited {
				t.Errorf("%s = %q; ApplyV1 must not touch it", cgroupfs.V1Limit, got)
			}
			if _, err := os.Stat(filepath.Join(dir, cgroupfs.V1MemSwLimit)); !tc.memsw && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("ApplyV1 created %s without swap accounting (stat: %v)", cgroupfs.V1MemSwLimit, err)
			}
		})
	}
}

func TestApplyV1Errors(t *testing.T) {
	const rel = "/kubepods/pod1/c1"
	t.Run("v2 mount", func(t *testing.T) {
		root := t.TempDir()
		writeTree(t, root, map[string]string{"kubepods/pod1/c1/memory.min": "0\n"})
		f := &cgroupfs.FS{Root: root, Version: 2, PlainFiles: true}
		changed, err := f.ApplyV1(rel, map[string]int64{cgroupfs.V1SoftLimit: 1})
		if err == nil {
			t.Fatal("ApplyV1 on v2 returned no error")
		}
		if !strings.Contains(err.Error(), "v2") {
			t.Errorf("error = %q; want it to mention v2", err)
		}
		if changed != nil {
			t.Errorf("changed = %q; want nil", changed)
		}
		if _, err := os.Stat(filepath.Join(root, "kubepods/pod1/c1", cgroupfs.V1SoftLimit)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ApplyV1 on v2 created a v1 file (stat: %v)", err)
		}
	})
	t.Run("vanished cgroup", func(t *testing.T) {
		root := t.TempDir()
		f := &cgroupfs.FS{Root: root, Version: 1, PlainFiles: true}
		if err := os.MkdirAll(f.MemoryDir("/kubepods/pod1"), 0o755); err != nil {
			t.Fatal(err)
		}
		changed, err := f.ApplyV1(rel, map[string]int64{cgroupfs.V1SoftLimit: 1 << 20, cgroupfs.V1Swappiness: 10, cgroupfs.V1MemSwLimit: 1 << 30})
		if err == nil {
			t.Fatal("ApplyV1 on a vanished cgroup returned no error")
		}
		if !cgroupfs.IsGone(err) {
			t.Errorf("IsGone(%v) = false; want true", err)
		}
		for _, s := range []string{filepath.Join(f.MemoryDir(rel), cgroupfs.V1SoftLimit), filepath.Join(f.MemoryDir(rel), cgroupfs.V1Swappiness)} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error = %q; want it to contain %q", err, s)
			}
		}
		if len(changed) != 0 {
			t.Errorf("changed = %q; want none", changed)
		}
		if _, err := os.Stat(f.MemoryDir(rel)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ApplyV1 recreated the vanished cgroup dir (stat: %v)", err)
		}
	})
}

// newRealV1Cgroup creates a fresh child of the host's v1 memory cgroup, or
// skips when that is impossible here.
func newRealV1Cgroup(t *testing.T) (*cgroupfs.FS, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a cgroup")
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup/memory", &st); err != nil || st.Type != unix.CGROUP_SUPER_MAGIC {
		t.Skip("no cgroup v1 memory controller at /sys/fs/cgroup/memory")
	}
	f := &cgroupfs.FS{Root: "/sys/fs/cgroup", Version: 1}
	rel := fmt.Sprintf("/memqos-test-%d-%x", os.Getpid(), rand.Uint64())
	dir := f.MemoryDir(rel)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("mkdir %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Rmdir(dir); err != nil && !errors.Is(err, unix.ENOENT) {
			t.Errorf("rmdir %s: %v", dir, err)
		}
	})
	return f, rel
}

// TestRealCgroupV1 writes a real kernel cgroup the way production does:
// through the cgroups library's checked opens (PlainFiles off).
func TestRealCgroupV1(t *testing.T) {
	f, rel := newRealV1Cgroup(t)
	dir := f.MemoryDir(rel)
	if f.PlainFiles {
		t.Fatal("a real cgroup must not be written as plain files")
	}

	changed, err := f.ApplyV1(rel, map[string]int64{cgroupfs.V1SoftLimit: 64 << 20, cgroupfs.V1Swappiness: 10})
	if err != nil {
		t.Fatalf("ApplyV1 on a real cgroup: %v", err)
	}
	if want := []string{cgroupfs.V1SoftLimit, cgroupfs.V1Swappiness}; !slices.Equal(changed, want) {
		t.Errorf("changed = %q; want %q", changed, want)
	}
	for file, want := range map[string]string{cgroupfs.V1SoftLimit: "67108864\n", cgroupfs.V1Swappiness: "10\n"} {
		if got := readFile(t, filepath.Join(dir, file)); got != want {
			t.Errorf("kernel %s = %q; want %q", file, got, want)
		}
	}
	for file, want := range map[string]int64{cgroupfs.V1SoftLimit: 67108864, cgroupfs.V1Swappiness: 10} {
		if got, err := f.ReadInt(rel, file); err != nil || got != want {
			t.Errorf("ReadInt(%s) = %d, %v; want %d", file, got, err, want)
		}
	}

	// The same values again: nothing to write.
	changed, err = f.ApplyV1(rel, map[string]int64{cgroupfs.V1SoftLimit: 64 << 20, cgroupfs.V1Swappiness: 10})
	if err != nil {
		t.Fatalf("second ApplyV1: %v", err)
	}
	if len(changed) != 0 {
		t.Errorf("second ApplyV1 changed = %q; want none", changed)
	}

	// Swap: memsw must not be below the limit, so set the limit first.
	if f.Exists(rel, cgroupfs.V1MemSwLimit) {
		if err := os.WriteFile(filepath.Join(dir, cgroupfs.V1Limit), []byte("134217728"), 0); err != nil {
			t.Fatalf("setting the limit: %v", err)
		}
		changed, err = f.ApplyV1(rel, map[string]int64{cgroupfs.V1Swappiness: 10, cgroupfs.V1MemSwLimit: 256 << 20})
		if err != nil {
			t.Fatalf("ApplyV1 with memsw: %v", err)
		}
		if want := []string{cgroupfs.V1MemSwLimit}; !slices.Equal(changed, want) {
			t.Errorf("changed = %q; want %q", changed, want)
		}
		if got := readFile(t, filepath.Join(dir, cgroupfs.V1MemSwLimit)); got != "268435456\n" {
			t.Errorf("kernel %s = %q; want %q", cgroupfs.V1MemSwLimit, got, "268435456\n")
		}
		// A memsw below the limit is refused by the kernel: the error is
		// reported and is not "gone".
		_, err = f.ApplyV1(rel, map[string]int64{cgroupfs.V1MemSwLimit: 64 << 20})
		if err == nil {
			t.Errorf("ApplyV1 with memsw below the limit: no error")
		} else if cgroupfs.IsGone(err) {
			t.Errorf("IsGone(%v) = true for a refused value", err)
		}
	} else {
		t.Log("no memory.memsw.limit_in_bytes (swapaccount=0): memsw part skipped")
	}

	// Write must not create files on a real cgroup either.
	if _, err := f.Write(rel, "memory.no_such_file", "1"); !cgroupfs.IsGone(err) {
		t.Errorf("Write of a missing kernel file: err = %v; want an IsGone error", err)
	}
}

// TestRealCgroupV1Vanished removes a real cgroup and checks that writing it
// reports an IsGone error.
func TestRealCgroupV1Vanished(t *testing.T) {
	f, rel := newRealV1Cgroup(t)
	if err := unix.Rmdir(f.MemoryDir(rel)); err != nil {
		t.Fatal(err)
	}
	changed, err := f.ApplyV1(rel, map[string]int64{cgroupfs.V1SoftLimit: 64 << 20, cgroupfs.V1Swappiness: 10})
	if err == nil {
		t.Fatal("ApplyV1 on a removed cgroup: no error")
	}
	if !cgroupfs.IsGone(err) {
		t.Errorf("IsGone(%v) = false; want true", err)
	}
	if len(changed) != 0 {
		t.Errorf("changed = %q; want none", changed)
	}
}

// TestRealCgroupV1Rounding documents how the kernel stores values that are not
// page aligned or "unlimited": it reads them back differently, so Write sees a
// difference and rewrites them on every call.
func TestRealCgroupV1Rounding(t *testing.T) {
	f, rel := newRealV1Cgroup(t)
	dir := f.MemoryDir(rel)
	v := map[string]int64{cgroupfs.V1SoftLimit: 100_000_000} // 100M, not page aligned
	if _, err := f.ApplyV1(rel, v); err != nil {
		t.Fatal(err)
	}
	page := int64(os.Getpagesize())
	want := fmt.Sprintf("%d\n", 100_000_000/page*page)
	if got := readFile(t, filepath.Join(dir, cgroupfs.V1SoftLimit)); got != want {
		t.Errorf("kernel %s = %q; want %q (rounded down to the page size)", cgroupfs.V1SoftLimit, got, want)
	}
	changed, err := f.ApplyV1(rel, v)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second ApplyV1 of an unaligned soft limit reports changed = %q", changed)
}
