package reconcile

import (
	"errors"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"nri-memqos/pkg/config"
)

// reclaim asks the kernel for n bytes and records how far usage fell.
func (r *Reconciler) reclaim(smp sample, n int64, why Reason) {
	err := r.cg.Reclaim(smp.t.Rel, n)
	if err != nil && !errors.Is(err, unix.EAGAIN) {
		r.note(smp.t, "reclaim", err)
		return
	}
	// EAGAIN: the kernel reclaimed less than asked; count what it did.
	after, rerr := r.cg.Usage(smp.t.Rel)
	if rerr != nil {
		r.note(smp.t, "read usage", rerr)
		return
	}
	if got := smp.usage - after; got > 0 {
		smp.s.stats.Reclaimed[why] += got
	}
	smp.s.stats.Usage = after
	r.log.WithFields(targetFields(smp.t)).WithFields(logrus.Fields{
		"reason": string(why), "asked": n, "usage": after, "partial": err != nil,
	}).Debug("reclaimed")
}

// proactive reclaims a small part of an idle container's cold memory.
func (r *Reconciler) proactive(now time.Time, smp sample, cfg config.Proactive, maxPerTick int64) {
	smp.s.lastProactive = now
	st, err := r.cg.ReadMemoryStats(smp.t.Rel)
	if err != nil {
		r.note(smp.t, "read memory statistics", err)
		return
	}
	if !st.PSI {
		return // no pressure signal: no safe way to tell idle from busy
	}
	inactive := int64(st.InactiveFile + st.InactiveAnon)
	if n := ProactiveReclaim(inactive, smp.usage, smp.protect, st.SomeAvg10, cfg, maxPerTick); n > 0 {
		r.reclaim(smp, n, ReasonProactive)
	}
}

// nodePressure reclaims from the lowest priority classes first when the
// node runs short of memory.
func (r *Reconciler) nodePressure(samples []sample, np config.NodePressure) {
	avail, total, err := r.meminfo()
	if err != nil {
		r.log.Warnf("reconciler: %v", err)
		return
	}
	short, need := NodeShort(avail, total, np, r.nodeActive)
	if short != r.nodeActive {
		r.log.WithFields(logrus.Fields{"memAvailable": avail, "memTotal": total}).Infof("node memory pressure: %v", map[bool]string{true: "started", false: "over"}[short])
	}
	r.nodeActive = short
	if !short {
		return
	}
	maxTotal := np.MaxReclaimPerTick.Bytes()
	cands := make([]Candidate, 0, len(samples))
	byID := make(map[string]sample, len(samples))
	for _, smp := range samples {
		prio := 0
		if rc := smp.t.Decision.Reclaim; rc != nil {
			prio = rc.Priority
		}
		cands = append(cands, Candidate{ID: smp.t.ID, Priority: prio, Current: smp.s.stats.Usage, Request: smp.t.Decision.Request, Protected: smp.protect})
		byID[smp.t.ID] = smp
	}
	for _, take := range NodePressurePlan(need, maxTotal, cands) {
		smp := byID[take.ID]
		smp.usage = smp.s.stats.Usage
		r.reclaim(smp, take.Bytes, ReasonNodePressure)
	}
}
