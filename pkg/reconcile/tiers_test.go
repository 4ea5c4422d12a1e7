package reconcile

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"nri-memqos/pkg/config"
)

// tierFixture is a node with a latency-sensitive container (protected from
// lower priorities by default), a burstable and a best-effort one, whose
// usage does not move when reclaimed from (so every value is exact).
type tierFixture struct {
	*harness
	ls, bu, be               v2Files
	lsDir, buDir, beDir      string
	lsSome                   uint64
	lsRefaults               uint64
	beThrottle1, buThrottle1 int64
}

const (
	// best-effort: usage 700Mi, anon 100Mi → floor 132Mi, one step
	// 0.25 × (700Mi − 132Mi).
	beStep = 148897792
	// burstable: usage 400Mi, floor its request 256Mi, step 0.25 × 144Mi.
	buStep = 37748736
)

func newTierFixture(t *testing.T, cfg *config.Config) *tierFixture {
	f := &tierFixture{harness: newHarness(t, 2, cfg)}
	f.ls = v2Files{current: 600 * mi, activeFile: 500 * mi, activeAnon: 100 * mi}
	f.bu = v2Files{current: 400 * mi, activeFile: 350 * mi, activeAnon: 50 * mi}
	f.be = v2Files{current: 700 * mi, activeFile: 600 * mi, activeAnon: 100 * mi}
	f.lsDir = f.add("ls", config.ClassLatencySensitive, decide(t, cfg, config.ClassLatencySensitive, lsRequest, lsLimit), f.ls)
	f.buDir = f.add("bu", config.ClassBurstable, decide(t, cfg, config.ClassBurstable, buRequest, buLimit), f.bu)
	f.beDir = f.add("be", config.ClassBestEffort, decide(t, cfg, config.ClassBestEffort, beRequest, beLimit), f.be)
	f.k.reclaim = func(string, int64) (int64, error) { return 0, nil }
	f.beThrottle1, f.buThrottle1 = 700*mi-beStep, 400*mi-buStep
	return f
}

// tick runs the tick at second s after the latency-sensitive container
// stalled for somePct of the last second and refaulted refaults pages.
func (f *tierFixture) tick(s int, somePct float64, refaults uint64) {
	f.t.Helper()
	f.lsSome += uint64(somePct * 1e4)
	f.lsRefaults += refaults
	ls := f.ls
	ls.someTotal, ls.refaultFile = f.lsSome, f.lsRefaults
	f.setFiles("ls", ls)
	f.r.Tick(at(time.Duration(s) * time.Second))
}

func (f *tierFixture) highs() string {
	f.t.Helper()
	high := func(dir string) string { return strings.TrimSpace(readFile(f.t, dir, "memory.high")) }
	return fmt.Sprintf("be %s bu %s ls %s", high(f.beDir), high(f.buDir), high(f.lsDir))
}

func wantHighs(be, bu int64) string {
	return fmt.Sprintf("be %d bu %d ls max", be, bu)
}

// victimReclaims are the reclaims asked of the best-effort and burstable
// containers.
func (f *tierFixture) victimReclaims() []call {
	var out []call
	for _, c := range f.k.calls {
		if c.rel != f.target("ls").Rel {
			out = append(out, c)
		}
	}
	return out
}

// TestTiersOrder: under the latency-sensitive container's pressure the
// best-effort container is reclaimed first, then both lower tiers are
// throttled; the protected container's files are never touched; drift
// repair keeps the throttle; calm gives everything back.
func TestTiersOrder(t *testing.T) {
	f := newTierFixture(t, tierTestConfig())
	lsBefore := fmt.Sprint(readFile(t, f.lsDir, "memory.min"), readFile(t, f.lsDir, "memory.high"), readFile(t, f.lsDir, "memory.swap.max"))
	policy := wantHighs(beHigh, buHigh)

	f.tick(0, 0, 0)
	if len(f.k.calls) != 0 || f.highs() != policy {
		t.Fatalf("quiet first tick: reclaims %v, %s", f.k.calls, f.highs())
	}
	for s := 1; s <= 3; s++ {
		f.tick(s, 10, 0)
	}
	beRel, buRel := f.target("be").Rel, f.target("bu").Rel
	want := []call{{beRel, 128 * mi}, {beRel, 128 * mi}, {beRel, 128 * mi}}
	if fmt.Sprint(f.k.calls) != fmt.Sprint(want) || fmt.Sprint(f.k.fileFirst) != fmt.Sprint([]string{beRel, beRel, beRel}) {
		t.Fatalf("reclaims %v (file first %v); want %v: the best-effort container first, file pages first", f.k.calls, f.k.fileFirst, want)
	}
	if f.highs() != policy {
		t.Fatalf("before throttleAfter: %s; want the policy's %s", f.highs(), policy)
	}
	if st := f.stats("ls"); st.Pressure != 10 {
		t.Fatalf("ls pressure = %v; want 10", st.Pressure)
	}
	if got := f.logsAt("info", "priority-aware reclaim: started"); len(got) != 1 || got[0].str("pressured") != "[ns/pod-ls/app]" || got[0].str("below") != "100" {
		t.Fatalf("start log %v; want one naming ns/pod-ls/app, below 100", got)
	}

	f.tick(4, 10, 0) // 3s of pressure: one step down for both victims
	if want := wantHighs(f.beThrottle1, f.buThrottle1); f.highs() != want {
		t.Fatalf("after the first throttle: %s; want %s", f.highs(), want)
	}
	if st := f.stats("be"); st.TierThrottles != 1 || st.High != f.beThrottle1 || st.Reclaimed[ReasonPriority] != 0 {
		t.Fatalf("be stats %+v; want 1 throttle, high %d", st, f.beThrottle1)
	}
	if got := f.logsAt("info", "priority-aware reclaim: memory.high throttled for a higher priority"); len(got) != 2 {
		t.Fatalf("%d first-throttle logs; want 2 (one per victim)", len(got))
	}

	// Pressure between calm and the threshold: nothing moves. Someone
	// writes the policy value back: drift repair keeps the throttle.
	for s := 5; s <= 9; s++ {
		f.tick(s, 3, 0)
	}
	writeFile(t, f.beDir, "memory.high", strconv.FormatInt(beHigh, 10)+"\n")
	f.tick(10, 3, 0)
	if want := wantHighs(f.beThrottle1, f.buThrottle1); f.highs() != want {
		t.Fatalf("between thresholds, after drift repair: %s; want %s", f.highs(), want)
	}
	// Calm from 11s: one step back after calmFor (10s), to the usage each
	// began at; both fill what they get, so the steps go on past it, one
	// per calmFor: the burstable one leaves its second step unused and is
	// released at the third, the best-effort one reaches its ceiling.
	for s := 11; s <= 20; s++ {
		f.tick(s, 0, 0)
		if s < 20 && f.highs() != wantHighs(f.beThrottle1, f.buThrottle1) {
			t.Fatalf("at %ds, calm for less than calmFor: %s", s, f.highs())
		}
	}
	next := 21
	for _, step := range []struct {
		at   int
		want string
	}{
		{21, wantHighs(700*mi, 400*mi)},
		{30, wantHighs(700*mi, 400*mi)},
		{31, wantHighs(700*mi+beStep, 400*mi+buStep)},
		{41, policy},
	} {
		for ; next <= step.at; next++ {
			f.tick(next, 0, 0)
		}
		if f.highs() != step.want {
			t.Fatalf("at %ds: %s; want %s", step.at, f.highs(), step.want)
		}
	}
	for s := 42; s <= 50; s++ {
		f.tick(s, 0, 0)
	}
	if got := f.logsAt("info", "priority-aware reclaim: protected containers calm"); len(got) != 0 {
		t.Fatalf("%d over logs before calmFor after the last step; want 0", len(got))
	}
	f.tick(51, 0, 0)
	if got := f.logsAt("info", "priority-aware reclaim: protected containers calm"); len(got) != 1 {
		t.Fatalf("%d over logs; want 1", len(got))
	}
	if st := f.stats("be"); st.High != beHigh {
		t.Fatalf("be stats high %d; want the policy's %d", st.High, beHigh)
	}
	if got := fmt.Sprint(readFile(t, f.lsDir, "memory.min"), readFile(t, f.lsDir, "memory.high"), readFile(t, f.lsDir, "memory.swap.max")); got != lsBefore {
		t.Fatalf("the protected container's files changed: %q; were %q", got, lsBefore)
	}
	for _, c := range f.k.calls {
		if c.rel == f.target("ls").Rel || c.rel == buRel {
			t.Fatalf("reclaimed from %s; only the best-effort container had enough above its request", c.rel)
		}
	}
	f.noSevereExcept("drift repaired: a value the plugin set was changed; further repairs of it are not logged")
}

func TestTiersEscalateToFloor(t *testing.T) {
	f := newTierFixture(t, tierTestConfig())
	for s := 0; s <= 16; s++ {
		f.tick(s, 0, 2000) // refaults alone: 2000/s over the 1000 threshold
	}
	// Throttles at 4, 7, 10, 13 and 16s: the best-effort container reaches
	// its floor (anon 100Mi + headroom 32Mi) at the fourth, the burstable
	// one its request.
	if want := wantHighs(132*mi, 256*mi); f.highs() != want {
		t.Fatalf("after five steps: %s; want %s", f.highs(), want)
	}
	if st := f.stats("be"); st.TierThrottles != 4 {
		t.Fatalf("be throttles %d; want 4 (the fifth found it at its floor)", st.TierThrottles)
	}
	// Its anonymous memory grows by 100Mi: the throttle follows its floor.
	f.be.activeAnon += 100 * mi
	f.setFiles("be", f.be)
	f.tick(17, 0, 2000)
	if want := wantHighs(232*mi, 256*mi); f.highs() != want {
		t.Fatalf("after the best-effort container's anonymous memory grew: %s; want %s", f.highs(), want)
	}
}

func TestTiersQuietCases(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*tierFixture)
	}{
		{name: "pressure at its own limit is its own business", setup: func(f *tierFixture) {
			f.ls.current = 1000 * mi // above 0.95 × 1Gi
		}},
		{name: "class without protectFromLowerPriority", setup: func(f *tierFixture) {
			f.target("ls").Decision.Reclaim.ProtectFromLowerPriority = false
		}},
		{name: "tiers off", setup: func(f *tierFixture) {
			cfg := tierTestConfig()
			cfg.Reconciler.Tiers.Enabled = false
			f.r.SetConfig(cfg)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newTierFixture(t, tierTestConfig())
			tc.setup(f)
			for s := 0; s <= 8; s++ {
				f.tick(s, 50, 5000)
			}
			// (At its own limit the container's watermark reclaims from
			// it: its own business.)
			if got := f.victimReclaims(); len(got) != 0 || f.highs() != wantHighs(beHigh, buHigh) {
				t.Fatalf("reclaims %v, %s; want none of the lower tiers and the policy's values", got, f.highs())
			}
			f.noSevere()
		})
	}
}

func TestTiersReleased(t *testing.T) {
	tests := []struct {
		name    string
		release func(*tierFixture)
		log     string
	}{
		{name: "configuration turns the tiers off", log: "priority-aware reclaim turned off: memory.high given back", release: func(f *tierFixture) {
			cfg := tierTestConfig()
			cfg.Reconciler.Tiers.Enabled = false
			f.r.SetConfig(cfg)
			f.tick(5, 50, 0)
		}},
		{name: "the protected container goes", log: "priority-aware reclaim no protected container left: memory.high given back", release: func(f *tierFixture) {
			f.targets = f.targets[1:]
			f.r.Tick(at(5 * time.Second))
		}},
		{name: "the plugin stops", log: "priority-aware reclaim stopping: memory.high given back", release: func(f *tierFixture) {
			f.r.Release()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newTierFixture(t, tierTestConfig())
			for s := 0; s <= 4; s++ {
				f.tick(s, 50, 0)
			}
			if want := wantHighs(f.beThrottle1, f.buThrottle1); f.highs() != want {
				t.Fatalf("throttled: %s; want %s", f.highs(), want)
			}
			tc.release(f)
			if f.highs() != wantHighs(beHigh, buHigh) {
				t.Fatalf("released: %s; want the policy's values", f.highs())
			}
			if got := f.logsAt("info", tc.log); len(got) != 2 {
				t.Fatalf("%d %q logs; want 2", len(got), tc.log)
			}
		})
	}
}

// TestTiersStallLift: a throttled best-effort container that stalls at the
// memory.high the tiers set is lifted a step after the guard's stallFor,
// and not lowered again for its releaseFor, even while pressure lasts.
func TestTiersStallLift(t *testing.T) {
	f := newTierFixture(t, tierTestConfig())
	for s := 0; s <= 4; s++ {
		f.tick(s, 50, 0)
	}
	be := f.be
	be.current, be.full = f.beThrottle1, 80 // at its throttle, stalled
	f.setFiles("be", be)
	for s := 5; s <= 10; s++ {
		f.tick(s, 50, 0)
	}
	// Lowered at 7s (585105408 → 436207616), stalled since 5s at 95% of
	// the throttle, lifted at 10s by a step back.
	if got := readFile(t, f.beDir, "memory.high"); got != strconv.FormatInt(f.beThrottle1, 10) {
		t.Fatalf("be memory.high %q; want %d (lifted one step after stallFor)", got, f.beThrottle1)
	}
	if got := f.logsAt("warning", "priority-aware reclaim: memory.high lifted: stalled at the memory.high the tiers set"); len(got) != 1 {
		t.Fatalf("%d lift warnings; want 1", len(got))
	}
	be.full = 0 // no longer stalled
	f.setFiles("be", be)
	for s := 11; s <= 39; s++ {
		f.tick(s, 50, 0)
	}
	if got := readFile(t, f.beDir, "memory.high"); got != strconv.FormatInt(f.beThrottle1, 10) {
		t.Fatalf("be memory.high %q during releaseFor; want %d held", got, f.beThrottle1)
	}
	f.tick(40, 50, 0)
	if got := readFile(t, f.beDir, "memory.high"); got != strconv.FormatInt(f.beThrottle1-beStep, 10) {
		t.Fatalf("be memory.high %q after releaseFor; want %d, lowered again", got, f.beThrottle1-beStep)
	}
	if st := f.stats("be"); st.GuardRaises != 1 {
		t.Fatalf("be guard raises %d; want 1", st.GuardRaises)
	}
}

// TestNodePressureByPSI: the node's memory pressure starts node-pressure
// reclaim although MemAvailable is plenty (page cache), and such a reclaim
// takes only what containers use above their requests.
func TestNodePressureByPSI(t *testing.T) {
	cfg := tierTestConfig()
	cfg.Reconciler.Tiers.Enabled = false
	h := newHarness(t, 2, cfg)
	h.add("be", config.ClassBestEffort, decide(t, cfg, config.ClassBestEffort, beRequest, beLimit), v2Files{current: 200 * mi, activeFile: 200 * mi})
	h.add("bu", config.ClassBurstable, decide(t, cfg, config.ClassBurstable, buRequest, buLimit), v2Files{current: 300 * mi, activeFile: 300 * mi})
	h.avail = 12 * gi // plenty
	h.r.Tick(at(0))
	h.psi.SomeTotal += 300_000 // 30% of the next second
	h.r.Tick(at(time.Second))
	// 256Mi in all, above requests only: best-effort 200Mi − 128Mi first,
	// then burstable 300Mi − 256Mi.
	want := []call{{h.target("be").Rel, 72 * mi}, {h.target("bu").Rel, 44 * mi}}
	if fmt.Sprint(h.k.calls) != fmt.Sprint(want) {
		t.Fatalf("reclaims %v; want %v", h.k.calls, want)
	}
	if got := h.logsAt("info", "node memory pressure: started"); len(got) != 1 {
		t.Fatalf("%d start logs; want 1", len(got))
	}
	h.k.calls = nil
	h.psi.SomeTotal += 50_000 // 5%: below half the threshold
	h.r.Tick(at(2 * time.Second))
	if len(h.k.calls) != 0 {
		t.Fatalf("reclaims %v after the pressure fell; want none", h.k.calls)
	}
	// Within the window the last share holds: a burst is not read yet.
	h.psi.SomeTotal += 300_000
	h.r.Tick(at(2500 * time.Millisecond))
	if len(h.k.calls) != 0 {
		t.Fatalf("reclaims %v half a second into the window; want none", h.k.calls)
	}
	h.r.Tick(at(3 * time.Second)) // 300ms stalled in the second since 2s: 30%
	// Started again; nothing is left above the requests (the first
	// reclaim took it), so nothing is asked.
	if got := h.logsAt("info", "node memory pressure: started"); len(got) != 2 || len(h.k.calls) != 0 {
		t.Fatalf("%d start logs, reclaims %v after a window with 30%% pressure; want 2 and none", len(got), h.k.calls)
	}
}

// TestTierSignalWindow: at a 200ms interval a protected container's rates
// are taken over a second, not over one tick.
func TestTierSignalWindow(t *testing.T) {
	cfg := tierTestConfig()
	cfg.Reconciler.Interval.Duration = 200 * time.Millisecond
	f := newTierFixture(t, cfg)
	var got []float64
	for i := 0; i <= 10; i++ {
		// Stalled for the first 200ms of each second only.
		if i%5 == 1 {
			f.lsSome += 200_000
		}
		ls := f.ls
		ls.someTotal = f.lsSome
		f.setFiles("ls", ls)
		f.r.Tick(at(time.Duration(i) * 200 * time.Millisecond))
		got = append(got, f.stats("ls").Pressure)
	}
	// Read at 0s, 1s and 2s: 20% of each second, never 100% of a tick.
	if want := []float64{0, 0, 0, 0, 0, 20, 20, 20, 20, 20, 20}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pressure by tick %v; want %v", got, want)
	}
}

// TestTiersSteal: an idle latency-sensitive container whose page cache the
// kernel takes (pgsteal) starts the episode before it refaults anything;
// what the plugin reclaimed from it itself is no theft.
func TestTiersSteal(t *testing.T) {
	t.Run("kernel reclaim starts the episode", func(t *testing.T) {
		f := newTierFixture(t, tierTestConfig())
		f.tick(0, 0, 0)
		f.ls.steal += 2000 // 2000 pages in a second: over the 256/s threshold
		f.tick(1, 0, 0)
		if st := f.stats("ls"); st.Steal != 2000 {
			t.Fatalf("ls steal rate %v; want 2000 pages/s", st.Steal)
		}
		if got := f.victimReclaims(); len(got) == 0 || got[0].rel != f.target("be").Rel {
			t.Fatalf("reclaims %+v; want the best-effort container first", got)
		}
		f.noSevereExcept("drift repaired: a value the plugin set was changed; further repairs of it are not logged")
	})
	t.Run("the plugin's own reclaim is no theft", func(t *testing.T) {
		f := newTierFixture(t, tierTestConfig())
		f.tick(0, 0, 0)
		// The plugin took 8 MiB from it and the kernel counts 4000 pages
		// in the second: the plugin's count of its own reclaim is short
		// of what the kernel counts, so the window does not count.
		f.r.states["ls"].addReclaimed(ReasonWatermark, 8*mi)
		f.ls.steal += 4000
		f.tick(1, 0, 0)
		if st := f.stats("ls"); st.Steal != 0 {
			t.Fatalf("ls steal rate %v; want 0 in a window the plugin reclaimed from it", st.Steal)
		}
		if got := f.victimReclaims(); len(got) != 0 {
			t.Fatalf("reclaims %+v; want none", got)
		}
		// The next window, without the plugin's reclaim, counts again.
		f.ls.steal += 2000
		f.tick(2, 0, 0)
		if st := f.stats("ls"); st.Steal != 2000 {
			t.Fatalf("ls steal rate %v; want 2000 pages/s", st.Steal)
		}
	})
}
