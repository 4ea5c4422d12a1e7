package reconcile

import (
	"errors"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"nri-memqos/pkg/config"
)

// reclaimChunk is the most one memory.reclaim write asks for: a reclaim is
// issued in chunks so that it can stop at its deadline.
const reclaimChunk = 16 << 20

// errReclaimDeadline: a memory.reclaim write outlived its deadline.
var errReclaimDeadline = errors.New("memory.reclaim did not return before its deadline")

// reclaimDeadline is how long one container's reclaim may take in a tick:
// half the interval, between 10ms and 1s.
func (r *Reconciler) reclaimDeadline() time.Duration {
	return min(max(r.interval()/2, 10*time.Millisecond), time.Second)
}

// reclaim asks the kernel for n bytes, in chunks of at most reclaimChunk
// until the deadline, and records how far usage fell. A write still in the
// kernel at the deadline is left to finish on its own; none other is
// issued for the container until it has.
func (r *Reconciler) reclaim(smp sample, n int64, why Reason) {
	if smp.s.reclaiming.Load() {
		return
	}
	deadline := time.Now().Add(r.reclaimDeadline())
	var err error
	for left := n; left > 0; {
		chunk := min(left, r.chunk)
		if err = r.writeReclaim(smp.s, smp.t.Rel, chunk, deadline, why == ReasonPriority); err != nil {
			break
		}
		left -= chunk
		if left > 0 && !time.Now().Before(deadline) {
			err = errReclaimDeadline
			break
		}
	}
	if errors.Is(err, errReclaimDeadline) && smp.s.reclaiming.Load() && !smp.s.reclaimLogged {
		smp.s.reclaimLogged = true
		r.log.WithFields(targetFields(smp.t)).Warnf("reconciler: memory.reclaim did not return within %v; no further reclaim of this container until it does", r.reclaimDeadline())
	}
	if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, errReclaimDeadline) {
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
		smp.s.addReclaimed(why, got)
	}
	smp.s.stats.Usage = after
	r.log.WithFields(targetFields(smp.t)).WithFields(logrus.Fields{
		"reason": string(why), "asked": n, "usage": after, "partial": err != nil,
	}).Debug("reclaimed")
}

// writeReclaim issues one memory.reclaim write (of file pages first, when
// fileFirst and the kernel can) and waits for it until deadline at most.
func (r *Reconciler) writeReclaim(s *state, rel string, n int64, deadline time.Time, fileFirst bool) error {
	done := make(chan error, 1)
	s.reclaiming.Store(true)
	go func() {
		var err error
		if fileFirst {
			_, err = r.cg.ReclaimFile(rel, n)
		} else {
			err = r.cg.Reclaim(rel, n)
		}
		s.reclaiming.Store(false)
		done <- err
	}()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return errReclaimDeadline
	}
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
func (r *Reconciler) nodePressure(now time.Time, samples []sample, np config.NodePressure) {
	avail, total, err := r.meminfo()
	if err != nil {
		r.log.Warnf("reconciler: %v", err)
		return
	}
	pressure := r.nodePressureShare(now, np)
	short, need, byPressure := NodeShort(avail, total, pressure, np, r.nodeActive)
	if short != r.nodeActive {
		r.log.WithFields(logrus.Fields{"memAvailable": avail, "memTotal": total, "pressure": pressure}).Infof("node memory pressure: %v", map[bool]string{true: "started", false: "over"}[short])
	}
	r.nodeActive = short
	if !short {
		return
	}
	maxTotal := np.MaxReclaimPerTick.Bytes()
	cands := make([]Candidate, 0, len(samples))
	byID := make(map[string]sample, len(samples))
	for _, smp := range samples {
		cands = append(cands, Candidate{ID: smp.t.ID, Priority: priority(smp.t), Current: smp.s.stats.Usage, Request: smp.t.Decision.Request, Protected: smp.protect})
		byID[smp.t.ID] = smp
	}
	planFor := NodePressurePlan
	if byPressure {
		planFor = AboveRequestPlan
	}
	for _, take := range planFor(need, maxTotal, cands) {
		smp := byID[take.ID]
		smp.usage = smp.s.stats.Usage
		r.reclaim(smp, take.Bytes, ReasonNodePressure)
	}
}

// priority is a container's reclaim priority: its class's, 0 for a class
// without reclaim settings (reclaimed first, with best-effort).
func priority(t Target) int {
	if rc := t.Decision.Reclaim; rc != nil {
		return rc.Priority
	}
	return 0
}

// nodePressureShare is the share of time (percent) in which some task on
// the node stalled on memory (/proc/pressure/memory), over the last window
// of at least signalWindow (read once a window, the last window's share in
// between); 0 when not read (no threshold, no reader, or a kernel without
// PSI).
func (r *Reconciler) nodePressureShare(now time.Time, np config.NodePressure) float64 {
	if np.PressureThreshold == 0 || r.nodePSI == nil {
		return 0
	}
	if !r.nodePSIAt.IsZero() && now.Sub(r.nodePSIAt) < signalWindow {
		return r.nodePSIShare
	}
	p, err := r.nodePSI()
	if err != nil {
		if !r.nodePSILogged {
			r.nodePSILogged = true
			r.log.Warnf("reconciler: node memory pressure not read, node-pressure reclaim starts on MemAvailable alone: %v", err)
		}
		return 0
	}
	prev, at := r.nodePSIPrev, r.nodePSIAt
	r.nodePSIPrev, r.nodePSIAt = p, now
	r.nodePSIShare = p.SomeAvg10 // first reading: the kernel's average
	if dt := now.Sub(at).Seconds(); !at.IsZero() && dt > 0 {
		r.nodePSIShare = float64(delta(p.SomeTotal, prev.SomeTotal)) / 1e4 / dt
	}
	return r.nodePSIShare
}

// addReclaimed counts bytes reclaimed for a reason. The map is made at the
// first reclaim: most containers never have one, and one per container
// would cost every container its header (issue 11).
func (s *state) addReclaimed(why Reason, n int64) {
	if s.stats.Reclaimed == nil {
		s.stats.Reclaimed = map[Reason]int64{}
	}
	s.stats.Reclaimed[why] += n
}
