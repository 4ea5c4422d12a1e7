package cgroupfs

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/opencontainers/cgroups/fscommon"
	"golang.org/x/sys/unix"
)

// PSI is one memory.pressure (or /proc/pressure/memory) reading: the
// "some" and "full" lines' avg10 (percent) and total (microseconds
// stalled since the cgroup was made).
type PSI struct {
	SomeAvg10, FullAvg10 float64
	SomeTotal, FullTotal uint64
}

// Signals are what priority-aware reclaim reads of a container on a tick
// (cgroup v2): from memory.stat its anonymous and file memory, its
// workingset refault counters and the pages reclaim took from it (pgsteal:
// the kernel's and memory.reclaim's), from memory.pressure its stall.
type Signals struct {
	Anon, File               uint64
	RefaultFile, RefaultAnon uint64
	Steal                    uint64
	// HasPSI is false when the kernel keeps no pressure accounting
	// (memory.pressure missing, Linux before 4.20 or psi=0): PSI is then
	// unknown, not zero.
	HasPSI bool
	PSI    PSI
}

// ReadSignals reads memory.stat and memory.pressure of a cgroup v2 cgroup,
// one read of each, keeping only the keys it needs (it runs on every tick
// for the containers that ask for priority-aware reclaim).
func (f *FS) ReadSignals(rel string) (Signals, error) {
	if f.Version != 2 {
		return Signals{}, errors.New("memory signals are read on cgroup v2 only")
	}
	dir := f.MemoryDir(rel)
	var s Signals
	err := f.readStat(dir, func(key string) *uint64 {
		switch key {
		case "anon":
			return &s.Anon
		case "file":
			return &s.File
		case "workingset_refault_file":
			return &s.RefaultFile
		case "workingset_refault_anon":
			return &s.RefaultAnon
		case "workingset_refault":
			// Before Linux 5.9 one counter for both kinds.
			return &s.RefaultFile
		case "pgsteal":
			return &s.Steal
		}
		return nil
	})
	if err != nil {
		return Signals{}, err
	}
	s.PSI, s.HasPSI, err = f.readPressure(rel, dir)
	if err != nil {
		return Signals{}, err
	}
	return s, nil
}

// readStat reads memory.stat once, parsing the value of each key pick
// gives a destination for (it runs on every tick: no map, no copy of the
// keys it skips).
func (f *FS) readStat(dir string, pick func(key string) *uint64) error {
	err := f.readSmall(dir, FileStat, func(b []byte) error {
		// The file read as a string without a copy (a kilobyte per
		// container and tick): nothing keeps a part of it, the keys are
		// only compared and the values parsed, and an error gets a copy
		// of the value it names.
		text := unsafe.String(unsafe.SliceData(b), len(b))
		for line := range strings.SplitSeq(text, "\n") {
			key, val, ok := strings.Cut(line, " ")
			if !ok {
				continue
			}
			dst := pick(key)
			if dst == nil {
				continue
			}
			n, err := fscommon.ParseUint(val, 10, 64)
			if err != nil {
				_, err = fscommon.ParseUint(strings.Clone(val), 10, 64)
				return &fscommon.ParseError{Path: dir, File: FileStat, Err: err}
			}
			*dst = n
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", filepath.Join(dir, FileStat), err)
	}
	return nil
}

// readPressure reads memory.pressure; ok is false, with no error, when the
// kernel keeps no pressure accounting (the cgroup is there, its file is not).
func (f *FS) readPressure(rel, dir string) (p PSI, ok bool, err error) {
	err = f.readSmall(dir, FilePressure, func(b []byte) error {
		var perr error
		if p, perr = ParsePSI(b); perr != nil {
			return &fscommon.ParseError{Path: dir, File: FilePressure, Err: perr}
		}
		return nil
	})
	switch {
	case err == nil:
		return p, true, nil
	case IsGone(err) && f.Exists(rel, ""):
		return PSI{}, false, nil
	default:
		return PSI{}, false, fmt.Errorf("failed to read %s: %w", filepath.Join(dir, FilePressure), err)
	}
}

// ParsePSI parses the "some" and "full" lines of a pressure file
// ("some avg10=0.12 avg60=0.05 avg300=0.01 total=12345"). A kernel that
// writes only "some" (the cpu file before Linux 5.13) leaves full at 0.
func ParsePSI(b []byte) (PSI, error) {
	var p PSI
	seen := false
	for line := range strings.SplitSeq(string(b), "\n") {
		kind, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		var avg *float64
		var total *uint64
		switch kind {
		case "some":
			avg, total = &p.SomeAvg10, &p.SomeTotal
			seen = true
		case "full":
			avg, total = &p.FullAvg10, &p.FullTotal
		default:
			continue
		}
		for field := range strings.FieldsSeq(rest) {
			k, v, _ := strings.Cut(field, "=")
			var err error
			switch k {
			case "avg10":
				*avg, err = strconv.ParseFloat(v, 64)
			case "total":
				*total, err = strconv.ParseUint(v, 10, 64)
			}
			if err != nil {
				return PSI{}, fmt.Errorf("bad %s line %q: %w", kind, line, err)
			}
		}
	}
	if !seen {
		return PSI{}, fmt.Errorf("no \"some\" line in %q", string(b))
	}
	return p, nil
}

// ReclaimFile asks the kernel to reclaim bytes from the cgroup, file pages
// only where the kernel accepts memory.reclaim's "swappiness=0" argument
// (newer kernels; the first refusal, EINVAL, is remembered and every later
// call writes the plain request, which reclaims file and anonymous pages
// as the kernel's own reclaim would). It reports whether the argument was
// used. EAGAIN (less reclaimed than asked) is returned wrapped, as from
// Reclaim.
func (f *FS) ReclaimFile(rel string, bytes int64) (fileOnly bool, err error) {
	if f.Version != 2 {
		return false, errors.New("memory.reclaim exists on cgroup v2 only")
	}
	if noSwappinessArg.Load() {
		return false, f.Reclaim(rel, bytes)
	}
	dir := f.MemoryDir(rel)
	err = f.writeFile(dir, FileReclaim, strconv.FormatInt(bytes, 10)+" swappiness=0")
	if errors.Is(err, unix.EINVAL) {
		noSwappinessArg.Store(true)
		return false, f.Reclaim(rel, bytes)
	}
	if err != nil {
		return true, fmt.Errorf("failed to reclaim %d bytes of file pages from %s: %w", bytes, dir, err)
	}
	return true, nil
}

// noSwappinessArg records that memory.reclaim refused "swappiness=": a
// property of the running kernel, so one for the process.
var noSwappinessArg atomic.Bool
