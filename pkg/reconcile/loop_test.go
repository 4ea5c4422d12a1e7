package reconcile

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/config"
)

func TestTickSkipsIncompleteTargets(t *testing.T) {
	cfg := config.Default()
	h := newHarness(t, 2, cfg)
	d := decide(t, cfg, config.ClassBurstable, buRequest, buLimit)
	dir := h.add("c1", config.ClassBurstable, d, v2Files{current: 900 * mi})
	tests := []struct {
		name string
		t    Target
	}{
		{name: "no decision", t: Target{ID: "c1", Rel: h.targets[0].Rel}},
		{name: "no cgroup path", t: Target{ID: "c1", Decision: d}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.targets = []Target{tc.t}
			h.r.Tick(at(0))
			if got := readFile(t, dir, "memory.reclaim"); got != "" {
				t.Fatalf("memory.reclaim = %q; want untouched", got)
			}
			if st := h.r.Stats(); len(st) != 0 {
				t.Fatalf("Stats() = %v; want empty", st)
			}
		})
	}
}

// ---- a cgroup that goes away ----

func TestTickCgroupGone(t *testing.T) {
	tests := []struct {
		name  string
		setup func(h *harness, dir, rel string)
	}{
		{name: "removed inside Usage", setup: func(h *harness, dir, rel string) {
			done := false
			h.k.afterUsage = func(r string) {
				if r == rel && !done {
					done = true
					if err := os.RemoveAll(dir); err != nil {
						h.t.Fatal(err)
					}
				}
			}
		}},
		{name: "removed before Reclaim", setup: func(h *harness, dir, rel string) {
			h.k.beforeReclaim = func(r string) {
				if r == rel {
					if err := os.RemoveAll(dir); err != nil {
						h.t.Fatal(err)
					}
				}
			}
		}},
		{name: "removed after Reclaim, before the usage is read again", setup: func(h *harness, dir, rel string) {
			h.k.reclaim = func(r string, n int64) (int64, error) {
				if r == rel {
					if err := os.RemoveAll(dir); err != nil {
						h.t.Fatal(err)
					}
					return 0, nil
				}
				return n, nil
			}
		}},
		{name: "removed before the tick", setup: func(h *harness, dir, rel string) {
			if err := os.RemoveAll(dir); err != nil {
				h.t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			h := newHarness(t, 2, cfg)
			d := decide(t, cfg, config.ClassBurstable, buRequest, buLimit)
			// Above the watermark and at memory.high under pressure, so
			// every step (events, guard, reclaim, drift) touches it.
			goneDir := h.add("gone", config.ClassBurstable, d, v2Files{current: buHigh, full: 80})
			okDir := h.add("ok", config.ClassBurstable, d, v2Files{current: 900 * mi})
			tc.setup(h, goneDir, h.targets[0].Rel)

			h.r.Tick(at(0))
			h.r.Tick(at(10 * time.Second)) // guard and drift run again

			h.noSevere()
			if got := readFile(t, okDir, "memory.reclaim"); got != "67108864" {
				t.Errorf("ok: memory.reclaim = %q; want 67108864", got)
			}
			if _, ok := h.r.Stats()["gone"]; !ok {
				t.Errorf("Stats() lost %q while it is still in the source", "gone")
			}
			h.targets = h.targets[1:]
			h.r.Tick(at(11 * time.Second))
			st := h.r.Stats()
			if _, ok := st["gone"]; ok {
				t.Errorf("Stats() still has %q after it left the source", "gone")
			}
			if _, ok := st["ok"]; !ok || len(st) != 1 {
				t.Errorf("Stats() = %v; want only %q", st, "ok")
			}
			if _, held := h.r.HeldHigh("gone"); held {
				t.Errorf("HeldHigh(gone) still held")
			}
		})
	}
}

// ---- disabled ----

func TestTickDisabled(t *testing.T) {
	tests := []struct {
		name string
		cfg  *config.Config
	}{
		{name: "reconciler disabled", cfg: func() *config.Config { c := config.Default(); c.Reconciler.Enabled = false; return c }()},
		{name: "no config", cfg: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 2, config.Default())
			d := decide(t, config.Default(), config.ClassBurstable, buRequest, buLimit)
			dir := h.add("c1", config.ClassBurstable, d, v2Files{current: 900 * mi})
			h.r.SetConfig(tc.cfg)
			h.avail = 0
			h.r.Tick(at(0))
			if got := readFile(t, dir, "memory.reclaim"); got != "" {
				t.Fatalf("memory.reclaim = %q; want untouched", got)
			}
			if len(h.r.Stats()) != 0 {
				t.Fatalf("Stats() = %v; want empty", h.r.Stats())
			}
		})
	}
}

// ---- scale ----

func TestTickThousandContainers(t *testing.T) {
	cfg := config.Default()
	h := newHarness(t, 2, cfg)
	h.k.reclaim = func(string, int64) (int64, error) { return 0, nil }
	d := decide(t, cfg, config.ClassBurstable, buRequest, buLimit)
	const n = 1000
	dirs := make([]string, n)
	for i := range n {
		cur := int64(300 * mi)
		if i%2 == 0 {
			cur = 900 * mi // above the 0.9 × memory.high watermark
		}
		dirs[i] = h.add(fmt.Sprintf("c%04d", i), config.ClassBurstable, d, v2Files{current: cur})
	}
	start := time.Now()
	h.r.Tick(at(0))
	took := time.Since(start)
	t.Logf("one tick over %d containers took %v", n, took)

	for i, dir := range dirs {
		want := ""
		if i%2 == 0 {
			want = "67108864"
		}
		if got := readFile(t, dir, "memory.reclaim"); got != want {
			t.Fatalf("container %d: memory.reclaim = %q; want %q", i, got, want)
		}
	}
	if got := len(h.k.calls); got != n/2 {
		t.Fatalf("%d reclaims; want %d", got, n/2)
	}
	if got := len(h.r.Stats()); got != n {
		t.Fatalf("Stats() has %d containers; want %d", got, n)
	}
	h.noSevere()
}

// ---- Run ----

func TestRunStopsOnCancel(t *testing.T) {
	tests := []struct {
		name      string
		interval  time.Duration
		waitTicks int64
	}{
		{name: "short interval, after some ticks", interval: 10 * time.Millisecond, waitTicks: 3},
		{name: "long interval, before the first tick", interval: time.Hour, waitTicks: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Reconciler.Interval.Duration = tc.interval
			cfg.Reconciler.DriftInterval.Duration = max(tc.interval, cfg.Reconciler.DriftInterval.Duration)
			var ticks atomic.Int64
			l := logrus.New()
			l.Out = io.Discard
			fs := &cgroupfs.FS{Root: t.TempDir(), Version: 2, PlainFiles: true}
			r := New(fs, 2, cfg, func() []Target { ticks.Add(1); return nil },
				func() (int64, int64, error) { return 8 * gi, nodeTotal, nil }, l, 4096)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan struct{})
			go func() { r.Run(ctx); close(done) }()
			deadline := time.Now().Add(5 * time.Second)
			for ticks.Load() < tc.waitTicks {
				if time.Now().After(deadline) {
					t.Fatalf("only %d ticks in 5s at %v", ticks.Load(), tc.interval)
				}
				time.Sleep(time.Millisecond)
			}
			cancel()
			select {
			case <-done:
			case <-time.After(time.Second):
				t.Fatal("Run did not return within a second of the cancel")
			}
		})
	}
}

// TestStatesShrinkAfterMassRemoval: once the containers fell to a quarter
// of their peak the reconciler's map of them is made anew at its size;
// cloned, as it was, it kept the capacity of the peak.
func TestStatesShrinkAfterMassRemoval(t *testing.T) {
	const peak = 20000
	h := newHarness(t, 2, config.Default())
	ids := make([]string, peak)
	for i := range ids {
		ids[i] = fmt.Sprintf("%064x", i)
	}
	before := heapNow()
	for _, id := range ids {
		h.r.states[id] = &state{}
	}
	h.r.statesPeak = peak // as the last tick that saw them left it
	full := heapNow() - before
	h.r.Tick(at(0)) // none of them is a target any more
	left := heapNow() - before
	t.Logf("%d B per container with %d, %d B left", full/peak, peak, left)
	if len(h.r.states) != 0 || left > 32<<10 {
		t.Errorf("%d states, %d bytes left after %d containers went (%d with them); want none, under 32 KiB", len(h.r.states), left, peak, full)
	}
	runtime.KeepAlive(ids)
}

func heapNow() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
