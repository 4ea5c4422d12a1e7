package cgroupfs

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups/fscommon"
)

// Events are a container's memory event counters since its cgroup was made.
//
// cgroup v2: memory.events oom_kill, oom, high (throttled at memory.high),
// max (hit memory.max). cgroup v1: memory.oom_control oom_kill and
// memory.failcnt as max; v1 counts no oom or high events.
type Events struct {
	OOMKill, OOM, High, Max uint64
}

// Usage is the memory the cgroup uses: memory.current (v2) or
// memory.usage_in_bytes (v1). It reads as fscommon.GetCgroupParamUint does
// ("max" is the largest value, negative values read as 0) but without its
// per-read buffer and string: it runs for every container on every tick.
func (f *FS) Usage(rel string) (int64, error) {
	file := FileCurrent
	if f.Version == 1 {
		file = V1Usage
	}
	dir := f.MemoryDir(rel)
	v, err := f.readUint(dir, file)
	if err != nil {
		return 0, fmt.Errorf("failed to read %s: %w", filepath.Join(dir, file), err)
	}
	return int64(min(v, math.MaxInt64)), nil
}

// ReadEvents reads the event counters.
//
// On cgroup v2 it reads memory.events once and parses its lines with the
// cgroups library's key-value parser: the reconciler reads it for many
// containers per tick, so it costs one open and read of one file and no more
// (no stat beforehand, no containerd manager, no map). A missing
// memory.events is an error that IsGone recognises, never "no events" (as
// containerd's reader would have it): a vanished cgroup must not look like a
// container without events.
func (f *FS) ReadEvents(rel string) (Events, error) {
	dir := f.MemoryDir(rel)
	if f.Version == 1 {
		var e Events
		var err error
		if e.OOMKill, err = f.valueByKey(dir, V1OOMControl, "oom_kill"); err != nil {
			return Events{}, fmt.Errorf("failed to read %s: %w", filepath.Join(dir, V1OOMControl), err)
		}
		if e.Max, err = f.readUint(dir, V1FailCnt); err != nil {
			return Events{}, fmt.Errorf("failed to read %s: %w", filepath.Join(dir, V1FailCnt), err)
		}
		return e, nil
	}
	var e Events
	err := f.readSmall(dir, FileEvents, func(b []byte) error {
		for line := range strings.SplitSeq(string(b), "\n") {
			if line == "" {
				continue
			}
			key, v, err := fscommon.ParseKeyValue(line)
			if err != nil {
				return &fscommon.ParseError{Path: dir, File: FileEvents, Err: err}
			}
			switch key {
			case "oom_kill":
				e.OOMKill = v
			case "oom":
				e.OOM = v
			case "high":
				e.High = v
			case "max":
				e.Max = v
			}
		}
		return nil
	})
	if err != nil {
		return Events{}, fmt.Errorf("failed to read %s: %w", filepath.Join(dir, FileEvents), err)
	}
	return e, nil
}

// valueByKey reads the value of key from a flat keyed file ("key value"
// lines), as fscommon.GetValueByKey does; a missing key reads as 0.
func (f *FS) valueByKey(dir, file, key string) (uint64, error) {
	var v uint64
	err := f.readSmall(dir, file, func(b []byte) error {
		for line := range strings.SplitSeq(string(b), "\n") {
			k, val, ok := strings.Cut(line, " ")
			if !ok || k != key {
				continue
			}
			n, err := fscommon.ParseUint(strings.TrimSpace(val), 10, 64)
			if err != nil {
				return &fscommon.ParseError{Path: dir, File: file, Err: err}
			}
			v = n
			return nil
		}
		return nil
	})
	return v, err
}

// readUint reads a file holding one unsigned integer ("max" is the largest
// value, negative values read as 0), as fscommon.GetCgroupParamUint does,
// without a buffer or string per read.
func (f *FS) readUint(dir, file string) (uint64, error) {
	var v uint64
	err := f.readSmall(dir, file, func(b []byte) error {
		s := string(bytes.TrimSpace(b)) // a few bytes: no allocation
		if s == "max" {
			v = math.MaxUint64
			return nil
		}
		n, err := fscommon.ParseUint(s, 10, 64)
		if err != nil {
			return &fscommon.ParseError{Path: dir, File: file, Err: err}
		}
		v = n
		return nil
	})
	return v, err
}

// MemoryStats is what the reconciler reads from memory.stat and
// memory.pressure (cgroup v2).
type MemoryStats struct {
	InactiveFile, ActiveFile, InactiveAnon, ActiveAnon uint64
	// PSI is false when the kernel has no pressure accounting (memory.pressure
	// missing): the averages are then meaningless, not zero.
	PSI                  bool
	SomeAvg10, FullAvg10 float64
}

// ReadMemoryStats reads the LRU sizes of memory.stat and the averages of
// memory.pressure (cgroup v2 only).
func (f *FS) ReadMemoryStats(rel string) (*MemoryStats, error) {
	if f.Version != 2 {
		return nil, errors.New("memory statistics are read on cgroup v2 only")
	}
	dir := f.MemoryDir(rel)
	out := &MemoryStats{}
	err := f.readStat(dir, func(key string) *uint64 {
		switch key {
		case "inactive_file":
			return &out.InactiveFile
		case "active_file":
			return &out.ActiveFile
		case "inactive_anon":
			return &out.InactiveAnon
		case "active_anon":
			return &out.ActiveAnon
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	psi, ok, err := f.readPressure(rel, dir)
	if err != nil {
		return nil, err
	}
	out.PSI, out.SomeAvg10, out.FullAvg10 = ok, psi.SomeAvg10, psi.FullAvg10
	return out, nil
}

// Reclaim asks the kernel to reclaim bytes from the cgroup (memory.reclaim,
// cgroup v2, Linux 5.19+). The kernel answers EAGAIN when it reclaimed less
// than asked: that is returned, wrapped, for the caller to tell apart.
func (f *FS) Reclaim(rel string, bytes int64) error {
	if f.Version != 2 {
		return errors.New("memory.reclaim exists on cgroup v2 only")
	}
	dir := f.MemoryDir(rel)
	if err := f.writeFile(dir, FileReclaim, strconv.FormatInt(bytes, 10)); err != nil {
		return fmt.Errorf("failed to reclaim %d bytes from %s: %w", bytes, dir, err)
	}
	return nil
}
