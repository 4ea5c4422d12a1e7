package reconcile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/config"
)

// ---- drift ----

func TestTickDriftV2(t *testing.T) {
	cfg := config.Default()
	h := newHarness(t, 2, cfg)
	d := decide(t, cfg, config.ClassBurstable, buRequest, buLimit)
	dir := h.add("c1", config.ClassBurstable, d, v2Files{current: 300 * mi})
	ls := decide(t, cfg, config.ClassLatencySensitive, lsRequest, lsLimit)
	lsDir := h.add("ls", config.ClassLatencySensitive, ls, v2Files{current: 600 * mi})
	const msg = "drift repaired: a value the plugin set was changed; further repairs of it are not logged"
	steps := []struct {
		name       string
		sec        int
		change     func()
		wantLow    string
		wantHigh   string
		wantRepair uint64
		wantLogs   []string // files of the drift logs so far, sorted
	}{
		{name: "first tick: values in place", sec: 0, wantLow: "268435456", wantHigh: "993210368"},
		{name: "memory.low changed: not yet", sec: 1, change: func() { writeFile(t, dir, "memory.low", "0\n") }, wantLow: "0", wantHigh: "993210368"},
		{name: "9s later: not yet", sec: 9, wantLow: "0", wantHigh: "993210368"},
		{name: "DriftInterval after the last check: restored", sec: 10, wantLow: "268435456", wantHigh: "993210368", wantRepair: 1, wantLogs: []string{"memory.low"}},
		{name: "changed again", sec: 11, change: func() { writeFile(t, dir, "memory.low", "4096\n") }, wantLow: "4096", wantHigh: "993210368", wantRepair: 1, wantLogs: []string{"memory.low"}},
		{name: "restored again, not logged again", sec: 20, wantLow: "268435456", wantHigh: "993210368", wantRepair: 2, wantLogs: []string{"memory.low"}},
		{name: "memory.high and memory.low changed", sec: 21, change: func() {
			writeFile(t, dir, "memory.low", "0\n")
			writeFile(t, dir, "memory.high", "max\n")
		}, wantLow: "0", wantHigh: "max", wantRepair: 2, wantLogs: []string{"memory.low"}},
		{name: "both restored, memory.high logged once", sec: 30, wantLow: "268435456", wantHigh: "993210368", wantRepair: 4, wantLogs: []string{"memory.high", "memory.low"}},
		{name: "no change: nothing", sec: 40, wantLow: "268435456", wantHigh: "993210368", wantRepair: 4, wantLogs: []string{"memory.high", "memory.low"}},
	}
	for _, s := range steps {
		if s.change != nil {
			s.change()
		}
		h.r.Tick(at(time.Duration(s.sec) * time.Second))
		low := strings.TrimSpace(readFile(t, dir, "memory.low"))
		high := strings.TrimSpace(readFile(t, dir, "memory.high"))
		st := h.stats("c1")
		if low != s.wantLow || high != s.wantHigh || st.DriftRepairs != s.wantRepair {
			t.Fatalf("%q (t=%ds): memory.low %s, memory.high %s, DriftRepairs %d; want %s, %s, %d",
				s.name, s.sec, low, high, st.DriftRepairs, s.wantLow, s.wantHigh, s.wantRepair)
		}
		var files []string
		for _, e := range withMsg(entries(t, h.log), msg) {
			if e.str("level") != "warning" || e.str("pod") != "pod-c1" {
				t.Errorf("drift log %v; want a warning for pod-c1", e)
			}
			files = append(files, e.str("file"))
		}
		slices.Sort(files)
		if fmt.Sprint(files) != fmt.Sprint(s.wantLogs) {
			t.Fatalf("%q: drift logs for %v; want %v", s.name, files, s.wantLogs)
		}
	}
	// The other container was never changed and never repaired.
	if st := h.stats("ls"); st.DriftRepairs != 0 {
		t.Errorf("ls: DriftRepairs %d; want 0", st.DriftRepairs)
	}
	if got := strings.TrimSpace(readFile(t, lsDir, "memory.min")); got != "536870912" {
		t.Errorf("ls: memory.min = %s; want 536870912", got)
	}
}

// ---- cgroup v1 ----

func writeV1(t *testing.T, fs *cgroupfs.FS, rel string, usage int64, soft, swappiness string) string {
	t.Helper()
	dir := fs.MemoryDir(rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"memory.usage_in_bytes":      strconv.FormatInt(usage, 10) + "\n",
		"memory.oom_control":         "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
		"memory.failcnt":             "0\n",
		"memory.soft_limit_in_bytes": soft + "\n",
		"memory.swappiness":          swappiness + "\n",
		"memory.limit_in_bytes":      "1073741824\n",
	} {
		writeFile(t, dir, k, v)
	}
	return dir
}

func TestTickV1(t *testing.T) {
	cfg := config.Default()
	h := newHarness(t, 1, cfg)
	d := decide(t, cfg, config.ClassLatencySensitive, lsRequest, lsLimit)
	rel := "/kubepods/pod-ls/ls"
	// Above the latency-sensitive watermark: v1 has no memory.reclaim.
	dir := writeV1(t, h.fs, rel, 1000*mi, "536870912", "0")
	if !strings.HasSuffix(dir, filepath.Join("memory", "kubepods", "pod-ls", "ls")) {
		t.Fatalf("v1 dir %s is not under memory/", dir)
	}
	h.targets = []Target{{ID: "ls", Namespace: "ns", Pod: "pod-ls", Container: "app", Rel: rel, Decision: d}}
	h.avail = 0 // node pressure is v2 only
	const msg = "drift repaired: a value the plugin set was changed; further repairs of it are not logged"
	steps := []struct {
		name        string
		sec         int
		change      func()
		wantSoft    string
		wantSwp     string
		wantRepairs uint64
		wantLogs    []string
		wantEvents  cgroupfs.Events
	}{
		{name: "first tick: values in place", sec: 0, wantSoft: "536870912", wantSwp: "0"},
		{name: "soft limit changed: not yet", sec: 1, change: func() { writeFile(t, dir, "memory.soft_limit_in_bytes", "0\n") }, wantSoft: "0", wantSwp: "0"},
		{name: "restored via ApplyV1", sec: 10, wantSoft: "536870912", wantSwp: "0", wantRepairs: 1, wantLogs: []string{"memory.soft_limit_in_bytes"}},
		{name: "both changed, an OOM kill and failures", sec: 11, change: func() {
			writeFile(t, dir, "memory.soft_limit_in_bytes", "9223372036854771712\n")
			writeFile(t, dir, "memory.swappiness", "60\n")
			writeFile(t, dir, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
			writeFile(t, dir, "memory.failcnt", "7\n")
		}, wantSoft: "9223372036854771712", wantSwp: "60", wantRepairs: 1, wantLogs: []string{"memory.soft_limit_in_bytes"},
			wantEvents: cgroupfs.Events{OOMKill: 1, Max: 7}},
		{name: "both restored, soft limit not logged again", sec: 20, wantSoft: "536870912", wantSwp: "0", wantRepairs: 3,
			wantLogs: []string{"memory.soft_limit_in_bytes", "memory.swappiness"}, wantEvents: cgroupfs.Events{OOMKill: 1, Max: 7}},
	}
	for _, s := range steps {
		if s.change != nil {
			s.change()
		}
		h.r.Tick(at(time.Duration(s.sec) * time.Second))
		soft := strings.TrimSpace(readFile(t, dir, "memory.soft_limit_in_bytes"))
		swp := strings.TrimSpace(readFile(t, dir, "memory.swappiness"))
		st := h.stats("ls")
		if soft != s.wantSoft || swp != s.wantSwp || st.DriftRepairs != s.wantRepairs || st.Events != s.wantEvents {
			t.Fatalf("%q: soft limit %s, swappiness %s, DriftRepairs %d, Events %+v; want %s, %s, %d, %+v",
				s.name, soft, swp, st.DriftRepairs, st.Events, s.wantSoft, s.wantSwp, s.wantRepairs, s.wantEvents)
		}
		var files []string
		for _, e := range withMsg(entries(t, h.log), msg) {
			files = append(files, e.str("file"))
		}
		slices.Sort(files)
		if fmt.Sprint(files) != fmt.Sprint(s.wantLogs) {
			t.Fatalf("%q: drift logs for %v; want %v", s.name, files, s.wantLogs)
		}
		if st.Usage != 1000*mi || st.High != 0 || len(st.Reclaimed) != 0 {
			t.Fatalf("%q: Usage %d High %d Reclaimed %v; want %d 0 none", s.name, st.Usage, st.High, st.Reclaimed, 1000*mi)
		}
	}
	if len(h.k.calls) != 0 {
		t.Fatalf("v1: Reclaim calls %v; want none", h.k.calls)
	}
	if _, err := os.Stat(filepath.Join(dir, "memory.reclaim")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("v1: memory.reclaim exists (%v)", err)
	}
	kills := withMsg(entries(t, h.log), "container OOM-killed")
	if len(kills) != 1 || kills[0].str("oomKills") != "1" || kills[0].str("class") != config.ClassLatencySensitive {
		t.Fatalf("OOM logs %v; want one with oomKills 1", kills)
	}
	h.noSevereExcept("drift repaired: a value the plugin set was changed; further repairs of it are not logged", "container OOM-killed")
}

// TestDriftV1MemswFollowsLimitInForce: drift repair computes
// memory.memsw.limit_in_bytes from the limit the cgroup holds, not the one
// the decision was made with (issue 13: a limit changed behind the plugin,
// then a stale Synchronize).
func TestDriftV1MemswFollowsLimitInForce(t *testing.T) {
	cfg := config.Default()
	h := newHarness(t, 1, cfg)
	d := decide(t, cfg, config.ClassLatencySensitive, lsRequest, lsLimit) // swap none: memsw = limit
	rel := "/kubepods/pod-ls/ls"
	dir := writeV1(t, h.fs, rel, 100*mi, strconv.FormatInt(lsRequest, 10), "0")
	for _, limit := range []int64{2 * gi, 512 * mi} {
		writeFile(t, dir, "memory.limit_in_bytes", strconv.FormatInt(limit, 10)+"\n")
		writeFile(t, dir, "memory.memsw.limit_in_bytes", "9223372036854771712\n")
		h.targets = []Target{{ID: "ls", Namespace: "ns", Pod: "pod-ls", Container: "app", Rel: rel, Decision: d}}
		h.r = New(h.k, 1, cfg, h.r.source, h.r.meminfo, h.r.log, 4096)
		h.r.Tick(at(0))
		if got := readFile(t, dir, "memory.memsw.limit_in_bytes"); got != strconv.FormatInt(limit, 10) {
			t.Errorf("limit in force %d (decided with %d): memsw = %s; want the limit in force", limit, lsLimit, got)
		}
	}
}
