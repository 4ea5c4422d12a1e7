package reconcile

import (
	"cmp"
	"slices"
	"time"

	"nri-memqos/pkg/config"
)

// Reason tells why the reconciler reclaimed.
type Reason string

// Reclaim reasons.
const (
	ReasonWatermark    Reason = "watermark"
	ReasonNodePressure Reason = "node-pressure"
	ReasonProactive    Reason = "proactive"
)

// ceiling is the limit that background reclaim keeps a container under:
// the smaller of memory.high (as in force) and memory.max; 0 when neither.
func ceiling(high, limit int64) int64 {
	switch {
	case high > 0 && limit > 0:
		return min(high, limit)
	case high > 0:
		return high
	default:
		return limit
	}
}

// WatermarkReclaim is how much background reclaim asks of a container: when
// usage is above highWatermark × ceiling, enough to bring it to
// lowWatermark × ceiling, at most maxPerTick and never into its protected
// memory. 0 means nothing to do.
func WatermarkReclaim(current, high, limit, protected int64, r *config.Reclaim, maxPerTick int64) int64 {
	if r == nil || r.HighWatermark == 0 {
		return 0
	}
	c := ceiling(high, limit)
	if c <= 0 || float64(current) <= r.HighWatermark*float64(c) {
		return 0
	}
	want := current - int64(r.LowWatermark*float64(c))
	return bound(want, current, protected, maxPerTick)
}

// bound limits a reclaim to maxPerTick and to what lies above protection.
func bound(want, current, protected, maxPerTick int64) int64 {
	want = min(want, maxPerTick, current-protected)
	return max(want, 0)
}

// Candidate is a container that node-pressure reclaim may take from.
type Candidate struct {
	ID        string
	Priority  int
	Current   int64
	Request   int64
	Protected int64 // max(memory.min, memory.low)
}

// Take is one reclaim of a plan.
type Take struct {
	ID    string
	Bytes int64
}

// NodePressurePlan decides whom to reclaim from when the node runs short:
// need bytes in all, at most maxTotal, lowest reclaim priority first and,
// inside a priority, the containers furthest above their request first.
// A first pass takes only what lies above each container's request; a
// second pass goes down to protection. Protected memory is never taken.
func NodePressurePlan(need, maxTotal int64, cands []Candidate) []Take {
	return plan(need, maxTotal, cands, 2)
}

// AboveRequestPlan is NodePressurePlan's first pass alone: only what lies
// above requests (and protection) is taken.
func AboveRequestPlan(need, maxTotal int64, cands []Candidate) []Take {
	return plan(need, maxTotal, cands, 1)
}

func plan(need, maxTotal int64, cands []Candidate, passes int) []Take {
	need = min(need, maxTotal)
	if need <= 0 {
		return nil
	}
	cands = slices.Clone(cands)
	slices.SortStableFunc(cands, func(a, b Candidate) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority),
			cmp.Compare(b.Current-b.Request, a.Current-a.Request),
			cmp.Compare(a.ID, b.ID))
	})
	taken := map[string]int64{}
	var order []string
	for pass := 0; pass < passes && need > 0; pass++ {
		for _, c := range cands {
			if need <= 0 {
				break
			}
			floor := c.Protected
			if pass == 0 {
				floor = max(c.Protected, c.Request)
			}
			avail := c.Current - taken[c.ID] - floor
			if avail <= 0 {
				continue
			}
			t := min(avail, need)
			if taken[c.ID] == 0 {
				order = append(order, c.ID)
			}
			taken[c.ID] += t
			need -= t
		}
	}
	plan := make([]Take, 0, len(order))
	for _, id := range order {
		plan = append(plan, Take{ID: id, Bytes: taken[id]})
	}
	return plan
}

// NodeShort tells whether node-pressure reclaim should run. It starts when
// MemAvailable falls below LowFraction of MemTotal, or when the node's
// memory pressure (some, percent of the last second) reaches
// PressureThreshold: page cache counts as available, so a node whose
// memory is all cache never runs short by MemAvailable while its
// workloads thrash. Once started (active) it goes on until MemAvailable
// is back above HighFraction and the pressure below half its threshold.
// It returns how many bytes to reclaim (to reach the high mark, or
// MaxReclaimPerTick when the pressure alone holds it on) and whether the
// pressure alone holds it on: such a reclaim takes only what containers use
// above their requests.
func NodeShort(avail, total int64, pressure float64, np config.NodePressure, active bool) (short bool, need int64, byPressure bool) {
	if total <= 0 || (np.LowFraction == 0 && np.PressureThreshold == 0) {
		return false, 0, false
	}
	highMark := int64(np.HighFraction * float64(total))
	lowMem := np.LowFraction > 0 && (float64(avail) < np.LowFraction*float64(total) || (active && avail < highMark))
	if lowMem {
		return true, highMark - avail, false
	}
	if np.PressureThreshold > 0 && (pressure >= np.PressureThreshold || (active && pressure >= np.PressureThreshold/2)) {
		return true, np.MaxReclaimPerTick.Bytes(), true
	}
	return false, 0, false
}

// GuardState is the livelock guard's memory of one container.
type GuardState struct {
	// Raised tells that memory.high is above what the policy decided.
	Raised bool
	// High is the memory.high in force (0 until first seen).
	High int64
	// StallSince and CalmSince start the clocks of the next raise or restore.
	StallSince, CalmSince time.Time
}

// GuardAction is what a guard step decided.
type GuardAction int

// Guard actions.
const (
	GuardNone GuardAction = iota
	GuardRaise
	GuardRestore
)

// GuardStep advances the guard of a container whose policy memory.high is
// orig and whose raises may reach ceiling (its limit, or node memory). A
// container counts as stalled when its usage is within 5% of the memory.high
// in force and its memory.pressure "full" avg10 is above StallPressure; it
// counts as calm when that pressure is below ReleasePressure. Each
// StallFor of continuous stall raises memory.high by Step × (ceiling −
// orig); each ReleaseFor of continuous calm takes one step back, down to
// orig. Pressure between the two thresholds resets both clocks, so the guard
// never flaps.
func GuardStep(g GuardState, orig, ceilingBytes, current int64, fullAvg10 float64, now time.Time, cfg config.Guard, page int64) (GuardState, GuardAction) {
	if g.High == 0 || (!g.Raised && g.High != orig) {
		g = GuardState{High: orig}
	}
	if ceilingBytes <= orig {
		return g, GuardNone
	}
	// At least a page, so that a raise always moves memory.high (clamped to
	// the ceiling below).
	step := max(alignUp(int64(cfg.Step*float64(ceilingBytes-orig)), page), page)
	stalled := float64(current) >= 0.95*float64(g.High) && fullAvg10 > cfg.StallPressure
	calm := fullAvg10 < cfg.ReleasePressure
	switch {
	case stalled:
		g.CalmSince = time.Time{}
		if g.StallSince.IsZero() {
			g.StallSince = now
		}
		if now.Sub(g.StallSince) >= cfg.StallFor.Duration && g.High < ceilingBytes {
			g.High = min(g.High+step, ceilingBytes)
			g.Raised = true
			g.StallSince = now
			return g, GuardRaise
		}
	case calm && g.Raised:
		g.StallSince = time.Time{}
		if g.CalmSince.IsZero() {
			g.CalmSince = now
		}
		if now.Sub(g.CalmSince) >= cfg.ReleaseFor.Duration {
			g.High = max(g.High-step, orig)
			g.Raised = g.High != orig
			g.CalmSince = now
			return g, GuardRestore
		}
	default:
		g.StallSince, g.CalmSince = time.Time{}, time.Time{}
	}
	return g, GuardNone
}

// ProactiveReclaim is how much cold memory to reclaim from an idle
// container: Fraction of its inactive memory while its "some" pressure is
// below the target, bounded like every reclaim; 0 as soon as pressure rises.
func ProactiveReclaim(inactive, current, protected int64, someAvg10 float64, cfg config.Proactive, maxPerTick int64) int64 {
	if someAvg10 >= cfg.TargetPressure {
		return 0
	}
	return bound(int64(cfg.Fraction*float64(inactive)), current, protected, maxPerTick)
}

func alignUp(v, page int64) int64 {
	if page <= 0 {
		page = 4096
	}
	return (v + page - 1) / page * page
}
