package reconcile

import (
	"strconv"

	"github.com/sirupsen/logrus"

	"nri-memqos/pkg/cgroupfs"
)

// repairDrift writes back values the plugin set that someone else changed,
// with memory.high as the guard or priority-aware reclaim hold it.
func (r *Reconciler) repairDrift(smp sample) {
	d := smp.t.Decision
	// The logger is made only to log: most checks find nothing.
	l := func() *logrus.Entry { return r.log.WithFields(targetFields(smp.t)) }
	if r.version == 1 {
		v1 := d.V1()
		if d.Swap != nil {
			// memsw is the limit in force plus swap: a limit changed
			// behind the plugin's back must not fail the write or grant
			// swap.
			if limit, err := r.cg.Limit(smp.t.Rel); err == nil {
				v1 = d.V1At(limit)
			}
		}
		changed, err := r.cg.ApplyV1(smp.t.Rel, v1.Files())
		if err != nil {
			r.note(smp.t, "repair drift", err)
		}
		for _, f := range changed {
			smp.s.stats.DriftRepairs++
			if !smp.s.driftLogged[f] {
				smp.s.logDrift(f)
				l().WithField("file", f).Warn("drift repaired: a value the plugin set was changed; further repairs of it are not logged")
			}
		}
		return
	}
	want := d.UnifiedV2()
	switch {
	case smp.s.throttleHigh() > 0:
		want[cgroupfs.FileHigh] = strconv.FormatInt(smp.s.throttleHigh(), 10)
	case smp.s.guard.Raised:
		want[cgroupfs.FileHigh] = strconv.FormatInt(smp.s.guard.High, 10)
	}
	if skip := r.skip.Load(); skip != nil {
		for file := range *skip {
			delete(want, file)
		}
	}
	for file, v := range want {
		cur, err := r.cg.Read(smp.t.Rel, file)
		if err != nil {
			// A file the kernel lacks (memory.swap.max without swap
			// accounting) must not stop the others.
			r.note(smp.t, "repair drift", err)
			continue
		}
		if cur == v {
			continue
		}
		if _, err := r.cg.Write(smp.t.Rel, file, v); err != nil {
			r.note(smp.t, "repair drift", err)
			continue
		}
		smp.s.stats.DriftRepairs++
		if !smp.s.driftLogged[file] {
			smp.s.logDrift(file)
			l().WithFields(logrus.Fields{"file": file, "found": cur, "restored": v}).Warn("drift repaired: a value the plugin set was changed; further repairs of it are not logged")
		}
	}
}

// logDrift notes that a drift repair of file was logged. The map is made
// at the first: most containers never drift, and one per container would
// cost every container its header (issue 11).
func (s *state) logDrift(file string) {
	if s.driftLogged == nil {
		s.driftLogged = map[string]bool{}
	}
	s.driftLogged[file] = true
}
