package cgroupfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"
)

// FS is one cgroup mount: its root and version. On v1 the memory controller
// lives in Root/memory, on v2 in Root itself.
type FS struct {
	Root    string
	Version int
	// PlainFiles reads and writes Root as an ordinary directory tree laid
	// out like a cgroup mount (a test tree): plain opens, and a write
	// creates a missing file. Without it every open goes through the cgroups
	// library, which refuses files that are not on a cgroup filesystem.
	// Detect sets it when Root is not on a cgroup filesystem.
	PlainFiles bool
}

// Detect decides the cgroup version of root: "auto" looks at the filesystem
// (cgroup2 magic, or a cgroup.controllers file at the top) and at the
// layout (a memory/ directory means v1); "1" and "2" are taken as given.
// The FS it returns reads root as plain files (PlainFiles) when root's
// memory directory is not on a cgroup filesystem.
func Detect(root, want string) (*FS, error) {
	fs, err := detectVersion(root, want)
	if err != nil {
		return nil, err
	}
	fs.PlainFiles = !IsCgroupFilesystem(fs.MemoryDir("/"))
	return fs, nil
}

func detectVersion(root, want string) (*FS, error) {
	switch want {
	case "1":
		return &FS{Root: root, Version: 1}, nil
	case "2":
		return &FS{Root: root, Version: 2}, nil
	case "auto", "":
	default:
		return nil, fmt.Errorf("cgroup version %q is not allowed; allowed: auto, 1, 2", want)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return nil, fmt.Errorf("cgroup root %q: %w", root, err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return &FS{Root: root, Version: 2}, nil
	}
	if fi, err := os.Stat(filepath.Join(root, "memory")); err == nil && fi.IsDir() {
		return &FS{Root: root, Version: 1}, nil
	}
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		return &FS{Root: root, Version: 2}, nil
	}
	return nil, fmt.Errorf("cgroup root %q: no cgroup v2 mount and no v1 memory hierarchy found", root)
}

// IsCgroupFilesystem tells whether dir is on a cgroup (v1 or v2) filesystem.
// A root elsewhere (a test tree in a temporary directory) is written as plain
// files.
func IsCgroupFilesystem(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Type == unix.CGROUP2_SUPER_MAGIC || st.Type == unix.CGROUP_SUPER_MAGIC
}

// open opens a file of a cgroup directory: through the cgroups library (which
// checks that it is a cgroup file), or as a plain file for a PlainFiles tree,
// where a write creates the file.
func (f *FS) open(dir, file string, flags int) (*os.File, error) {
	if !f.PlainFiles {
		return cgroups.OpenFile(dir, file, flags)
	}
	mode := os.FileMode(0)
	if flags&(os.O_WRONLY|os.O_RDWR) != 0 {
		flags |= os.O_TRUNC | os.O_CREATE
		mode = 0o644
	}
	return os.OpenFile(filepath.Join(dir, filepath.Clean("/"+file)), flags|unix.O_CLOEXEC, mode)
}

// readFile reads a whole file of a cgroup directory.
func (f *FS) readFile(dir, file string) (string, error) {
	fd, err := f.open(dir, file, unix.O_RDONLY)
	if err != nil {
		return "", err
	}
	defer fd.Close()
	b, err := io.ReadAll(fd)
	return string(b), err
}

// writeFile writes data into a file of a cgroup directory in one write.
func (f *FS) writeFile(dir, file, data string) error {
	fd, err := f.open(dir, file, unix.O_WRONLY)
	if err != nil {
		return err
	}
	_, err = fd.WriteString(data)
	if cerr := fd.Close(); err == nil {
		err = cerr
	}
	return err
}

// MemoryDir is the absolute directory of rel in the memory hierarchy.
func (f *FS) MemoryDir(rel string) string {
	if f.Version == 1 {
		return filepath.Join(f.Root, "memory", rel)
	}
	// The usual case, a clean absolute rel under a clean absolute root, is
	// what filepath.Join returns, made with one allocation instead of three
	// (it runs twice per container and tick).
	if len(rel) > 1 && rel[0] == '/' && len(f.Root) > 1 && f.Root[0] == '/' && f.Root[len(f.Root)-1] != '/' &&
		filepath.Clean(rel) == rel && filepath.Clean(f.Root) == f.Root {
		return f.Root + rel
	}
	return filepath.Join(f.Root, rel)
}

// readBufs are the buffers readSmall reads into; one that grew beyond
// maxPooledBuf (a file far larger than those readSmall is meant for) is
// dropped rather than kept.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const maxPooledBuf = 16 << 10

// readSmall reads a whole cgroup file, opened with the cgroups library's
// OpenFile (which keeps the open on the cgroup filesystem), into a pooled
// buffer and hands its content to use, which must not keep it. It is for the
// files read for every container on every tick (memory.current,
// memory.events, a few dozen bytes): unlike cgroups.ReadFile it allocates no
// buffer and no copy of the content per read.
func (f *FS) readSmall(dir, file string, use func([]byte) error) error {
	fd, err := f.open(dir, file, unix.O_RDONLY)
	if err != nil {
		return err
	}
	defer fd.Close()
	bp := readBufs.Get().(*[]byte)
	b := (*bp)[:0]
	defer func() {
		if cap(b) <= maxPooledBuf {
			*bp = b[:0]
			readBufs.Put(bp)
		}
	}()
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := fd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return use(b)
		}
		if err != nil {
			return err
		}
	}
}

// Read returns the trimmed content of a memory controller file.
func (f *FS) Read(rel, file string) (string, error) {
	s, err := f.readFile(f.MemoryDir(rel), file)
	if err != nil {
		return "", fmt.Errorf("failed to read %s: %w", filepath.Join(f.MemoryDir(rel), file), err)
	}
	return strings.TrimSpace(s), nil
}

// ReadInt reads a file holding one integer; "max" reads as -1.
func (f *FS) ReadInt(rel, file string) (int64, error) {
	s, err := f.Read(rel, file)
	if err != nil {
		return 0, err
	}
	if s == "max" {
		return -1, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("failed to parse %s: %q is not an integer", filepath.Join(f.MemoryDir(rel), file), s)
	}
	return v, nil
}

// Write writes value unless the file already holds it. It reports whether it
// wrote. Errors name the file and value and wrap the cause, so
// errors.Is(err, os.ErrNotExist) tells a vanished cgroup.
func (f *FS) Write(rel, file, value string) (bool, error) {
	dir := f.MemoryDir(rel)
	if cur, err := f.readFile(dir, file); err == nil && strings.TrimSpace(cur) == value {
		return false, nil
	} else if err != nil && errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("failed to write %q to %s: %w", value, filepath.Join(dir, file), err)
	}
	if err := f.writeFile(dir, file, value); err != nil {
		return false, fmt.Errorf("failed to write %q to %s: %w", value, filepath.Join(dir, file), err)
	}
	return true, nil
}

// Exists tells whether a file exists in rel's memory directory.
func (f *FS) Exists(rel, file string) bool {
	_, err := os.Stat(filepath.Join(f.MemoryDir(rel), file))
	return err == nil
}

// IsGone tells whether err means the cgroup (or file) no longer exists.
func IsGone(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENODEV)
}

// Limit is the memory limit in force on a cgroup: memory.limit_in_bytes
// (v1) or memory.max (v2); 0 when unlimited. The runtime's view of it can
// be stale (CRI-O's Synchronize after `crictl update --memory` and a
// restart reports the creation-time limit): this is the kernel's.
func (f *FS) Limit(rel string) (int64, error) {
	file := FileMax
	if f.Version == 1 {
		file = V1Limit
	}
	v, err := f.ReadInt(rel, file)
	if err != nil {
		return 0, err
	}
	if v < 0 || v >= v1Unlimited {
		return 0, nil
	}
	return v, nil
}
