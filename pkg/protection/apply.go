package protection

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/state"
)

// Mode selects which direction Apply may move values.
type Mode int

const (
	// RaiseOnly raises ancestors that hold less than their target and
	// lowers nothing: used before a container's own values grow.
	RaiseOnly Mode = iota
	// Full also lowers the plugin's own excess down to the target: used
	// after containers went away or shrank.
	Full
)

// Change is one ancestor file the ledger wrote.
type Change struct {
	Path, File string
	From, To   int64
	// Repair tells that the value the plugin had written was changed by
	// someone else to below the target, and the ledger wrote it back.
	Repair bool
}

// Apply brings the given ancestors' memory.min and memory.low to their
// targets, max(baseline, sum promised below), never above the ledger's
// bound or the cgroup's own memory.max. A value the plugin did not write
// is someone else's (kubelet's) and becomes the baseline: the ledger raises
// above it and lowers only its own excess, never below it. Raises go
// outermost first, lowerings innermost first, so a child never holds more
// than its parent grants in between. Vanished cgroups are skipped.
//
// Every file is read before it is written, the ledger's own too: a value
// someone else raised since the ledger's last write becomes the baseline
// instead of being overwritten.
func (l *Ledger) Apply(fs Files, paths []string, mode Mode) ([]Change, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	paths = dedupe(paths)
	slices.SortFunc(paths, func(a, b string) int { return len(a) - len(b) })

	var raises, lowers []action
	var errs []error
	for _, p := range paths {
		r, lw, err := l.plan(fs, p, mode)
		raises, lowers = append(raises, r...), append(lowers, lw...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	slices.Reverse(lowers)
	changes, wrote, err := l.write(fs, append(raises, lowers...))
	if err != nil {
		errs = append(errs, err)
	}
	if l.journal != nil && (len(wrote) > 0 || len(l.forgot) > 0) {
		l.journal.Wrote(wrote, l.forgot)
	}
	l.forgot = nil
	if err := errors.Join(errs...); err != nil {
		return changes, fmt.Errorf("ancestor protection: %w", err)
	}
	return changes, nil
}

// Repair checks every ancestor the ledger holds a promise or a value for
// and brings it back to its target, as Apply in Full mode does, one
// ancestor at a time: the ledger is locked for one ancestor's reads and
// writes, never for all of them, so events are not kept waiting.
func (l *Ledger) Repair(fs Files) ([]Change, error) {
	l.mu.Lock()
	clear(l.maxes)
	paths := make([]string, 0, len(l.sumMin)+len(l.files))
	for p := range l.sumMin {
		paths = append(paths, p)
	}
	for p := range l.sumLow {
		paths = append(paths, p)
	}
	for k := range l.files {
		paths = append(paths, k.path)
	}
	l.mu.Unlock()
	paths = dedupe(paths)
	slices.SortFunc(paths, func(a, b string) int { return len(a) - len(b) })

	var changes []Change
	var errs []error
	// Raises outermost first, then lowerings innermost first.
	inner := slices.Clone(paths)
	slices.Reverse(inner)
	for pass, order := range [][]string{paths, inner} {
		mode := RaiseOnly
		if pass == 1 {
			mode = Full
		}
		for _, p := range order {
			c, err := l.Apply(fs, []string{p}, mode)
			changes = append(changes, c...)
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return changes, errors.Join(errs...)
}

// action is one planned write.
type action struct {
	path, file string
	from, to   int64
	repair     bool
}

// plan reads one ancestor's files and decides what to write. Callers hold
// l.mu.
func (l *Ledger) plan(fs Files, p string, mode Mode) (raises, lowers []action, err error) {
	sumMin, sumLow := l.sums(p)
	var errs []error
	memMax := int64(-2) // not read yet
	for _, f := range []struct {
		file string
		sum  int64
	}{{cgroupfs.FileMin, sumMin}, {cgroupfs.FileLow, sumLow}} {
		k := key{p, f.file}
		rec := l.files[k]
		if rec == nil && f.sum == 0 {
			continue // nothing promised, nothing of ours there
		}
		cur, err := fs.ReadInt(p, f.file)
		if err != nil {
			if cgroupfs.IsGone(err) {
				// The cgroup went away, and with it what was written there.
				l.drop(k)
			} else {
				errs = append(errs, err)
			}
			continue
		}
		if cur < 0 {
			// "max": above any sum, and never a value the ledger writes.
			continue
		}
		if rec != nil && rec.hasPrevious && cur == rec.previous {
			rec.written = cur // the write noted before a crash never happened
		}
		if rec != nil {
			rec.hasPrevious = false
		}
		foreign := rec == nil || cur != rec.written
		repair := rec != nil && foreign
		if rec == nil {
			rec = &record{}
			l.files[k] = rec
		}
		if foreign {
			rec.baseline, rec.written = cur, cur
		}
		target := max(rec.baseline, f.sum)
		if l.max > 0 {
			target = min(target, max(l.max, rec.baseline))
		}
		if target > cur {
			if memMax == -2 {
				memMax = l.memoryMax(fs, p)
			}
			if memMax >= 0 && target > memMax {
				target = max(memMax, cur)
			}
		}
		switch {
		case target > cur:
			raises = append(raises, action{p, f.file, cur, target, repair})
		case target < cur && mode == Full:
			lowers = append(lowers, action{p, f.file, cur, target, false})
		case target == cur && f.sum == 0 && cur == rec.baseline:
			l.drop(k) // back at the baseline: nothing of ours left
		}
	}
	return raises, lowers, errors.Join(errs...)
}

// memoryMax is the cgroup's own memory.max, -1 when unlimited or unknown:
// read once, then cached until Repair (kubelet changes a pod's at an
// in-place resize). Callers hold l.mu.
func (l *Ledger) memoryMax(fs Files, p string) int64 {
	if v, ok := l.maxes[p]; ok {
		return v
	}
	v, err := fs.ReadInt(p, cgroupfs.FileMax)
	if err != nil {
		v = -1
	}
	l.maxes[p] = v
	return v
}

// drop forgets one file's record, for the journal too. Callers hold l.mu.
func (l *Ledger) drop(k key) {
	if _, ok := l.files[k]; ok {
		delete(l.files, k)
		l.forgot = append(l.forgot, state.Value{Path: k.path, File: k.file})
	}
}

// write carries out planned writes in order, after telling the journal;
// wrote is what the files it kept a record of hold after (a failed write
// leaves the value before). Callers hold l.mu.
func (l *Ledger) write(fs Files, actions []action) (changes []Change, wrote []state.Value, err error) {
	if l.journal != nil && len(actions) > 0 {
		vals := make([]state.Value, 0, len(actions))
		for _, a := range actions {
			rec := l.files[key{a.path, a.file}]
			if rec == nil {
				continue
			}
			from := a.from
			vals = append(vals, state.Value{Path: a.path, File: a.file, Value: a.to, Baseline: rec.baseline, Previous: &from})
		}
		l.journal.Writing(vals)
	}
	var errs []error
	for _, a := range actions {
		k := key{a.path, a.file}
		_, err := fs.Write(a.path, a.file, strconv.FormatInt(a.to, 10))
		switch {
		case err != nil && cgroupfs.IsGone(err):
			l.drop(k)
		case err != nil:
			errs = append(errs, err)
		default:
			if rec := l.files[k]; rec != nil {
				rec.written = a.to
				if a.to == rec.baseline && l.sumOf(k) == 0 {
					l.drop(k)
				}
			}
			changes = append(changes, Change{Path: a.path, File: a.file, From: a.from, To: a.to, Repair: a.repair})
		}
		if rec := l.files[k]; rec != nil && l.journal != nil {
			wrote = append(wrote, state.Value{Path: a.path, File: a.file, Value: rec.written, Baseline: rec.baseline})
		}
	}
	return changes, wrote, errors.Join(errs...)
}

// sumOf is the sum promised below one ancestor file. Callers hold l.mu.
func (l *Ledger) sumOf(k key) int64 {
	sumMin, sumLow := l.sums(k.path)
	if k.file == cgroupfs.FileMin {
		return sumMin
	}
	return sumLow
}
