package protection

import (
	"cmp"
	"slices"
	"strings"

	"nri-memqos/pkg/state"
)

// Snapshot returns, sorted, every ancestor value the ledger wrote above its
// baseline, with the baseline. A file holding just its baseline holds
// nothing of the plugin's: a new process finds that value as someone
// else's anyway.
func (l *Ledger) Snapshot() []state.Value {
	l.mu.Lock()
	defer l.mu.Unlock()
	vals := make([]state.Value, 0, len(l.files))
	for k, r := range l.files {
		if r.written == r.baseline {
			continue
		}
		vals = append(vals, state.Value{Path: k.path, File: k.file, Value: r.written, Baseline: r.baseline})
	}
	slices.SortFunc(vals, func(a, b state.Value) int {
		return cmp.Or(strings.Compare(a.Path, b.Path), strings.Compare(a.File, b.File))
	})
	return vals
}

// Restore takes back values a previous process wrote (see Snapshot), so
// they stay recognisable as the plugin's own, are lowered when their
// containers are gone, and never below the baselines found then.
func (l *Ledger) Restore(vals []state.Value) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range vals {
		r := &record{written: v.Value, baseline: v.Baseline}
		if v.Previous != nil && *v.Previous != v.Value {
			r.previous, r.hasPrevious = *v.Previous, true
		}
		l.files[key{v.Path, v.File}] = r
	}
}
