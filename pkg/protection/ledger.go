package protection

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/state"
)

// Files is the cgroup I/O the ledger needs; *cgroupfs.FS implements it.
type Files interface {
	ReadInt(rel, file string) (int64, error)
	Write(rel, file, value string) (bool, error)
}

var _ Files = (*cgroupfs.FS)(nil)

// Promise is what one container was promised.
type Promise struct {
	// Ancestors of the container's cgroup, outermost first.
	Ancestors []string
	Min, Low  int64
}

// Change is one ancestor file the ledger wrote.
type Change struct {
	Path, File string
	From, To   int64
}

// Ledger holds the promises and the values the plugin last wrote into each
// ancestor, so it never lowers a value someone else (kubelet) set higher.
type Ledger struct {
	mu       sync.Mutex
	promises map[string]Promise
	written  map[key]int64
	// Running sums, kept with every change so that no event scans all
	// promises: per ancestor, and memory.min over the node.
	sumMin, sumLow     map[string]int64
	totalMin, totalLow int64
}

type key struct{ path, file string }

// New returns an empty ledger.
func New() *Ledger {
	return &Ledger{promises: map[string]Promise{}, written: map[key]int64{},
		sumMin: map[string]int64{}, sumLow: map[string]int64{}}
}

// add adds (sign 1) or takes away (sign -1) a promise from the sums.
func (l *Ledger) add(p Promise, sign int64) {
	l.totalMin = addSigned(l.totalMin, sign, p.Min)
	l.totalLow = addSigned(l.totalLow, sign, p.Low)
	for _, a := range p.Ancestors {
		l.sumMin[a] = addSigned(l.sumMin[a], sign, p.Min)
		l.sumLow[a] = addSigned(l.sumLow[a], sign, p.Low)
		if l.sumMin[a] == 0 && l.sumLow[a] == 0 {
			delete(l.sumMin, a)
			delete(l.sumLow, a)
		}
	}
}

// Set records (or replaces) the promise of a container and returns the
// ancestors whose sums may have changed.
func (l *Ledger) Set(id string, p Promise) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	p.Min, p.Low = max(p.Min, 0), max(p.Low, 0)
	touched := slices.Clone(p.Ancestors)
	if old, ok := l.promises[id]; ok {
		touched = mergePaths(touched, old.Ancestors)
		l.add(old, -1)
	}
	l.promises[id] = p
	l.add(p, 1)
	return touched
}

// Remove forgets a container's promise and returns the affected ancestors.
func (l *Ledger) Remove(id string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	old, ok := l.promises[id]
	if !ok {
		return nil
	}
	delete(l.promises, id)
	l.add(old, -1)
	return slices.Clone(old.Ancestors)
}

// Reset forgets every promise (before a Synchronize rebuilds them); what
// was written is kept, so values written before stay recognisable as ours.
// It returns every ancestor that held a promise or a value the ledger wrote,
// so that a following Full Apply lowers what no container needs any more.
func (l *Ledger) Reset() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[string]bool{}
	var touched []string
	note := func(p string) {
		if !seen[p] {
			seen[p] = true
			touched = append(touched, p)
		}
	}
	for p := range l.sumMin {
		note(p)
	}
	for k := range l.written {
		note(k.path)
	}
	l.promises = map[string]Promise{}
	l.sumMin, l.sumLow, l.totalMin, l.totalLow = map[string]int64{}, map[string]int64{}, 0, 0
	return touched
}

// TotalMin is the memory.min promised on the node, leaving out one container.
func (l *Ledger) TotalMin(except string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.totalMin - l.promises[except].Min
}

// TotalLow is the memory.low promised on the node, leaving out one container.
func (l *Ledger) TotalLow(except string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.totalLow - l.promises[except].Low
}

// addSigned adds (sign 1) or takes away (sign -1) v from sum, saturating at
// 0 and math.MaxInt64 instead of wrapping.
func addSigned(sum, sign, v int64) int64 {
	if sign > 0 {
		if v > math.MaxInt64-sum {
			return math.MaxInt64
		}
		return sum + v
	}
	return max(sum-v, 0)
}

// Sums returns the memory.min and memory.low promised below an ancestor.
func (l *Ledger) Sums(path string) (min, low int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sums(path)
}

func (l *Ledger) sums(path string) (min, low int64) {
	return l.sumMin[path], l.sumLow[path]
}

// Mode selects which direction Apply may move values.
type Mode int

const (
	// RaiseOnly raises ancestors that hold less than promised and lowers nothing:
	// used before a container's own values grow.
	RaiseOnly Mode = iota
	// Full also lowers values the plugin wrote itself down to the sums:
	// used after containers went away or shrank.
	Full
)

// Apply brings the given ancestors' memory.min and memory.low to the sums
// promised below them. Raises go outermost first, lowerings innermost first,
// so a child never holds more than its parent grants in between. A value
// above the sum that the plugin did not write (kubelet's) is left alone.
// Vanished cgroups are skipped.
func (l *Ledger) Apply(fs Files, paths []string, mode Mode) ([]Change, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	paths = dedupe(paths)
	slices.SortFunc(paths, func(a, b string) int { return len(a) - len(b) })

	type action struct {
		path, file string
		from, to   int64
	}
	var raises, lowers []action
	var errs []error
	for _, p := range paths {
		min, low := l.sums(p)
		for _, f := range []struct {
			file string
			want int64
		}{{cgroupfs.FileMin, min}, {cgroupfs.FileLow, low}} {
			cur, err := fs.ReadInt(p, f.file)
			if err != nil {
				if cgroupfs.IsGone(err) {
					// The cgroup went away, and with it what was written there.
					delete(l.written, key{p, f.file})
				} else {
					errs = append(errs, err)
				}
				continue
			}
			if cur < 0 {
				// "max": above any sum, and never a value the ledger writes.
				continue
			}
			switch {
			case cur < f.want:
				raises = append(raises, action{p, f.file, cur, f.want})
			case cur > f.want && mode == Full:
				if ours, ok := l.written[key{p, f.file}]; ok && ours == cur {
					lowers = append(lowers, action{p, f.file, cur, f.want})
				}
			}
		}
	}
	slices.Reverse(lowers)
	var changes []Change
	for _, a := range append(raises, lowers...) {
		_, err := fs.Write(a.path, a.file, strconv.FormatInt(a.to, 10))
		if err != nil {
			if !cgroupfs.IsGone(err) {
				errs = append(errs, err)
			}
			continue
		}
		if a.to == 0 {
			delete(l.written, key{a.path, a.file})
		} else {
			l.written[key{a.path, a.file}] = a.to
		}
		changes = append(changes, Change{Path: a.path, File: a.file, From: a.from, To: a.to})
	}
	if err := errors.Join(errs...); err != nil {
		return changes, fmt.Errorf("ancestor protection: %w", err)
	}
	return changes, nil
}

func dedupe(paths []string) []string {
	seen := make(map[string]bool, len(paths))
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

func mergePaths(a, b []string) []string {
	for _, p := range b {
		if !slices.Contains(a, p) {
			a = append(a, p)
		}
	}
	return a
}

// Snapshot returns the ancestor values the ledger wrote, sorted.
func (l *Ledger) Snapshot() []state.Value {
	l.mu.Lock()
	defer l.mu.Unlock()
	vals := make([]state.Value, 0, len(l.written))
	for k, v := range l.written {
		vals = append(vals, state.Value{Path: k.path, File: k.file, Value: v})
	}
	slices.SortFunc(vals, func(a, b state.Value) int {
		return cmp.Or(strings.Compare(a.Path, b.Path), strings.Compare(a.File, b.File))
	})
	return vals
}

// Restore takes back values a previous process wrote (see Snapshot), so
// they stay recognisable as the plugin's own and are lowered when their
// containers are gone.
func (l *Ledger) Restore(vals []state.Value) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range vals {
		l.written[key{v.Path, v.File}] = v.Value
	}
}
