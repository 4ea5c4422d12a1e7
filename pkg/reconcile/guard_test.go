package reconcile

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"nri-memqos/pkg/config"
)

// ---- guard ----

func TestTickGuard(t *testing.T) {
	cfg := config.Default()
	h := newHarness(t, 2, cfg)
	d := decide(t, cfg, config.ClassBurstable, buRequest, buLimit)
	dir := h.add("c1", config.ClassBurstable, d, v2Files{current: buHigh, full: 80})
	h.k.reclaim = func(string, int64) (int64, error) { return 0, nil } // usage stays at memory.high
	const (
		h0 = buHigh                 // 993210368
		h1 = buHigh + buGuardStep   // 1013346304
		h2 = buHigh + 2*buGuardStep // 1033482240
	)
	type step struct {
		from, to     int // seconds, inclusive
		before       func()
		wantHigh     int64 // memory.high file after the last tick of the step
		wantRaises   uint64
		wantRestores uint64
		wantDrift    uint64
		wantRaised   bool
	}
	s := func(v int64) string { return strconv.FormatInt(v, 10) }
	steps := []struct {
		name string
		step
	}{
		{"stalled for less than 5s: no raise", step{from: 0, to: 4, wantHigh: h0}},
		{"stalled for 5s: raised by one step", step{from: 5, to: 5, wantHigh: h1, wantRaises: 1, wantRaised: true}},
		{"usage follows the raised high: raised again 5s later; drift at 10s keeps it", step{from: 6, to: 10,
			before: func() { setCurrent(t, dir, h1) }, wantHigh: h2, wantRaises: 2, wantRaised: true}},
		{"pressure between thresholds: held", step{from: 11, to: 11,
			before: func() { writeFile(t, dir, "memory.pressure", pressure(0, 20)) }, wantHigh: h2, wantRaises: 2, wantRaised: true}},
		{"someone writes the policy value: drift restores the guard's", step{from: 12, to: 20,
			before: func() { writeFile(t, dir, "memory.high", s(h0)) }, wantHigh: h2, wantRaises: 2, wantDrift: 1, wantRaised: true}},
		{"calm for less than 30s: held", step{from: 21, to: 50,
			before:   func() { writeFile(t, dir, "memory.pressure", pressure(0, 0)); setCurrent(t, dir, 800*mi) },
			wantHigh: h2, wantRaises: 2, wantDrift: 1, wantRaised: true}},
		{"calm for 30s: one step back", step{from: 51, to: 51, wantHigh: h1, wantRaises: 2, wantRestores: 1, wantDrift: 1, wantRaised: true}},
		{"calm 29s more: held", step{from: 52, to: 80, wantHigh: h1, wantRaises: 2, wantRestores: 1, wantDrift: 1, wantRaised: true}},
		{"calm 30s more: back at the policy value", step{from: 81, to: 81, wantHigh: h0, wantRaises: 2, wantRestores: 2, wantDrift: 1}},
		{"calm on: nothing more", step{from: 82, to: 130, wantHigh: h0, wantRaises: 2, wantRestores: 2, wantDrift: 1}},
	}
	for _, st := range steps {
		if st.before != nil {
			st.before()
		}
		for sec := st.from; sec <= st.to; sec++ {
			h.r.Tick(at(time.Duration(sec) * time.Second))
		}
		if got := strings.TrimSpace(readFile(t, dir, "memory.high")); got != s(st.wantHigh) {
			t.Fatalf("%q (t=%ds): memory.high = %s; want %d", st.name, st.to, got, st.wantHigh)
		}
		sts := h.stats("c1")
		if sts.GuardRaises != st.wantRaises || sts.GuardRestores != st.wantRestores || sts.DriftRepairs != st.wantDrift {
			t.Fatalf("%q: GuardRaises %d, GuardRestores %d, DriftRepairs %d; want %d, %d, %d", st.name,
				sts.GuardRaises, sts.GuardRestores, sts.DriftRepairs, st.wantRaises, st.wantRestores, st.wantDrift)
		}
		if sts.High != st.wantHigh || sts.Raised != st.wantRaised {
			t.Fatalf("%q: Stats High %d Raised %v; want %d %v", st.name, sts.High, sts.Raised, st.wantHigh, st.wantRaised)
		}
		held, ok := h.r.HeldHigh("c1")
		if ok != st.wantRaised || (ok && held != st.wantHigh) {
			t.Fatalf("%q: HeldHigh = %d, %v; want %d, %v", st.name, held, ok, st.wantHigh, st.wantRaised)
		}
	}
	es := entries(t, h.log)
	raises := withMsg(es, "memory.high guard: raised a stalled container")
	restores := withMsg(es, "memory.high guard: restored")
	wantRaises := [][2]int64{{h0, h1}, {h1, h2}}
	wantRestores := [][2]int64{{h2, h1}, {h1, h0}}
	for name, c := range map[string]struct {
		got   []entry
		want  [][2]int64
		level string
	}{"raise": {raises, wantRaises, "warning"}, "restore": {restores, wantRestores, "info"}} {
		if len(c.got) != len(c.want) {
			t.Fatalf("%s logs: %v; want %d", name, c.got, len(c.want))
		}
		for i, e := range c.got {
			if e.str("from") != s(c.want[i][0]) || e.str("to") != s(c.want[i][1]) || e.str("policy") != s(h0) ||
				e.str("limit") != s(buLimit) || e.str("level") != c.level || e.str("class") != config.ClassBurstable {
				t.Errorf("%s log %d = %v; want from %d to %d policy %d limit %d at %s", name, i, e, c.want[i][0], c.want[i][1], h0, buLimit, c.level)
			}
		}
	}
	drift := withMsg(es, "drift repaired: a value the plugin set was changed; further repairs of it are not logged")
	if len(drift) != 1 || drift[0].str("file") != "memory.high" || drift[0].str("found") != s(h0) || drift[0].str("restored") != s(h2) {
		t.Fatalf("drift logs %v; want one restoring memory.high %d over %d", drift, h2, h0)
	}
}

func TestTickGuardOff(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *config.Config)
		limit  int64
		psi    bool
	}{
		{name: "guard disabled", mutate: func(c *config.Config) { c.Reconciler.Guard.Enabled = false }, limit: buLimit, psi: true},
		{name: "no pressure accounting (memory.pressure missing)", limit: buLimit, psi: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			if tc.mutate != nil {
				tc.mutate(cfg)
			}
			h := newHarness(t, 2, cfg)
			d := decide(t, cfg, config.ClassBurstable, buRequest, tc.limit)
			dir := h.add("c1", config.ClassBurstable, d, v2Files{current: buHigh, full: 80})
			h.k.reclaim = func(string, int64) (int64, error) { return 0, nil } // usage stays at memory.high
			if !tc.psi {
				if err := os.Remove(filepath.Join(dir, "memory.pressure")); err != nil {
					t.Fatal(err)
				}
			}
			for sec := 0; sec <= 60; sec++ {
				h.r.Tick(at(time.Duration(sec) * time.Second))
			}
			if got := strings.TrimSpace(readFile(t, dir, "memory.high")); got != strconv.FormatInt(buHigh, 10) {
				t.Fatalf("memory.high = %s; want %d", got, buHigh)
			}
			if s := h.stats("c1"); s.GuardRaises != 0 || s.Raised {
				t.Fatalf("GuardRaises %d Raised %v; want 0 false", s.GuardRaises, s.Raised)
			}
			h.noSevere()
		})
	}
}

// Turning the guard off while it holds memory.high up must give the policy's
// memory.high back; the raised value must not be held (and defended by drift
// repair) for the rest of the container's life.
func TestTickGuardDisabledWhileRaised(t *testing.T) {
	cfg := config.Default()
	h := newHarness(t, 2, cfg)
	d := decide(t, cfg, config.ClassBurstable, buRequest, buLimit)
	dir := h.add("c1", config.ClassBurstable, d, v2Files{current: buHigh, full: 80})
	h.k.reclaim = func(string, int64) (int64, error) { return 0, nil }
	for sec := 0; sec <= 5; sec++ {
		h.r.Tick(at(time.Duration(sec) * time.Second))
	}
	if got := strings.TrimSpace(readFile(t, dir, "memory.high")); got != strconv.FormatInt(buHigh+buGuardStep, 10) {
		t.Fatalf("setup: memory.high = %s; want raised to %d", got, buHigh+buGuardStep)
	}
	off := config.Default()
	off.Reconciler.Guard.Enabled = false
	h.r.SetConfig(off)
	for sec := 6; sec <= 30; sec++ {
		h.r.Tick(at(time.Duration(sec) * time.Second))
	}
	if got := strings.TrimSpace(readFile(t, dir, "memory.high")); got != strconv.FormatInt(buHigh, 10) {
		t.Errorf("guard disabled 25s ago: memory.high = %s; want the policy value %d", got, buHigh)
	}
	if v, held := h.r.HeldHigh("c1"); held {
		t.Errorf("guard disabled: HeldHigh = %d, true; want not held", v)
	}
}
