package reconcile

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"nri-memqos/pkg/config"
	"nri-memqos/pkg/policy"
)

// ---- watermark ----

func TestTickWatermark(t *testing.T) {
	tests := []struct {
		name     string
		class    string
		current  int64
		maxTick  string
		drop     int64 // what the simulated kernel frees; -1: what was asked
		wantAsk  string
		wantDrop int64
	}{
		{name: "burstable above watermark: bounded by maxReclaimPerTick",
			class: config.ClassBurstable, current: 900 * mi, drop: -1,
			wantAsk: "67108864", wantDrop: 64 * mi},
		{name: "burstable one byte above watermark",
			class: config.ClassBurstable, current: buHighWatermark + 1, drop: -1,
			wantAsk: "67108864", wantDrop: 64 * mi},
		{name: "burstable above watermark, larger maxReclaimPerTick: down to low watermark",
			class: config.ClassBurstable, current: 900 * mi, maxTick: "256Mi", drop: -1,
			wantAsk: strconv.FormatInt(900*mi-buLowWatermark, 10), wantDrop: 900*mi - buLowWatermark},
		{name: "kernel frees less than asked: the drop is counted",
			class: config.ClassBurstable, current: 900 * mi, drop: 10 * mi,
			wantAsk: "67108864", wantDrop: 10 * mi},
		{name: "kernel frees nothing: nothing counted",
			class: config.ClassBurstable, current: 900 * mi, drop: 0,
			wantAsk: "67108864", wantDrop: 0},
		{name: "latency-sensitive without memory.high: ceiling is the limit",
			class: config.ClassLatencySensitive, current: 1000 * mi, maxTick: "256Mi", drop: -1,
			// 1000Mi − int64(0.9 × 1Gi)
			wantAsk: "82208359", wantDrop: 82208359},
		{name: "burstable at the watermark: untouched",
			class: config.ClassBurstable, current: buHighWatermark, wantAsk: ""},
		{name: "burstable well below watermark: untouched",
			class: config.ClassBurstable, current: 850 * mi, wantAsk: ""},
		{name: "latency-sensitive below its watermark (0.95 × 1Gi): untouched",
			class: config.ClassLatencySensitive, current: 970 * mi, wantAsk: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			if tc.maxTick != "" {
				cfg.Reconciler.MaxReclaimPerTick = config.ParseQuantity(tc.maxTick)
			}
			h := newHarness(t, 2, cfg)
			var d *policy.Decision
			switch tc.class {
			case config.ClassBurstable:
				d = decide(t, cfg, tc.class, buRequest, buLimit)
			case config.ClassLatencySensitive:
				d = decide(t, cfg, tc.class, lsRequest, lsLimit)
			}
			dir := h.add("c1", tc.class, d, v2Files{current: tc.current})
			if tc.drop >= 0 {
				drop := tc.drop
				h.k.reclaim = func(string, int64) (int64, error) { return drop, nil }
			}
			h.r.Tick(at(0))

			if got := readFile(t, dir, "memory.reclaim"); got != tc.wantAsk {
				t.Fatalf("memory.reclaim = %q; want %q", got, tc.wantAsk)
			}
			s := h.stats("c1")
			wantReclaimed := map[Reason]int64{}
			if tc.wantDrop > 0 {
				wantReclaimed[ReasonWatermark] = tc.wantDrop
			}
			if reclaimed(s) != fmt.Sprint(wantReclaimed) {
				t.Errorf("Reclaimed = %v; want %v", s.Reclaimed, wantReclaimed)
			}
			if s.Usage != tc.current-tc.wantDrop {
				t.Errorf("Stats.Usage = %d; want %d", s.Usage, tc.current-tc.wantDrop)
			}
			if got := strings.TrimSpace(readFile(t, dir, "memory.current")); got != strconv.FormatInt(tc.current-tc.wantDrop, 10) {
				t.Errorf("memory.current = %s; want %d", got, tc.current-tc.wantDrop)
			}
			if s.DriftRepairs != 0 || s.GuardRaises != 0 {
				t.Errorf("DriftRepairs %d, GuardRaises %d; want 0, 0", s.DriftRepairs, s.GuardRaises)
			}
			if tc.wantAsk == "" && len(h.k.calls) != 0 {
				t.Errorf("Reclaim calls %v; want none", h.k.calls)
			}
			h.noSevere()
		})
	}
}

func TestTickReclaimErrors(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		drop       int64
		wantA      map[Reason]int64
		wantWarnA  bool
		wantUsageA int64
	}{
		{name: "EAGAIN after a partial reclaim: counted, no warning",
			err: fmt.Errorf("failed to reclaim 67108864 bytes: %w", unix.EAGAIN), drop: 10 * mi,
			wantA: map[Reason]int64{ReasonWatermark: 10 * mi}, wantUsageA: 900*mi - 10*mi},
		{name: "EAGAIN without progress: nothing counted, no warning",
			err: fmt.Errorf("failed to reclaim 67108864 bytes: %w", unix.EAGAIN), drop: 0,
			wantA: map[Reason]int64{}, wantUsageA: 900 * mi},
		{name: "EBUSY: nothing counted, others still processed",
			err: fmt.Errorf("failed to reclaim 67108864 bytes: %w", unix.EBUSY), drop: 0,
			wantA: map[Reason]int64{}, wantWarnA: true, wantUsageA: 900 * mi},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			h := newHarness(t, 2, cfg)
			d := decide(t, cfg, config.ClassBurstable, buRequest, buLimit)
			dirA := h.add("a", config.ClassBurstable, d, v2Files{current: 900 * mi})
			dirB := h.add("b", config.ClassBurstable, d, v2Files{current: 900 * mi})
			h.k.reclaim = func(rel string, n int64) (int64, error) {
				if strings.HasSuffix(rel, "/a") {
					return tc.drop, tc.err
				}
				return n, nil
			}
			h.r.Tick(at(0))

			if got := readFile(t, dirA, "memory.reclaim"); got != "67108864" {
				t.Errorf("a: memory.reclaim = %q; want %q", got, "67108864")
			}
			sa := h.stats("a")
			if reclaimed(sa) != fmt.Sprint(tc.wantA) {
				t.Errorf("a: Reclaimed = %v; want %v", sa.Reclaimed, tc.wantA)
			}
			if sa.Usage != tc.wantUsageA {
				t.Errorf("a: Usage = %d; want %d", sa.Usage, tc.wantUsageA)
			}
			// b comes after a in the same tick.
			if got := readFile(t, dirB, "memory.reclaim"); got != "67108864" {
				t.Errorf("b: memory.reclaim = %q; want %q", got, "67108864")
			}
			if sb := h.stats("b"); reclaimed(sb) != fmt.Sprint(map[Reason]int64{ReasonWatermark: 64 * mi}) {
				t.Errorf("b: Reclaimed = %v; want watermark %d", sb.Reclaimed, 64*mi)
			}
			es := entries(t, h.log)
			warns := severe(es)
			if tc.wantWarnA {
				if len(warns) != 1 || warns[0].str("pod") != "pod-a" || !strings.Contains(warns[0].str("msg"), "reclaim") ||
					!strings.Contains(warns[0].str("msg"), unix.EBUSY.Error()) {
					t.Errorf("warnings = %v; want one about a's reclaim and EBUSY", warns)
				}
			} else if len(warns) != 0 {
				t.Errorf("warnings = %v; want none", warns)
			}
			if !tc.wantWarnA {
				var partial []entry
				for _, e := range withMsg(es, "reclaimed") {
					if e.str("pod") == "pod-a" {
						partial = append(partial, e)
					}
				}
				if len(partial) != 1 || partial[0].str("partial") != "true" || partial[0].str("asked") != "67108864" ||
					partial[0].str("reason") != "watermark" || partial[0].str("level") != "debug" {
					t.Errorf("a's reclaimed log = %v; want one debug entry, partial true, asked 67108864", partial)
				}
			}
		})
	}
}

// ---- node pressure ----

func TestTickNodePressure(t *testing.T) {
	cfg := config.Default()
	h := newHarness(t, 2, cfg)
	be := decide(t, cfg, config.ClassBestEffort, beRequest, beLimit)
	bu := decide(t, cfg, config.ClassBurstable, buRequest, buLimit)
	ls := decide(t, cfg, config.ClassLatencySensitive, lsRequest, lsLimit)
	// Listed highest priority first: the order must come from the plan.
	dirs := map[string]string{
		"ls": h.add("ls", config.ClassLatencySensitive, ls, v2Files{current: 700 * mi}),
		"bu": h.add("bu", config.ClassBurstable, bu, v2Files{current: 300 * mi}),
		"be": h.add("be", config.ClassBestEffort, be, v2Files{current: 200 * mi}),
	}
	rel := map[string]string{}
	for _, tg := range h.targets {
		rel[tg.Rel] = tg.ID
	}
	protect := map[string]int64{"ls": lsRequest, "bu": buRequest, "be": 0}
	pct := func(p float64) int64 { return int64(p * float64(nodeTotal)) }

	type take struct {
		id    string
		bytes int64
	}
	steps := []struct {
		name      string
		avail     int64
		before    func()
		wantTakes []take
		wantMsg   string // "node memory pressure: ..." logged this tick
	}{
		{name: "5% available: above request, lowest priority first", avail: pct(0.05),
			wantTakes: []take{{"be", 72 * mi}, {"bu", 44 * mi}, {"ls", 140 * mi}}, wantMsg: "started"},
		{name: "12% available: hysteresis keeps it going, second pass down to protection", avail: pct(0.12),
			wantTakes: []take{{"ls", 48 * mi}, {"be", 128 * mi}}},
		{name: "12% available, nothing above protection left", avail: pct(0.12), wantTakes: nil},
		{name: "16% available: over", avail: pct(0.16), before: func() { setCurrent(t, dirs["be"], 200*mi) },
			wantTakes: nil, wantMsg: "over"},
		{name: "12% available again: does not restart", avail: pct(0.12), wantTakes: nil},
		{name: "9% available: restarts", avail: pct(0.09),
			wantTakes: []take{{"be", 200 * mi}}, wantMsg: "started"},
	}
	wantTotal := map[string]int64{}
	for i, s := range steps {
		if s.before != nil {
			s.before()
		}
		h.avail = s.avail
		h.k.calls = nil
		h.log.Reset()
		h.r.Tick(at(time.Duration(i+1) * time.Second))

		var got []take
		for _, c := range h.k.calls {
			got = append(got, take{rel[c.rel], c.bytes})
		}
		if fmt.Sprint(got) != fmt.Sprint(s.wantTakes) {
			t.Fatalf("step %d %q: reclaims %v; want %v", i, s.name, got, s.wantTakes)
		}
		for _, tk := range s.wantTakes {
			wantTotal[tk.id] += tk.bytes
			if f := readFile(t, dirs[tk.id], "memory.reclaim"); f != strconv.FormatInt(tk.bytes, 10) {
				t.Errorf("step %d: %s memory.reclaim = %q; want %d", i, tk.id, f, tk.bytes)
			}
		}
		for id := range dirs {
			st := h.stats(id)
			if st.Usage < protect[id] {
				t.Errorf("step %d: %s usage %d below its protection %d", i, id, st.Usage, protect[id])
			}
			if st.Reclaimed[ReasonNodePressure] != wantTotal[id] {
				t.Errorf("step %d: %s Reclaimed[node-pressure] = %d; want %d", i, id, st.Reclaimed[ReasonNodePressure], wantTotal[id])
			}
			if st.Reclaimed[ReasonWatermark] != 0 || st.Reclaimed[ReasonProactive] != 0 {
				t.Errorf("step %d: %s Reclaimed = %v; want node-pressure only", i, id, st.Reclaimed)
			}
		}
		var msgs []string
		for _, e := range entries(t, h.log) {
			if m := e.str("msg"); strings.HasPrefix(m, "node memory pressure: ") {
				msgs = append(msgs, strings.TrimPrefix(m, "node memory pressure: "))
				if e.str("memAvailable") != strconv.FormatInt(s.avail, 10) || e.str("memTotal") != strconv.FormatInt(nodeTotal, 10) {
					t.Errorf("step %d: %v; want memAvailable %d, memTotal %d", i, e, s.avail, nodeTotal)
				}
			}
		}
		wantMsgs := []string{}
		if s.wantMsg != "" {
			wantMsgs = []string{s.wantMsg}
		}
		if fmt.Sprint(msgs) != fmt.Sprint(wantMsgs) {
			t.Errorf("step %d: pressure logs %v; want %v", i, msgs, wantMsgs)
		}
		h.noSevere()
	}
}

func TestTickNodePressureOff(t *testing.T) {
	tests := []struct {
		name       string
		mutate     func(c *config.Config)
		meminfoErr bool
	}{
		{name: "lowFraction 0", mutate: func(c *config.Config) { c.Reconciler.NodePressure.LowFraction = 0 }},
		{name: "meminfo fails", meminfoErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			if tc.mutate != nil {
				tc.mutate(cfg)
			}
			h := newHarness(t, 2, cfg)
			if tc.meminfoErr {
				h.r.meminfo = func() (int64, int64, error) { return 0, 0, errors.New("meminfo: boom") }
			}
			be := decide(t, cfg, config.ClassBestEffort, beRequest, beLimit)
			h.add("be", config.ClassBestEffort, be, v2Files{current: 200 * mi})
			h.avail = 0
			h.r.Tick(at(0))
			if len(h.k.calls) != 0 {
				t.Fatalf("reclaims %v; want none", h.k.calls)
			}
			warns := severe(entries(t, h.log))
			if tc.meminfoErr {
				if len(warns) != 1 || !strings.Contains(warns[0].str("msg"), "meminfo: boom") {
					t.Fatalf("warnings %v; want one naming the meminfo error", warns)
				}
			} else if len(warns) != 0 {
				t.Fatalf("warnings %v; want none", warns)
			}
		})
	}
}

// ---- proactive ----

func TestTickProactive(t *testing.T) {
	const inactive = 100*mi + 50*mi // inactive_file + inactive_anon
	const ask = 3145728             // 2% of 150Mi
	tests := []struct {
		name      string
		class     string
		proactive bool
		some      float64
		wantAt    []int // seconds of the ticks that reclaim
	}{
		{name: "idle: 2% of inactive every 10s", class: config.ClassBestEffort, proactive: true, some: 0.1, wantAt: []int{0, 10, 20}},
		{name: "no pressure at all", class: config.ClassBestEffort, proactive: true, some: 0, wantAt: []int{0, 10, 20}},
		{name: "pressure at target: none", class: config.ClassBestEffort, proactive: true, some: 0.5},
		{name: "pressure above target: none", class: config.ClassBestEffort, proactive: true, some: 3.2},
		{name: "class not opted in: none", class: config.ClassBestEffort, proactive: false, some: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Classes[config.ClassBestEffort].Reclaim.Proactive = tc.proactive
			h := newHarness(t, 2, cfg)
			d := decide(t, cfg, tc.class, beRequest, beLimit)
			dir := h.add("c1", tc.class, d, v2Files{current: 300 * mi,
				inactiveFile: 100 * mi, activeFile: 20 * mi, inactiveAnon: 50 * mi, activeAnon: 30 * mi, some: tc.some})
			var gotAt []int
			for sec := 0; sec <= 25; sec++ {
				n := len(h.k.calls)
				h.r.Tick(at(time.Duration(sec) * time.Second))
				for _, c := range h.k.calls[n:] {
					if c.bytes != ask {
						t.Fatalf("t=%ds: asked %d; want %d (2%% of %d)", sec, c.bytes, ask, inactive)
					}
					gotAt = append(gotAt, sec)
				}
			}
			if fmt.Sprint(gotAt) != fmt.Sprint(tc.wantAt) {
				t.Fatalf("reclaimed at %v s; want %v", gotAt, tc.wantAt)
			}
			s := h.stats("c1")
			want := map[Reason]int64{}
			wantFile := ""
			if len(tc.wantAt) > 0 {
				want[ReasonProactive] = int64(len(tc.wantAt)) * ask
				wantFile = strconv.Itoa(ask)
			}
			if reclaimed(s) != fmt.Sprint(want) {
				t.Errorf("Reclaimed = %v; want %v", s.Reclaimed, want)
			}
			if got := readFile(t, dir, "memory.reclaim"); got != wantFile {
				t.Errorf("memory.reclaim = %q; want %q", got, wantFile)
			}
			h.noSevere()
		})
	}
}

// TestReclaimChunksAndDeadline: a reclaim is written in chunks, stops at
// its deadline, and a write the kernel does not return from holds up
// neither the tick nor a configuration change (issue 10, item 7); no
// second write is issued for that container until the first returned.
func TestReclaimChunksAndDeadline(t *testing.T) {
	cfg := config.Default()
	cfg.Reconciler.Interval = config.Duration{Duration: 2 * time.Second} // deadline 1s: room for four chunks
	h := newHarness(t, 2, cfg)
	h.r.chunk = 16 * mi
	d := decide(t, cfg, config.ClassBurstable, buRequest, buLimit)
	h.add("c1", config.ClassBurstable, d, v2Files{current: 900 * mi})

	// Chunks: 64Mi (maxReclaimPerTick) in four writes of 16Mi.
	h.r.Tick(at(0))
	if want := []call{{h.targets[0].Rel, 16 * mi}, {h.targets[0].Rel, 16 * mi}, {h.targets[0].Rel, 16 * mi}, {h.targets[0].Rel, 16 * mi}}; !slices.Equal(h.k.calls, want) {
		t.Fatalf("reclaim writes = %v; want %v", h.k.calls, want)
	}
	if got := h.stats("c1").Reclaimed[ReasonWatermark]; got != 64*mi {
		t.Errorf("reclaimed %d; want 64Mi", got)
	}

	// A write that does not return; a deadline of 10ms.
	cfg = config.Default()
	cfg.Reconciler.Interval = config.Duration{Duration: 20 * time.Millisecond}
	h.r.SetConfig(cfg)
	h.setCurrent("c1", 900*mi)
	release := make(chan struct{})
	var released sync.Once
	t.Cleanup(func() { released.Do(func() { close(release) }) })
	var blocked atomic.Int32
	h.k.beforeReclaim = func(string) {
		blocked.Add(1)
		<-release
	}
	h.k.calls = nil
	start := time.Now()
	h.r.Tick(at(1))
	if d := time.Since(start); d > time.Second {
		t.Errorf("tick with a stuck memory.reclaim took %v; want it to give up at its deadline", d)
	}
	// A configuration change does not wait for anything.
	done := make(chan struct{})
	go func() { h.r.SetConfig(config.Default()); h.r.SetConfig(cfg); close(done) }()
	select {
	case <-done:
	case <-time.After(50 * time.Millisecond):
		t.Error("SetConfig waited behind the reconciler")
	}
	h.r.Tick(at(2))
	if n := blocked.Load(); n != 1 {
		t.Errorf("%d memory.reclaim writes issued while one was stuck; want 1", n)
	}
	if n := len(h.logsAt("warning", "memory.reclaim did not return")); n != 1 {
		t.Errorf("%d warnings about the stuck write; want 1", n)
	}

	// Once it returns, reclaim goes on.
	released.Do(func() { close(release) })
	waitFor(t, func() bool { return !h.r.reclaimingAny() })
	h.setCurrent("c1", 900*mi)
	h.r.Tick(at(3))
	if n := blocked.Load(); n < 2 {
		t.Errorf("no memory.reclaim after the stuck one returned (%d writes)", n)
	}
}
