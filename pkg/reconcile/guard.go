package reconcile

import (
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/config"
)

// guard runs the memory.high livelock guard for one container.
func (r *Reconciler) guard(now time.Time, smp sample, cfg config.Guard) {
	d := smp.t.Decision
	if d.High == nil {
		return
	}
	orig := *d.High
	ceil := d.Limit
	if ceil <= 0 {
		return // no limit: memory.high stays the container's only bound
	}
	g := smp.s.guard
	if g.High == 0 {
		g.High = orig
	}
	// Pressure is read only for containers close to their memory.high.
	if float64(smp.usage) < 0.95*float64(g.High) && !g.Raised {
		smp.s.guard = GuardState{High: orig}
		return
	}
	st, err := r.cg.ReadMemoryStats(smp.t.Rel)
	if err != nil {
		r.note(smp.t, "read memory statistics", err)
		return
	}
	if !st.PSI {
		return
	}
	ng, act := GuardStep(g, orig, ceil, smp.usage, st.FullAvg10, now, cfg, r.page)
	if act != GuardNone {
		if _, err := r.cg.Write(smp.t.Rel, cgroupfs.FileHigh, strconv.FormatInt(ng.High, 10)); err != nil {
			r.note(smp.t, "write memory.high", err)
			return
		}
		l := r.log.WithFields(targetFields(smp.t)).WithFields(logrus.Fields{
			"from": g.High, "to": ng.High, "policy": orig, "limit": ceil, "fullAvg10": st.FullAvg10,
		})
		if act == GuardRaise {
			smp.s.stats.GuardRaises++
			l.Warn("memory.high guard: raised a stalled container")
		} else {
			smp.s.stats.GuardRestores++
			l.Info("memory.high guard: restored")
		}
	}
	smp.s.guard = ng
}

// dropGuard gives a raised memory.high back to the policy when the guard is
// turned off.
func (r *Reconciler) dropGuard(smp sample) {
	d := smp.t.Decision
	if d.High != nil {
		if _, err := r.cg.Write(smp.t.Rel, cgroupfs.FileHigh, strconv.FormatInt(*d.High, 10)); err != nil {
			r.note(smp.t, "write memory.high", err)
			return
		}
		smp.s.stats.GuardRestores++
		r.log.WithFields(targetFields(smp.t)).WithField("to", *d.High).Info("memory.high guard: off, policy value restored")
	}
	smp.s.guard = GuardState{}
}
