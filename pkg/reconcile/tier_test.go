package reconcile

import (
	"fmt"
	"math"
	"testing"
	"time"

	"nri-memqos/pkg/config"
)

func TestTierSignal(t *testing.T) {
	both := TierSignal{PressureThreshold: 5, RefaultThreshold: 1000}
	with := func(s TierSignal, some, refaults float64, own bool) TierSignal {
		s.Some, s.Refaults, s.AtOwnLimit = some, refaults, own
		return s
	}
	tests := []struct {
		name            string
		sig             TierSignal
		pressured, calm bool
	}{
		{name: "quiet", sig: with(both, 0, 0, false), calm: true},
		{name: "pressure at the threshold", sig: with(both, 5, 0, false), pressured: true},
		{name: "refaults at the threshold", sig: with(both, 0, 1000, false), pressured: true},
		{name: "pressure just below: neither", sig: with(both, 4.99, 0, false)},
		{name: "pressure at half: neither", sig: with(both, 2.5, 0, false)},
		{name: "pressure below half: calm", sig: with(both, 2.49, 0, false), calm: true},
		{name: "refaults at half: neither", sig: with(both, 0, 500, false)},
		{name: "refaults below half: calm", sig: with(both, 0, 499, false), calm: true},
		{name: "one signal calm, the other not: not calm", sig: with(both, 0, 700, false)},
		{name: "at its own limit: its own business, calm", sig: with(both, 90, 90000, true), calm: true},
		{name: "pressure is not a signal of this class", sig: with(TierSignal{RefaultThreshold: 1000}, 100, 0, false), calm: true},
		{name: "refaults are not a signal of this class", sig: with(TierSignal{PressureThreshold: 5}, 0, 1e6, false), calm: true},
		{name: "steal at the threshold", sig: TierSignal{StealThreshold: 1000, Steal: 1000}, pressured: true},
		{name: "steal at half: neither", sig: TierSignal{StealThreshold: 1000, Steal: 500}},
		{name: "steal below half: calm", sig: TierSignal{StealThreshold: 1000, Steal: 499}, calm: true},
		{name: "steal with the other signals quiet", sig: TierSignal{PressureThreshold: 5, RefaultThreshold: 1000, StealThreshold: 1000, Steal: 4000}, pressured: true},
		{name: "steal is not a signal of this class", sig: with(both, 0, 0, false), calm: true},
		{name: "steal at its own limit: its own business", sig: TierSignal{StealThreshold: 1000, Steal: 1e6, AtOwnLimit: true}, calm: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if p, c := tc.sig.Pressured(), tc.sig.Calm(); p != tc.pressured || c != tc.calm {
				t.Fatalf("%+v: Pressured, Calm = %v, %v; want %v, %v", tc.sig, p, c, tc.pressured, tc.calm)
			}
		})
	}
}

// TestTierStepSequence walks the tiers through pressure, escalation, a
// flicker, calm and the give-back, one tick per second.
func TestTierStepSequence(t *testing.T) {
	cfg := tierTestConfig().Reconciler.Tiers // throttleAfter 3s, calmFor 10s
	ls := func(some float64) []TierSignal {
		return []TierSignal{{Priority: 100, PressureThreshold: 5, RefaultThreshold: 1000, Some: some}}
	}
	steps := []struct {
		at        int // seconds
		sigs      []TierSignal
		throttled bool
		want      TierAction
		active    bool
		below     int
	}{
		{at: 0, sigs: ls(0), want: TierNone},
		{at: 1, sigs: ls(10), want: TierReclaim, active: true, below: 100},
		{at: 2, sigs: ls(0), want: TierNone, active: true, below: 100}, // a short calm does not end the episode
		{at: 3, sigs: ls(10), want: TierReclaim, active: true, below: 100},
		{at: 4, sigs: ls(10), want: TierThrottle, active: true, below: 100}, // 3s into the episode
		{at: 5, sigs: ls(10), throttled: true, want: TierReclaim, active: true, below: 100},
		{at: 6, sigs: ls(3), throttled: true, want: TierNone, active: true, below: 100}, // between: nothing moves
		{at: 7, sigs: ls(10), throttled: true, want: TierThrottle, active: true, below: 100},
		// A second protected container of a higher priority: victims below it.
		{at: 8, sigs: append(ls(0), TierSignal{Priority: 200, PressureThreshold: 5, Some: 50}), throttled: true, want: TierReclaim, active: true, below: 200},
		{at: 9, sigs: ls(0), throttled: true, want: TierNone, active: true, below: 200}, // calm from 9s
		{at: 18, sigs: ls(0), throttled: true, want: TierNone, active: true, below: 200},
		{at: 19, sigs: ls(0), throttled: true, want: TierGiveBack, active: true, below: 200},
		{at: 20, sigs: ls(1), throttled: true, want: TierNone, active: true, below: 200},
		{at: 29, sigs: ls(1), throttled: true, want: TierGiveBack, active: true, below: 200},
		{at: 30, sigs: ls(4), throttled: true, want: TierNone, active: true, below: 200}, // between: calm clock stops
		{at: 31, sigs: ls(0), throttled: true, want: TierNone, active: true, below: 200},
		{at: 40, sigs: ls(0), throttled: true, want: TierNone, active: true, below: 200},
		{at: 41, sigs: ls(0), throttled: true, want: TierGiveBack, active: true, below: 200},
		{at: 42, sigs: ls(0), throttled: false, want: TierNone, active: true, below: 200}, // all given back
		{at: 50, sigs: ls(0), throttled: false, want: TierNone, active: true, below: 200},
		{at: 51, sigs: ls(0), throttled: false, want: TierNone}, // calmFor after the last step: over
		{at: 52, sigs: ls(10), want: TierReclaim, active: true, below: 100},
		{at: 53, sigs: ls(0), want: TierNone, active: true, below: 100},
		{at: 63, sigs: ls(0), want: TierNone}, // nothing throttled: over after calmFor
	}
	var st TierState
	for _, s := range steps {
		var act TierAction
		st, act = TierStep(st, s.sigs, s.throttled, at(time.Duration(s.at)*time.Second), cfg)
		if act != s.want || st.Active != s.active || (s.active && st.Below != s.below) {
			t.Fatalf("at %ds: TierStep = %v, active %v, below %d; want %v, %v, %d", s.at, act, st.Active, st.Below, s.want, s.active, s.below)
		}
	}
}

func TestTierStepNoSignals(t *testing.T) {
	st, act := TierStep(TierState{}, nil, false, at(0), tierTestConfig().Reconciler.Tiers)
	if act != TierNone || st.Active {
		t.Fatalf("TierStep(no signals) = %+v, %v; want inactive, none", st, act)
	}
}

func TestVictimBounds(t *testing.T) {
	const headroom = 32 * mi
	tests := []struct {
		name                                        string
		request, protected, anon, policyHigh, limit int64
		want                                        Bounds
	}{
		{name: "anon plus headroom wins", request: 128 * mi, anon: 100 * mi, policyHigh: beHigh, limit: beLimit,
			want: Bounds{Floor: 132 * mi, Ceiling: beHigh}},
		{name: "request wins", request: 256 * mi, anon: 10 * mi, policyHigh: buHigh, limit: buLimit,
			want: Bounds{Floor: 256 * mi, Ceiling: buHigh}},
		{name: "protection wins", request: 64 * mi, protected: 300 * mi, anon: 10 * mi, limit: 1 * gi,
			want: Bounds{Floor: 300 * mi, Ceiling: 1 * gi}},
		{name: "no request, no limit, no memory.high", anon: 1,
			want: Bounds{Floor: headroom + 4096, Ceiling: math.MaxInt64}},
		{name: "page aligned up", request: 100*mi + 1,
			want: Bounds{Floor: 100*mi + 4096, Ceiling: math.MaxInt64}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := VictimBounds(tc.request, tc.protected, tc.anon, headroom, tc.policyHigh, tc.limit, 4096); got != tc.want {
				t.Fatalf("VictimBounds = %+v; want %+v", got, tc.want)
			}
		})
	}
}

// TestThrottleDownAndGiveBack follows one best-effort victim (usage 700Mi,
// anon 100Mi: floor 132Mi) down to its floor and back to its policy value.
func TestThrottleDownAndGiveBack(t *testing.T) {
	b := Bounds{Floor: 132 * mi, Ceiling: beHigh}
	const step = 148897792 // 0.25 × (700Mi − 132Mi)
	var th Throttle
	var highs []int64
	for range 6 {
		var moved bool
		th, moved = ThrottleDown(th, 700*mi, b, at(0), 0.25, 4096)
		if moved {
			highs = append(highs, th.High)
		}
	}
	want := []int64{700*mi - step, 700*mi - 2*step, 700*mi - 3*step, 132 * mi}
	if fmt.Sprint(highs) != fmt.Sprint(want) || th.From != 700*mi {
		t.Fatalf("throttle steps %v, from %d; want %v, from %d", highs, th.From, want, 700*mi)
	}
	// A victim that fills what it gets (usage at its memory.high): past
	// From, steps go on up to the ceiling.
	low := th
	highs = nil
	for th.High != 0 {
		th = GiveBack(th, th.High, b, 0.25, 4096)
		highs = append(highs, th.High)
	}
	if want := []int64{132*mi + step, 132*mi + 2*step, 132*mi + 3*step, 700 * mi, 700*mi + step, 0}; fmt.Sprint(highs) != fmt.Sprint(want) {
		t.Fatalf("give-back steps of a victim at its memory.high %v; want %v", highs, want)
	}
	// One that stays at 500Mi: released at the first step from From up
	// that finds a step of it unused.
	th, highs = low, nil
	for th.High != 0 {
		th = GiveBack(th, 500*mi, b, 0.25, 4096)
		highs = append(highs, th.High)
	}
	if want := []int64{132*mi + step, 132*mi + 2*step, 132*mi + 3*step, 700 * mi, 0}; fmt.Sprint(highs) != fmt.Sprint(want) {
		t.Fatalf("give-back steps of a victim at 500Mi %v; want %v", highs, want)
	}
	// A ceiling far above: past From each step doubles what was given
	// back above it.
	th, highs = low, nil
	for th.High != 0 {
		th = GiveBack(th, th.High, Bounds{Floor: b.Floor, Ceiling: 2 * gi}, 0.25, 4096)
		highs = append(highs, th.High)
	}
	if want := []int64{132*mi + step, 132*mi + 2*step, 132*mi + 3*step, 700 * mi, 700*mi + step, 700*mi + 2*step, 700*mi + 4*step, 700*mi + 8*step, 0}; fmt.Sprint(highs) != fmt.Sprint(want) {
		t.Fatalf("give-back steps under a far ceiling %v; want %v", highs, want)
	}
	// Without a ceiling, From releases it.
	th, highs = low, nil
	for th.High != 0 {
		th = GiveBack(th, th.High, Bounds{Floor: b.Floor, Ceiling: math.MaxInt64}, 0.25, 4096)
		highs = append(highs, th.High)
	}
	if want := []int64{132*mi + step, 132*mi + 2*step, 132*mi + 3*step, 0}; fmt.Sprint(highs) != fmt.Sprint(want) {
		t.Fatalf("give-back steps without a ceiling %v; want %v", highs, want)
	}
	if got := GiveBack(Throttle{}, 0, b, 0.25, 4096); got != (Throttle{}) {
		t.Fatalf("GiveBack(none) = %+v; want none", got)
	}
}

func TestThrottleDownEdges(t *testing.T) {
	b := Bounds{Floor: 132 * mi, Ceiling: beHigh}
	tests := []struct {
		name      string
		th        Throttle
		usage     int64
		wantMoved bool
		want      Throttle
	}{
		{name: "usage at the floor: nothing to take", usage: 132 * mi},
		{name: "usage below the floor", usage: 50 * mi},
		{name: "usage above the policy memory.high starts from it", usage: 2 * gi, wantMoved: true,
			want: Throttle{High: beHigh - alignUp(int64(0.25*float64(beHigh-132*mi)), 4096), From: beHigh}},
		{name: "usage not page aligned starts from the next page", usage: 700*mi + 1, wantMoved: true,
			want: Throttle{High: 700*mi + 4096 - alignUp(int64(0.25*float64(700*mi+4096-132*mi)), 4096), From: 700*mi + 4096}},
		{name: "held after a stall lift", th: Throttle{High: 500 * mi, From: 700 * mi, HeldUntil: at(time.Second)}, usage: 700 * mi,
			want: Throttle{High: 500 * mi, From: 700 * mi, HeldUntil: at(time.Second)}},
		{name: "at the floor already", th: Throttle{High: 132 * mi, From: 700 * mi}, usage: 700 * mi,
			want: Throttle{High: 132 * mi, From: 700 * mi}},
		{name: "floor rose above the throttle (anon grew): stays", th: Throttle{High: 100 * mi, From: 700 * mi}, usage: 700 * mi,
			want: Throttle{High: 100 * mi, From: 700 * mi}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, moved := ThrottleDown(tc.th, tc.usage, b, at(0), 0.25, 4096)
			if moved != tc.wantMoved || got != tc.want {
				t.Fatalf("ThrottleDown = %+v, %v; want %+v, %v", got, moved, tc.want, tc.wantMoved)
			}
		})
	}
}

func TestStallLift(t *testing.T) {
	guard := config.Default().Reconciler.Guard // stall 40 for 5s, releaseFor 30s
	b := Bounds{Floor: 132 * mi, Ceiling: beHigh}
	th := Throttle{High: 300 * mi, From: 700 * mi}
	const step = 148897792
	steps := []struct {
		at     int
		usage  int64
		full   float64
		lifted bool
		high   int64
	}{
		{at: 0, usage: 299 * mi, full: 60, high: 300 * mi}, // stall clock starts
		{at: 4, usage: 299 * mi, full: 60, high: 300 * mi},
		{at: 5, usage: 299 * mi, full: 60, lifted: true, high: 300*mi + step},
		{at: 6, usage: 300*mi + step, full: 60, high: 300*mi + step}, // a new stall clock
		{at: 7, usage: 100 * mi, full: 60, high: 300*mi + step},      // far below memory.high: not its stall
		{at: 8, usage: 300*mi + step, full: 30, high: 300*mi + step}, // below stallPressure
	}
	for _, s := range steps {
		var lifted bool
		th, lifted = StallLift(th, s.usage, s.full, b, at(time.Duration(s.at)*time.Second), guard, 0.25, 4096)
		if lifted != s.lifted || th.High != s.high {
			t.Fatalf("at %ds: StallLift = high %d, lifted %v; want %d, %v", s.at, th.High, lifted, s.high, s.lifted)
		}
		if s.lifted {
			if want := at(35 * time.Second); !th.HeldUntil.Equal(want) {
				t.Fatalf("held until %v; want %v", th.HeldUntil, want)
			}
			if _, moved := ThrottleDown(th, 700*mi, b, at(34*time.Second), 0.25, 4096); moved {
				t.Fatal("a lifted victim was lowered again before releaseFor")
			}
		}
	}
	if got, lifted := StallLift(Throttle{}, 700*mi, 90, b, at(0), guard, 0.25, 4096); lifted || got != (Throttle{}) {
		t.Fatalf("StallLift(not throttled) = %+v, %v", got, lifted)
	}
}

// TestTierStepBackoff: a give-back the pressure comes back within calmFor
// of doubles the calm the next one waits for, up to 8 × calmFor; one that
// holds does not; the episode's end forgets it.
func TestTierStepBackoff(t *testing.T) {
	cfg := tierTestConfig().Reconciler.Tiers // throttleAfter 3s, calmFor 10s
	sig := func(some float64) []TierSignal {
		return []TierSignal{{Priority: 100, PressureThreshold: 5, Some: some}}
	}
	var st TierState
	var gaveBack []int
	pressure := map[int]bool{0: true, 3: true}
	// Pressure at 0 and 3s (a throttle), then calm, and pressure again in
	// the second after each give-back, until 300s.
	for s := 0; s <= 300; s++ {
		some := 0.0
		if pressure[s] {
			some = 10
		}
		var act TierAction
		st, act = TierStep(st, sig(some), true, at(time.Duration(s)*time.Second), cfg)
		if act == TierGiveBack {
			gaveBack = append(gaveBack, s)
			pressure[s+1] = true
		}
	}
	// Calm from 4s: give-backs after 10s of calm, then 20s, 40s, and 80s
	// from then on, each calm clock starting the second after the pressure
	// that followed the last give-back.
	if want := []int{14, 36, 78, 160, 242}; fmt.Sprint(gaveBack) != fmt.Sprint(want) {
		t.Fatalf("give-backs at %v s; want %v", gaveBack, want)
	}
	if st.Backoff != maxTierBackoff {
		t.Fatalf("backoff %d; want the cap %d", st.Backoff, maxTierBackoff)
	}
	// A give-back that holds for calmFor leaves the backoff alone; the
	// pressure after that is no sign the step was too much.
	st2 := TierState{Active: true, Below: 100, Backoff: 1, GaveBackAt: at(0), LastStep: at(0)}
	st2, _ = TierStep(st2, sig(10), true, at(10*time.Second), cfg)
	if st2.Backoff != 1 || !st2.GaveBackAt.IsZero() {
		t.Fatalf("pressure calmFor after a give-back: backoff %d, gave back at %v; want 1, zero", st2.Backoff, st2.GaveBackAt)
	}
	// The end of the episode forgets the backoff.
	st3, _ := TierStep(TierState{Active: true, Below: 100, Backoff: 3, LastStep: at(0), CalmSince: at(0)}, sig(0), false, at(10*time.Second), cfg)
	if st3 != (TierState{}) {
		t.Fatalf("after the end: %+v; want the zero state", st3)
	}
}

func TestFollowFloor(t *testing.T) {
	b := Bounds{Floor: 300 * mi, Ceiling: beHigh}
	tests := []struct {
		name      string
		th        Throttle
		b         Bounds
		want      Throttle
		wantMoved bool
	}{
		{name: "not throttled", th: Throttle{}, b: b},
		{name: "at the floor", th: Throttle{High: 300 * mi, From: 700 * mi}, b: b, want: Throttle{High: 300 * mi, From: 700 * mi}},
		{name: "above the floor", th: Throttle{High: 400 * mi, From: 700 * mi}, b: b, want: Throttle{High: 400 * mi, From: 700 * mi}},
		{name: "the floor rose above it: raised", th: Throttle{High: 200 * mi, From: 700 * mi}, b: b,
			want: Throttle{High: 300 * mi, From: 700 * mi}, wantMoved: true},
		{name: "the floor rose to the ceiling: released", th: Throttle{High: 200 * mi, From: 700 * mi},
			b: Bounds{Floor: beHigh, Ceiling: beHigh}, wantMoved: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, moved := FollowFloor(tc.th, tc.b)
			if got != tc.want || moved != tc.wantMoved {
				t.Fatalf("FollowFloor = %+v, %v; want %+v, %v", got, moved, tc.want, tc.wantMoved)
			}
		})
	}
}
