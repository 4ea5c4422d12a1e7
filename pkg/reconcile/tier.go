package reconcile

import (
	"math"
	"time"

	"nri-memqos/pkg/config"
)

// Priority-aware reclaim, the pure part. Containers of classes with
// reclaim.protectFromLowerPriority report a TierSignal each tick; TierStep
// turns them into one action for the node; the containers of lower
// priority (the victims) then move with ThrottleDown, GiveBack and
// StallLift. The reconciler (tiers.go) reads the signals and writes.

// TierSignal is what one protected container showed on a tick.
type TierSignal struct {
	Priority int
	// Some is the share of the time (percent, over the last second or
	// more) in which a task of the container stalled on memory
	// (memory.pressure "some" total delta).
	Some float64
	// Refaults are workingset refaults (file and anonymous) per second.
	Refaults float64
	// Steal is the pages per second reclaim took from the container (0
	// over a window in which the plugin reclaimed from it itself).
	Steal float64
	// PressureThreshold, RefaultThreshold and StealThreshold are the
	// class's (0: not a signal).
	PressureThreshold, RefaultThreshold, StealThreshold float64
	// AtOwnLimit: usage within 5% of the container's own memory.high or
	// memory.max. Its pressure is then its own business, not the node's.
	AtOwnLimit bool
}

// Pressured tells whether the container asks the lower tiers to pay.
func (s TierSignal) Pressured() bool {
	if s.AtOwnLimit {
		return false
	}
	return (s.PressureThreshold > 0 && s.Some >= s.PressureThreshold) ||
		(s.RefaultThreshold > 0 && s.Refaults >= s.RefaultThreshold) ||
		(s.StealThreshold > 0 && s.Steal >= s.StealThreshold)
}

// Calm tells whether the container's signals are below half their
// thresholds (between half and the threshold it is neither pressured nor
// calm: nothing moves, so the tiers never flap).
func (s TierSignal) Calm() bool {
	if s.AtOwnLimit {
		return true
	}
	return (s.PressureThreshold == 0 || s.Some < s.PressureThreshold/2) &&
		(s.RefaultThreshold == 0 || s.Refaults < s.RefaultThreshold/2) &&
		(s.StealThreshold == 0 || s.Steal < s.StealThreshold/2)
}

// TierAction is what the tiers do on a tick.
type TierAction int

// Tier actions.
const (
	TierNone TierAction = iota
	// TierReclaim: reclaim from the victims (pressure this tick).
	TierReclaim
	// TierThrottle: reclaim, and lower the victims' memory.high one step.
	TierThrottle
	// TierGiveBack: raise the throttled containers' memory.high one step.
	TierGiveBack
)

func (a TierAction) String() string {
	return [...]string{"none", "reclaim", "throttle", "give back"}[a]
}

// TierState is the node's priority-aware reclaim state.
type TierState struct {
	// Below: containers of a priority below it are the victims; set while
	// the episode lasts, to the highest priority that was pressured.
	Below int
	// Active from the first pressured tick until the protected containers
	// have been calm for CalmFor with every throttle given back.
	Active bool
	// PressureSince is the episode's first pressured tick; CalmSince
	// starts the clock of the next give-back (or of the end); LastStep is
	// when the last throttle or give-back step was taken.
	PressureSince, CalmSince, LastStep time.Time
	// GaveBackAt is the last give-back step. Pressure again within CalmFor
	// of it means the step was more than the node had room for: Backoff
	// then doubles the calm the next give-back waits for, up to
	// maxTierBackoff doublings, so a victim that fills whatever it gets is
	// not handed memory to take from the protected container every
	// CalmFor. The episode's end clears both.
	GaveBackAt time.Time
	Backoff    int
}

// maxTierBackoff caps the give-back backoff: 8 × CalmFor.
const maxTierBackoff = 3

// TierStep advances the tiers by one tick. throttled tells whether any
// container's memory.high is held down.
//
// An episode starts at the first tick on which a protected container is
// pressured. Each pressured tick reclaims from the victims; once the
// episode has lasted ThrottleAfter, a pressured tick also lowers their
// memory.high one step, at most one step every ThrottleAfter. A short calm
// does not end the episode: only CalmFor of calm does, one give-back step
// per CalmFor while anything is throttled (doubling, up to 8×, after each
// give-back the pressure came back within CalmFor of), then the end. A
// tick that is neither pressured nor calm stops the calm clock and moves
// nothing.
func TierStep(st TierState, sigs []TierSignal, throttled bool, now time.Time, cfg config.Tiers) (TierState, TierAction) {
	pressured, calm, top := false, true, math.MinInt
	for _, s := range sigs {
		if s.Pressured() {
			pressured = true
			top = max(top, s.Priority)
		}
		calm = calm && s.Calm()
	}
	switch {
	case pressured:
		if !st.Active {
			st = TierState{Active: true, Below: top, PressureSince: now}
		}
		st.Below = max(st.Below, top)
		st.CalmSince = time.Time{}
		if !st.GaveBackAt.IsZero() {
			if now.Sub(st.GaveBackAt) < cfg.CalmFor.Duration {
				st.Backoff = min(st.Backoff+1, maxTierBackoff)
			}
			st.GaveBackAt = time.Time{}
		}
		if now.Sub(st.PressureSince) >= cfg.ThrottleAfter.Duration && now.Sub(st.LastStep) >= cfg.ThrottleAfter.Duration {
			st.LastStep = now
			return st, TierThrottle
		}
		return st, TierReclaim
	case calm && st.Active:
		if st.CalmSince.IsZero() {
			st.CalmSince = now
		}
		wait := cfg.CalmFor.Duration
		if throttled {
			wait <<= st.Backoff
		}
		if now.Sub(st.CalmSince) < wait || now.Sub(st.LastStep) < wait {
			return st, TierNone
		}
		if !throttled {
			return TierState{}, TierNone
		}
		st.LastStep, st.GaveBackAt = now, now
		return st, TierGiveBack
	case calm:
		return TierState{}, TierNone
	default:
		st.CalmSince = time.Time{}
	}
	return st, TierNone
}

// Throttle is the memory.high the tiers hold on one victim.
type Throttle struct {
	// High is the memory.high in force; 0 when the tiers hold none.
	High int64
	// From is the usage when the throttle began: its steps are a share
	// of the way from it down to the floor. A give-back past it goes on
	// in doubling steps up to the ceiling (the policy's memory.high) and
	// releases the throttle there, or earlier once the victim leaves a
	// step of it unused: one that fills whatever it gets (a file stream)
	// would otherwise take back far more than it held when the throttle
	// began, all at once. Without a ceiling, reaching From releases it.
	From int64
	// StallSince starts the clock of a stall lift; HeldUntil is when a
	// lifted victim may be lowered again.
	StallSince, HeldUntil time.Time
}

// Bounds are a victim's limits for a throttle.
type Bounds struct {
	// Floor is what memory.high never goes below: the largest of the
	// container's request, its protection and its anonymous memory plus
	// the headroom (page-aligned).
	Floor int64
	// Ceiling is the memory.high the policy gives it (else its limit,
	// else unbounded): a throttle at or above it is released.
	Ceiling int64
}

// VictimBounds computes a victim's bounds. policyHigh and limit are 0 when
// unset.
func VictimBounds(request, protected, anon, headroom, policyHigh, limit, page int64) Bounds {
	floor := alignUp(max(request, protected, anon+headroom), page)
	ceil := int64(math.MaxInt64)
	switch {
	case policyHigh > 0:
		ceil = policyHigh
	case limit > 0:
		ceil = limit
	}
	return Bounds{Floor: floor, Ceiling: ceil}
}

// stepBytes is one step of a throttle: step × (From − Floor), at least a page.
func stepBytes(th Throttle, b Bounds, step float64, page int64) int64 {
	return max(alignUp(int64(step*float64(th.From-b.Floor)), page), page)
}

// ThrottleDown lowers a victim's memory.high one step, never below its
// floor. An unthrottled victim starts from its usage (capped at its
// ceiling). It reports false when nothing moved (at the floor already, or
// held after a stall lift).
func ThrottleDown(th Throttle, usage int64, b Bounds, now time.Time, step float64, page int64) (Throttle, bool) {
	if now.Before(th.HeldUntil) {
		return th, false
	}
	if th.High == 0 {
		from := min(alignUp(usage, page), b.Ceiling)
		if from <= b.Floor {
			return th, false
		}
		th = Throttle{High: from, From: from}
	}
	if th.High <= b.Floor {
		return th, false
	}
	th.High = max(th.High-stepBytes(th, b, step, page), b.Floor)
	return th, true
}

// GiveBack raises a throttled victim's memory.high one step; at the
// ceiling (without one, at From), or at From or above while the victim
// leaves a step of it unused, the throttle is released (High 0: the
// policy's value again).
func GiveBack(th Throttle, usage int64, b Bounds, step float64, page int64) Throttle {
	if th.High == 0 {
		return th
	}
	s := stepBytes(th, b, step, page)
	if th.High >= th.From && usage <= th.High-s {
		return Throttle{}
	}
	// Past From each step doubles what was given back above it: the
	// ceiling may be far above (the policy's memory.high of a best-effort
	// container is most of the node), and steps sized for the way down
	// would take hours to get there.
	if th.High > th.From {
		s = max(s, th.High-th.From)
	}
	th.High += s
	top := b.Ceiling
	if top == math.MaxInt64 {
		top = th.From
	}
	if th.High >= top {
		return Throttle{}
	}
	return th
}

// FollowFloor raises a throttle its victim's floor rose above (its
// anonymous memory grew): a throttled container keeps headroom to make
// progress. At the ceiling the throttle is released. It reports whether
// the throttle moved.
func FollowFloor(th Throttle, b Bounds) (Throttle, bool) {
	if th.High == 0 || th.High >= b.Floor {
		return th, false
	}
	if b.Floor >= b.Ceiling {
		return Throttle{}, true
	}
	th.High = b.Floor
	return th, true
}

// StallLift lifts a throttled victim that stalls at its memory.high (usage
// within 5% of it and memory.pressure "full" above the guard's
// StallPressure for StallFor) one step, and holds it there for the guard's
// ReleaseFor: a container the tiers throttle must still make progress. It
// reports whether it lifted.
func StallLift(th Throttle, usage int64, fullAvg10 float64, b Bounds, now time.Time, guard config.Guard, step float64, page int64) (Throttle, bool) {
	if th.High == 0 {
		return th, false
	}
	if float64(usage) < 0.95*float64(th.High) || fullAvg10 <= guard.StallPressure {
		th.StallSince = time.Time{}
		return th, false
	}
	if th.StallSince.IsZero() {
		th.StallSince = now
	}
	if now.Sub(th.StallSince) < guard.StallFor.Duration {
		return th, false
	}
	held := now.Add(guard.ReleaseFor.Duration)
	th = GiveBack(th, usage, b, step, page)
	th.StallSince, th.HeldUntil = time.Time{}, held
	return th, true
}
