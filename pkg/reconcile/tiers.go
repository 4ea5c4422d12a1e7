package reconcile

import (
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/config"
)

// ReasonPriority is reclaim from a lower-priority container because a
// protected one felt pressure.
const ReasonPriority Reason = "priority"

// signalWindow is the shortest span a protected container's rates are
// taken over: at short intervals one tick's stall share is mostly noise.
const signalWindow = time.Second

// tierReading is what one tick read of a container for the tiers.
type tierReading struct {
	sig cgroupfs.Signals
	at  time.Time
	// own is what the plugin had reclaimed from the container by then
	// (bytes, every reason): reclaim it asked for is no theft.
	own int64
}

// tierRates are a protected container's signals over its last window.
type tierRates struct {
	some, refaults, steal float64
}

// tiers runs priority-aware reclaim for one tick (cgroup v2).
func (r *Reconciler) tiers(now time.Time, samples []sample, rc config.Reconciler) {
	tc := rc.Tiers
	sigs := r.tierSigs[:0]
	var from []sample // the protected containers pressured this tick, for the log
	if tc.Enabled {
		for _, smp := range samples {
			rcl := smp.t.Decision.Reclaim
			if rcl == nil || !rcl.ProtectFromLowerPriority {
				continue
			}
			sig, ok := r.tierSignal(now, smp, rcl)
			if !ok {
				continue
			}
			sigs = append(sigs, sig)
			if sig.Pressured() {
				from = append(from, smp)
			}
		}
	}
	r.tierSigs = sigs[:0]
	throttled := false
	for _, smp := range samples {
		throttled = throttled || smp.s.throttleHigh() > 0
	}
	if !tc.Enabled || len(sigs) == 0 {
		// Turned off, or nobody left to protect: every throttle goes back
		// at once.
		if throttled {
			why := "turned off"
			if tc.Enabled {
				why = "no protected container left"
			}
			for _, smp := range samples {
				if smp.s.throttleHigh() > 0 {
					r.release(smp, why)
				}
			}
		}
		r.tierState = TierState{}
		return
	}
	prev := r.tierState
	st, act := TierStep(prev, sigs, throttled, now, tc)
	r.tierState = st
	if st.Active != prev.Active {
		r.logTierTransition(st, from)
	}
	if !st.Active {
		return
	}
	victims := r.victims[:0]
	for _, smp := range samples {
		prio := priority(smp.t)
		if smp.s.throttleHigh() == 0 && (prio >= st.Below || smp.s.guard.Raised) {
			continue // not a victim, or stalled at its own memory.high
		}
		sg, err := r.cg.ReadSignals(smp.t.Rel)
		if err != nil {
			r.note(smp.t, "read memory signals", err)
			continue
		}
		smp.s.tierMem().victim = sg
		b := r.bounds(smp, tc)
		if th, moved := FollowFloor(smp.s.throttle(), b); moved {
			r.setThrottle(smp, th, b, "raised to its floor: its anonymous memory grew", logrus.DebugLevel)
		}
		if smp.s.throttleHigh() > 0 && sg.HasPSI {
			if th, lifted := StallLift(smp.s.throttle(), smp.usage, sg.PSI.FullAvg10, b, now, rc.Guard, tc.Step, r.page); lifted {
				r.setThrottle(smp, th, b, "lifted: stalled at the memory.high the tiers set", logrus.WarnLevel)
				smp.s.stats.GuardRaises++
			} else {
				smp.s.setThrottle(th)
			}
		}
		if prio < st.Below {
			victims = append(victims, smp)
		}
	}
	defer func() {
		// Keep the array for the next tick, not the states it points to.
		clear(victims)
		r.victims = victims[:0]
	}()
	switch act {
	case TierReclaim, TierThrottle:
		r.tierReclaim(victims, tc)
		if act == TierThrottle {
			for _, smp := range victims {
				b := r.bounds(smp, tc)
				th, moved := ThrottleDown(smp.s.throttle(), smp.usage, b, now, tc.Step, r.page)
				if !moved {
					continue
				}
				first := smp.s.throttleHigh() == 0
				smp.s.stats.TierThrottles++
				level := logrus.DebugLevel
				if first {
					level = logrus.InfoLevel
				}
				r.setThrottle(smp, th, b, "throttled for a higher priority", level)
			}
		}
	case TierGiveBack:
		for _, smp := range samples {
			if smp.s.throttleHigh() == 0 {
				continue
			}
			b := r.bounds(smp, tc)
			r.setThrottle(smp, GiveBack(smp.s.throttle(), smp.usage, b, tc.Step, r.page), b, "given back", logrus.DebugLevel)
		}
	}
}

// tierSignal turns one protected container's signals into rates over at
// least signalWindow: it reads them once a window, and in between gives the
// last window's rates.
func (r *Reconciler) tierSignal(now time.Time, smp sample, rcl *config.Reclaim) (TierSignal, bool) {
	d := smp.t.Decision
	high := int64(0)
	if d.High != nil {
		high = max(*d.High, smp.s.guard.High)
	}
	sig := TierSignal{Priority: rcl.Priority, PressureThreshold: rcl.PressureThreshold, RefaultThreshold: rcl.RefaultThreshold,
		StealThreshold: rcl.StealThreshold}
	if c := ceiling(high, d.Limit); c > 0 && float64(smp.usage) >= 0.95*float64(c) {
		sig.AtOwnLimit = true
	}
	mem := smp.s.tierMem()
	base := mem.signalBase
	if base.at.IsZero() || now.Sub(base.at) >= signalWindow {
		sg, err := r.cg.ReadSignals(smp.t.Rel)
		if err != nil {
			r.note(smp.t, "read memory signals", err)
			return TierSignal{}, false
		}
		var own int64
		for _, b := range smp.s.stats.Reclaimed {
			own += b
		}
		var rates tierRates
		if dt := now.Sub(base.at).Seconds(); !base.at.IsZero() && dt > 0 {
			if sg.HasPSI && base.sig.HasPSI {
				rates.some = float64(delta(sg.PSI.SomeTotal, base.sig.PSI.SomeTotal)) / 1e4 / dt
			}
			rates.refaults = float64(delta(sg.RefaultFile+sg.RefaultAnon, base.sig.RefaultFile+base.sig.RefaultAnon)) / dt
			// A window in which the plugin reclaimed from the container
			// itself does not count: the kernel counts that reclaim in
			// pgsteal too, and the plugin's own count (the usage drop
			// around each write) is short of it while the container
			// charges.
			if own == base.own {
				rates.steal = float64(delta(sg.Steal, base.sig.Steal)) / dt
			}
		} else if sg.HasPSI {
			rates.some = sg.PSI.SomeAvg10 // first reading: the kernel's average
		}
		mem.signalBase, mem.rates = tierReading{sig: sg, at: now, own: own}, rates
		smp.s.stats.Pressure, smp.s.stats.Refaults, smp.s.stats.Steal = rates.some, rates.refaults, rates.steal
	}
	sig.Some, sig.Refaults, sig.Steal = mem.rates.some, mem.rates.refaults, mem.rates.steal
	return sig, true
}

// bounds are a victim's throttle bounds from its last reading.
func (r *Reconciler) bounds(smp sample, tc config.Tiers) Bounds {
	d := smp.t.Decision
	high := int64(0)
	if d.High != nil {
		high = *d.High
	}
	return VictimBounds(d.Request, smp.protect, int64(smp.s.tierMem().victim.Anon), tc.Headroom.Bytes(), high, d.Limit, r.page)
}

// tierReclaim reclaims from the victims, lowest priority and furthest
// above request first, what lies above their protection and at most their
// file pages, MaxReclaimPerTick in all.
func (r *Reconciler) tierReclaim(victims []sample, tc config.Tiers) {
	if len(victims) == 0 {
		return
	}
	cands := make([]Candidate, 0, len(victims))
	byID := make(map[string]sample, len(victims))
	for _, smp := range victims {
		// Only file pages count: without swap nothing else goes, and
		// with swap the tiers do not push anyone into it.
		cur := min(smp.usage, smp.protect+int64(smp.s.tierMem().victim.File))
		cands = append(cands, Candidate{ID: smp.t.ID, Priority: priority(smp.t), Current: cur, Request: smp.t.Decision.Request, Protected: smp.protect})
		byID[smp.t.ID] = smp
	}
	n := tc.MaxReclaimPerTick.Bytes()
	for _, take := range NodePressurePlan(n, n, cands) {
		r.reclaim(byID[take.ID], take.Bytes, ReasonPriority)
	}
}

// setThrottle installs a victim's throttle and writes its memory.high (the
// policy's value, or "max", when the throttle is released).
func (r *Reconciler) setThrottle(smp sample, th Throttle, b Bounds, what string, level logrus.Level) {
	old := smp.s.throttle()
	if th.High == old.High {
		smp.s.setThrottle(th)
		return
	}
	if _, err := r.cg.Write(smp.t.Rel, cgroupfs.FileHigh, r.highValue(smp, th)); err != nil {
		r.note(smp.t, "write memory.high", err)
		return
	}
	smp.s.setThrottle(th)
	smp.s.stats.High = th.High
	if th.High == 0 {
		smp.s.stats.High = r.policyHigh(smp)
		what, level = "released: policy memory.high again", logrus.InfoLevel
	}
	r.log.WithFields(targetFields(smp.t)).WithFields(logrus.Fields{
		"from": old.High, "to": th.High, "floor": b.Floor, "usage": smp.usage,
	}).Log(level, "priority-aware reclaim: memory.high "+what)
}

// release gives a throttled container its policy memory.high back.
func (r *Reconciler) release(smp sample, why string) {
	if _, err := r.cg.Write(smp.t.Rel, cgroupfs.FileHigh, r.highValue(smp, Throttle{})); err != nil {
		r.note(smp.t, "write memory.high", err)
		return
	}
	r.log.WithFields(targetFields(smp.t)).WithField("from", smp.s.throttleHigh()).Infof("priority-aware reclaim %s: memory.high given back", why)
	smp.s.setThrottle(Throttle{})
	smp.s.stats.High = r.policyHigh(smp)
}

// highValue is the memory.high to write for a throttle: its own, else the
// policy's (the guard's, when it holds one), else "max".
func (r *Reconciler) highValue(smp sample, th Throttle) string {
	if th.High > 0 {
		return strconv.FormatInt(th.High, 10)
	}
	if h := r.policyHigh(smp); h > 0 {
		return strconv.FormatInt(h, 10)
	}
	return "max"
}

// policyHigh is the memory.high the policy (or the guard) holds; 0: none.
func (r *Reconciler) policyHigh(smp sample) int64 {
	if smp.t.Decision.High == nil {
		return 0
	}
	if smp.s.guard.Raised {
		return smp.s.guard.High
	}
	return *smp.t.Decision.High
}

func (r *Reconciler) logTierTransition(st TierState, from []sample) {
	if !st.Active {
		r.log.Info("priority-aware reclaim: protected containers calm, every memory.high given back")
		return
	}
	names := make([]string, 0, len(from))
	for _, smp := range from {
		names = append(names, smp.t.Namespace+"/"+smp.t.Pod+"/"+smp.t.Container)
	}
	r.log.WithFields(logrus.Fields{"pressured": names, "below": st.Below}).Info("priority-aware reclaim: started, lower priorities pay")
}

// Release gives every container the tiers throttle its policy memory.high
// back: the plugin stops managing them (it is shutting down).
func (r *Reconciler) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.states {
		if s.throttleHigh() == 0 {
			continue
		}
		r.release(sample{t: s.target, s: s}, "stopping")
	}
	r.tierState = TierState{}
}
