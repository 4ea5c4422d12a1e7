package protection

import (
	"maps"
	"math"
	"slices"
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

// Ledger holds the promises and, per ancestor file, what the plugin last
// wrote there and the baseline: the value someone else (kubelet) set. It
// brings every ancestor to max(baseline, sum of the promises below) and
// never lowers one below its baseline.
type Ledger struct {
	mu       sync.Mutex
	promises map[string]Promise
	files    map[key]*record
	// peak is the most promises since the maps were last made anew.
	peak int
	// Running sums, kept with every change so that no event scans all
	// promises: per ancestor, and over the node.
	sumMin, sumLow     map[string]int64
	totalMin, totalLow int64
	// max bounds every value written (MemTotal); 0 means no bound.
	max int64
	// maxes caches each ancestor's own memory.max (-1: unlimited or
	// unknown) from its first read until Repair reads it again or no
	// promise is left below it.
	maxes map[string]int64
	// journal, when set, is told of writes before they happen.
	journal Journal
	// forgot collects the files dropped during one Apply, for the journal.
	forgot []state.Value
}

// Journal keeps the ledger's records durable across a crash. Writing gets
// the values about to be written, with their baselines and the values the
// files hold until then (Previous), before any file is written; a crash
// between Writing and the write leaves files holding Previous, which a new
// process recognizes as the plugin's. Wrote gets, after the writes, what
// those files hold now (no Previous: from here on a file holding the old
// value again is someone else's doing) and the files the ledger forgot.
type Journal interface {
	Writing(vals []state.Value)
	Wrote(vals, forgot []state.Value)
}

// SetJournal sets the journal told of every write from now on.
func (l *Ledger) SetJournal(j Journal) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.journal = j
}

type key struct{ path, file string }

// record is what the ledger knows of one ancestor file.
type record struct {
	// written is what the plugin last wrote.
	written int64
	// baseline is the value someone else set: found before the plugin's
	// first write, or written by someone else since.
	baseline int64
	// previous, when hasPrevious, is a value of the plugin's the file may
	// still hold: a previous process noted written and stopped before
	// writing it (Restore).
	previous    int64
	hasPrevious bool
}

// New returns an empty ledger that never writes a value above max (node
// memory; 0: no bound).
func New(max int64) *Ledger {
	return &Ledger{promises: map[string]Promise{}, files: map[key]*record{},
		sumMin: map[string]int64{}, sumLow: map[string]int64{}, max: max, maxes: map[string]int64{}}
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
	l.pruneMaxes(touched)
	return touched
}

// shrink makes the ledger's maps anew, sized for what is left, once the
// promises fell below a quarter of their peak (of at least 512): a Go map
// keeps its size after deletions. Callers hold l.mu.
func (l *Ledger) shrink() {
	l.peak = max(l.peak, len(l.promises))
	if l.peak < 512 || len(l.promises)*4 >= l.peak {
		return
	}
	// Collected anew, not cloned: maps.Clone keeps the capacity.
	l.promises, l.files, l.maxes = maps.Collect(maps.All(l.promises)), maps.Collect(maps.All(l.files)), maps.Collect(maps.All(l.maxes))
	l.sumMin, l.sumLow = maps.Collect(maps.All(l.sumMin)), maps.Collect(maps.All(l.sumLow))
	l.peak = len(l.promises)
}

// pruneMaxes forgets the cached memory.max of the paths no promise is left
// below. Callers hold l.mu.
func (l *Ledger) pruneMaxes(paths []string) {
	for _, a := range paths {
		if _, ok := l.sumMin[a]; !ok {
			delete(l.maxes, a)
		}
	}
}

// Promised returns the promise of container id, if it has one.
func (l *Ledger) Promised(id string) (Promise, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.promises[id]
	return p, ok
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
	l.pruneMaxes(old.Ancestors)
	l.shrink()
	return slices.Clone(old.Ancestors)
}

// Reset forgets every promise (before a Synchronize rebuilds them); what
// was written and the baselines are kept, so values written before stay
// recognisable as ours.
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
	for k := range l.files {
		note(k.path)
	}
	l.promises = map[string]Promise{}
	clear(l.maxes)
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
