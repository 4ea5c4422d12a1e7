package reconcile

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/config"
)

func TestEventsPeriod(t *testing.T) {
	tests := []struct {
		n    int
		want uint64
	}{
		{0, 1}, {1, 1}, {100, 1}, {101, 2}, {200, 2}, {201, 3}, {999, 10}, {1000, 10}, {5000, 10}, {1 << 20, 10},
	}
	for _, tc := range tests {
		if got := eventsPeriod(tc.n); got != tc.want {
			t.Errorf("eventsPeriod(%d) = %d; want %d", tc.n, got, tc.want)
		}
	}
}

// eventsCounter counts the memory.events reads per cgroup.
type eventsCounter struct {
	*cgroupfs.FS
	reads map[string]int
}

func (c *eventsCounter) ReadEvents(rel string) (cgroupfs.Events, error) {
	c.reads[rel]++
	return c.FS.ReadEvents(rel)
}

// TestTickEventsSpread checks that with more than eventsPerTick containers
// each container's memory.events is read once every eventsPeriod ticks, the
// reads spread over the ticks, an OOM kill is counted and logged once within
// a period, and a new container's counters are taken as a baseline on its
// first tick.
func TestTickEventsSpread(t *testing.T) {
	cfg := config.Default()
	fs := &cgroupfs.FS{Root: t.TempDir(), Version: 2, PlainFiles: true}
	c := &eventsCounter{FS: fs, reads: map[string]int{}}
	d := decide(t, cfg, config.ClassBurstable, buRequest, buLimit)
	const n = 2*eventsPerTick + 50 // period 3
	period := int(eventsPeriod(n))
	if period != 3 {
		t.Fatalf("eventsPeriod(%d) = %d; want 3", n, period)
	}
	var targets []Target
	dirs := map[string]string{}
	for i := range n {
		id := fmt.Sprintf("c%04d", i)
		rel := "/kubepods/burstable/pod-" + id + "/" + id
		dirs[id] = writeV2(t, fs, rel, d, v2Files{current: 300 * mi})
		targets = append(targets, Target{ID: id, Namespace: "ns", Pod: "pod-" + id, Container: "app", Rel: rel, Decision: d})
	}
	l, buf := newLog()
	r := New(c, 2, cfg, func() []Target { return targets },
		func() (int64, int64, error) { return 8 * gi, nodeTotal, nil }, l, 4096)

	r.Tick(at(0))
	for _, tg := range targets {
		if got := c.reads[tg.Rel]; got != 1 {
			t.Fatalf("%s: %d memory.events reads on the first tick; want 1 (the baseline)", tg.ID, got)
		}
	}

	// An OOM kill in one container before the next tick.
	victim := targets[7]
	writeFile(t, dirs[victim.ID], "memory.events", "low 0\nhigh 4\nmax 2\noom 1\noom_kill 1\noom_group_kill 0\n")
	clear(c.reads)
	sum := func() int {
		total := 0
		for _, v := range c.reads {
			total += v
		}
		return total
	}
	for k := 1; k <= 2*period; k++ {
		before := sum()
		r.Tick(at(time.Duration(k) * time.Second))
		if got := sum() - before; got == 0 || got > n/2 {
			t.Errorf("tick %d read %d memory.events files; want some, and well under all %d", k, got, n)
		}
		if k == period {
			// One period: every container read exactly once, the
			// victim's kill counted and logged.
			for _, tg := range targets {
				if got := c.reads[tg.Rel]; got != 1 {
					t.Fatalf("%s: %d memory.events reads in %d ticks; want 1", tg.ID, got, period)
				}
			}
			if got := r.Stats()[victim.ID].Events; got != (cgroupfs.Events{OOMKill: 1, OOM: 1, High: 4, Max: 2}) {
				t.Fatalf("%s: Events = %+v after one period; want the kill counted", victim.ID, got)
			}
		}
	}
	for _, tg := range targets {
		if got := c.reads[tg.Rel]; got != 2 {
			t.Fatalf("%s: %d memory.events reads in %d ticks; want 2", tg.ID, got, 2*period)
		}
	}
	kills := withMsg(entries(t, buf), "container OOM-killed")
	if len(kills) != 1 || kills[0].str("pod") != victim.Pod || kills[0].str("oomKills") != "1" {
		t.Fatalf("OOM logs = %v; want one for %s with oomKills 1", kills, victim.Pod)
	}
	for id, s := range r.Stats() {
		if id != victim.ID && s.Events != (cgroupfs.Events{}) {
			t.Fatalf("%s: Events = %+v; want none", id, s.Events)
		}
	}

	// A container that comes late, with counters from before the
	// reconciler knew it: read on its first tick, whatever its phase, and
	// taken as history.
	id := "late"
	rel := "/kubepods/burstable/pod-late/late"
	dir := writeV2(t, fs, rel, d, v2Files{current: 300 * mi})
	writeFile(t, dir, "memory.events", "low 0\nhigh 9\nmax 9\noom 9\noom_kill 9\noom_group_kill 0\n")
	targets = append(targets, Target{ID: id, Namespace: "ns", Pod: "pod-late", Container: "app", Rel: rel, Decision: d})
	clear(c.reads)
	r.Tick(at(time.Duration(2*period+1) * time.Second))
	if got := c.reads[rel]; got != 1 {
		t.Fatalf("late: %d memory.events reads on its first tick; want 1", got)
	}
	for k := 2; k <= period+1; k++ {
		r.Tick(at(time.Duration(2*period+k) * time.Second))
	}
	if got := r.Stats()[id].Events; got != (cgroupfs.Events{}) {
		t.Fatalf("late: Events = %+v; want none (its counters predate the reconciler)", got)
	}
	if s := severe(entries(t, buf)); len(s) != 1 {
		t.Fatalf("warning-level log entries: %v; want only the OOM kill", s)
	}
}

func TestTickEvents(t *testing.T) {
	events := func(high, max, oom, kill uint64) string {
		return fmt.Sprintf("low 0\nhigh %d\nmax %d\noom %d\noom_kill %d\noom_group_kill 0\n", high, max, oom, kill)
	}
	cfg := config.Default()
	h := newHarness(t, 2, cfg)
	d := decide(t, cfg, config.ClassBurstable, buRequest, buLimit)
	dir := h.add("c1", config.ClassBurstable, d, v2Files{current: 300 * mi})
	steps := []struct {
		name     string
		file     string
		want     cgroupfs.Events
		wantKill []string // oomKills of the "container OOM-killed" logs this tick
	}{
		{name: "first reading is a baseline", file: events(40, 9, 3, 3), want: cgroupfs.Events{}},
		{name: "unchanged", file: events(40, 9, 3, 3), want: cgroupfs.Events{}},
		{name: "two OOM kills", file: events(50, 11, 5, 5), want: cgroupfs.Events{OOMKill: 2, OOM: 2, High: 10, Max: 2}, wantKill: []string{"2"}},
		{name: "no new kill: no log", file: events(51, 11, 5, 5), want: cgroupfs.Events{OOMKill: 2, OOM: 2, High: 11, Max: 2}},
		{name: "one more kill", file: events(51, 12, 6, 6), want: cgroupfs.Events{OOMKill: 3, OOM: 3, High: 11, Max: 3}, wantKill: []string{"1"}},
		{name: "counters restart (new cgroup at the same path)", file: events(1, 0, 1, 1), want: cgroupfs.Events{OOMKill: 4, OOM: 4, High: 12, Max: 3}, wantKill: []string{"1"}},
	}
	for i, s := range steps {
		writeFile(t, dir, "memory.events", s.file)
		h.log.Reset()
		h.r.Tick(at(time.Duration(i) * time.Second))
		if got := h.stats("c1").Events; got != s.want {
			t.Fatalf("step %d %q: Events = %+v; want %+v", i, s.name, got, s.want)
		}
		var kills []string
		for _, e := range withMsg(entries(t, h.log), "container OOM-killed") {
			kills = append(kills, e.str("oomKills"))
			want := map[string]string{"namespace": "ns", "pod": "pod-c1", "container": "app", "class": config.ClassBurstable,
				"limit": strconv.FormatInt(buLimit, 10), "usage": strconv.FormatInt(300*mi, 10), "level": "warning"}
			for k, v := range want {
				if e.str(k) != v {
					t.Errorf("step %d: OOM log %s = %q; want %q (%v)", i, k, e.str(k), v, e)
				}
			}
		}
		if fmt.Sprint(kills) != fmt.Sprint(s.wantKill) {
			t.Fatalf("step %d %q: OOM logs with oomKills %v; want %v", i, s.name, kills, s.wantKill)
		}
	}
}
