// Package hook measures what nri-memqos adds to the runtime's container
// events: the latency of CreateContainer, UpdateContainer, StopContainer and
// RemoveContainer round trips through NRI's real runtime side
// (github.com/containerd/nri/pkg/adaptation) with no plugin, with a no-op
// plugin (test/bench/noop, subscribed to the same events), with the same
// plugin run with -adjust (the floor: it does no work either but returns a
// constant adjustment from CreateContainer and a constant update from
// UpdateContainer, shaped like nri-memqos' answers) and with nri-memqos on a
// fake cgroup v2 tree, sequentially and with 64 concurrent callers, at
// several counts of live containers (100, 1 000 and 10 000 by default); the
// no-op plugin's and nri-memqos' resident memory at each count and after
// all containers went; and the bytes nri-memqos writes to its state directory
// per event.
//
// Each setup is filled once, untimed, to a live count N (ascending: the
// next N adds to the containers of the previous one); then it churns: each
// step creates a container (CreateContainer timed; PostCreateContainer and
// StartContainer untimed), takes the oldest live container, resizes it
// (UpdateContainer timed, PostUpdateContainer untimed), stops it and
// removes it (StopContainer and RemoveContainer timed each). So N containers
// stay alive throughout (up to N+64 while 64 callers are in the middle of
// their steps). Pods of ten containers come and go with their containers.
// The setups take turns in chunks of 1 000 steps, in an order that rotates,
// so slow phases of a shared machine hit them alike.
//
// TestHookCost runs only when BENCH_OUT names an output directory (make
// bench); it writes BENCH_OUT/hook.json (see Report) and logs a summary.
// Knobs, all optional:
//
//   - BENCH_ROUNDS (default 3): churn phases per N and mode; the figures are
//     medians over the rounds.
//   - BENCH_SIZES (default 100,1000,10000): the live container counts, comma
//     separated, e.g. 100,1000 for a quicker trial.
//   - BENCH_STEPS (default 2000): churn steps (creations) per setup, round,
//     N and mode.
//   - BENCH_PHASE_BUDGET (default 15s): callers of a setup's churn phase
//     (one round, N and mode) start no new step after this much time even
//     when they ran fewer steps (the steps in flight finish: up to 64 in the
//     concurrent mode), so a slow plugin cannot stretch the benchmark
//     without bound; Result.Truncated marks such a phase and Result.Count
//     says how many events it measured.
//   - BENCH_MEMQOS_FLAGS: extra flags for nri-memqos' command line (space
//     separated; a repeated flag wins), for experiments such as
//     "-state-dir=".
//
// nri-memqos serves its metrics on a free 127.0.0.1 port; the benchmark
// reads its counter nri_memqos_state_bytes_written_total there before and
// after each of its phases (fill, churn, drain) and reports the bytes
// written per event; without the counter it records -1 and says so. Those
// scrapes gather the plugin's per-container series and so weigh on its RSS:
// RSSAt.AfterFillKiB is read before the first scrape at each N, PeakKiB
// includes them.
//
// nri-memqos' targets are ratios over the no-op plugin (Report.Ratios);
// Report.FloorRatios (noop-adjust over noop) show how much of that any
// plugin that adjusts something pays, Report.OverFloorRatios (nri-memqos
// over noop-adjust) what nri-memqos adds beyond that floor. Only nri-memqos
// touches the fake cgroup tree: the runtime side returns the floor's
// adjustments and updates to the benchmark, which applies them to its
// in-memory view of the containers only (nritest.Adjust, Store.ApplyUpdate),
// as it does nri-memqos'.
//
// With the defaults and a plugin whose events cost about what the no-op
// plugin's do, the test takes about 4 minutes on a 2-CPU machine, 1 to 1.5
// of them per plugin setup. A plugin that is slow at 10 000 containers
// mostly adds to the untimed fill and drain (the churn phases are capped by
// BENCH_PHASE_BUDGET): one that rewrites its whole state file on every
// event (about 100 ms per churn step at 10 000 containers) takes 11 to 14
// minutes, about 4 of them filling to 10 000 and 4 to 5 draining.
package hook

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	"github.com/sirupsen/logrus"

	"nri-memqos/test/internal/cgtest"
	"nri-memqos/test/internal/gobuild"
	"nri-memqos/test/internal/logbuf"
	"nri-memqos/test/internal/nritest"
	"nri-memqos/test/internal/proc"
)

const (
	ctrsPerPod = 10
	// concurrency is the number of callers in the concurrent mode.
	concurrency = 64
	// chunkSteps is how many churn steps a setup runs before the next
	// setup takes its turn.
	chunkSteps = 1000
	// warmup churn steps run once per setup at the first N, untimed.
	warmup = 200
	// settle is how long the plugins are left alone after the last
	// removals before their RSS is read again.
	settle = 2 * time.Second

	labelClass = "memqos.nri.io/class"
	annRequest = "memqos.nri.io/memory-request"
	mi         = int64(1) << 20
	// limit is every container's memory limit at creation, resizeLimit the
	// one of the in-place resize (UpdateContainer) of a churn step.
	limit       = 512 * mi
	resizeLimit = 1024 * mi

	// stateCounter is the plugin's counter of bytes written to its state
	// directory (journal appends and compactions).
	stateCounter = "nri_memqos_state_bytes_written_total"
	// NRI container events relayed per churn step (create, post-create,
	// start, update, post-update, stop, remove), per container filled
	// (create, post-create, start) and per container drained (stop,
	// remove).
	eventsPerStep  = 7
	eventsPerFill  = 3
	eventsPerDrain = 2

	// Targets from the issue.
	targetP99Ratio    = 1.05
	targetP50Ratio    = 1.02
	targetRSS1000KiB  = 16 * 1024
	targetRSS10000KiB = 24 * 1024
	targetReturnPc    = 10.0
	// targetStateGrowth: bytes per event at the largest N over those at
	// the smallest, at most (O(1) in N, with room for noise and for
	// compactions that fall unevenly into the phases).
	targetStateGrowth = 2.0

	modeSequential  = "sequential"
	setupNone       = "none"
	setupNoop       = "noop"
	setupNoopAdjust = "noop-adjust" // the no-op plugin with -adjust: the floor
	setupMemqos     = "nri-memqos"
)

// The timed events, in the order of a churn step.
const (
	evCreate = iota
	evUpdate
	evStop
	evRemove
	numEvents
)

var (
	eventNames     = [numEvents]string{"CreateContainer", "UpdateContainer", "StopContainer", "RemoveContainer"}
	modeConcurrent = fmt.Sprintf("concurrent-%d", concurrency)
	setups         = []string{setupNone, setupNoop, setupNoopAdjust, setupMemqos}
	modes          = []string{modeSequential, modeConcurrent}
	classes        = []string{"latency-sensitive", "burstable", "best-effort"}
	// kubeletUnified is what kubelet may already have put in a container's
	// unified map on cgroup v2 (at creation and in a resize).
	kubeletUnified = map[string]string{"cpu.weight": "79", "memory.oom.group": "1"}
)

// Result is the latency of one timed event of one setup and mode at one
// live container count, as the runtime sees it (time spent in the
// Adaptation's method).
type Result struct {
	// Live is the number of live containers N while the event was measured.
	Live int `json:"live"`
	// Mode is "sequential" (one caller) or "concurrent-64" (64 callers).
	Mode string `json:"mode"`
	// Setup is "none" (no plugin connected), "noop" (test/bench/noop),
	// "noop-adjust" (test/bench/noop -adjust) or "nri-memqos".
	Setup string `json:"setup"`
	// Event is "CreateContainer", "UpdateContainer", "StopContainer" or
	// "RemoveContainer".
	Event string `json:"event"`
	// Round is the round of a single phase (1-based); 0 in Report.Results,
	// where each figure is the median over the rounds of the per-round
	// figure.
	Round int `json:"round,omitempty"`
	// Count is the number of calls measured (in Report.Results: over all
	// rounds).
	Count int `json:"count"`
	// P50Ns, P99Ns and MeanNs are the median, 99th percentile (nearest rank)
	// and mean latency of one call, in nanoseconds.
	P50Ns  int64 `json:"p50_ns"`
	P99Ns  int64 `json:"p99_ns"`
	MeanNs int64 `json:"mean_ns"`
	// MaxNs is the slowest call (in Report.Results: of all rounds).
	MaxNs int64 `json:"max_ns"`
	// Truncated: the phase stopped at BENCH_PHASE_BUDGET before it ran
	// Report.Steps steps (in Report.Results: in at least one round).
	Truncated bool `json:"truncated,omitempty"`
}

// Ratio compares two setups for one event, mode and N: the median over the
// rounds of one setup's figure over the median of the other's (which two:
// see the Report field that holds it); 0 when the latter is 0.
type Ratio struct {
	Live  int     `json:"live"`
	Mode  string  `json:"mode"`
	Event string  `json:"event"`
	P50   float64 `json:"p50_ratio"`
	P99   float64 `json:"p99_ratio"`
}

// RSSAt is a plugin's resident memory (VmRSS of /proc/<pid>/status) with
// Live containers alive.
type RSSAt struct {
	Live int `json:"live"`
	// AfterFillKiB is read right after the untimed fill to Live
	// containers, before the first scrape of nri-memqos' /metrics with
	// Live containers.
	AfterFillKiB int64 `json:"after_fill_kib"`
	// PeakKiB is the largest reading with Live containers: after the fill
	// and after each of the plugin's churn chunks. For nri-memqos these
	// include the effect of the scrapes of its /metrics (for the state
	// counter, before and after each churn phase), which gather its
	// per-container series.
	PeakKiB int64 `json:"peak_kib"`
}

// PluginRSS is one plugin process's resident memory over the benchmark;
// one process serves all the phases of its setup.
type PluginRSS struct {
	// Setup is "noop" or "nri-memqos".
	Setup string `json:"setup"`
	// StartKiB: after it synchronized with the runtime, before any
	// container.
	StartKiB int64 `json:"start_kib"`
	// At: per live container count, ascending.
	At []RSSAt `json:"at"`
	// RemovedKiB: right after all containers were removed at the end;
	// SettledKiB the same after a further settle (2 s without events).
	RemovedKiB int64 `json:"removed_kib"`
	SettledKiB int64 `json:"settled_kib"`
	// ReturnedPct is SettledKiB relative to StartKiB, in percent
	// (+10 is 10% above the start).
	ReturnedPct float64 `json:"returned_pct"`
	// HWMKiB is the kernel's high-water mark of RSS (VmHWM) at the end.
	HWMKiB int64 `json:"hwm_kib"`
	// StartFileKiB and SettledFileKiB are the file-backed part of the
	// RSS (RssFile: the binary's own pages) at the start and at the end.
	StartFileKiB   int64 `json:"start_file_kib"`
	SettledFileKiB int64 `json:"settled_file_kib"`
}

// StatePhase is what nri-memqos wrote to its state directory during one
// phase: the change of its counter nri_memqos_state_bytes_written_total.
type StatePhase struct {
	Live int `json:"live"`
	// Phase is "fill" (untimed creations up to Live), "sequential" or
	// "concurrent-64" (a churn phase) or "drain" (the final removals).
	Phase string `json:"phase"`
	Round int    `json:"round,omitempty"`
	// Steps counts the containers created (fill), the churn steps or the
	// containers removed (drain); Events the NRI container events relayed
	// to the plugin meanwhile (7 per churn step, 3 per container filled,
	// 2 per container drained).
	Steps  int `json:"steps"`
	Events int `json:"events"`
	// Bytes is the counter's increase; -1 when the plugin did not expose
	// the counter.
	Bytes int64 `json:"bytes"`
	// ScrapeNs is how long the scrape after the phase took: the plugin
	// gathers all its series (per container too), then serves the one
	// family asked for.
	ScrapeNs int64 `json:"scrape_ns"`
}

// StatePerN is the state-file cost of all churn phases at one N together
// (all rounds and modes): the measure of "O(1) in N".
type StatePerN struct {
	Live   int   `json:"live"`
	Events int   `json:"events"`
	Bytes  int64 `json:"bytes"`
	// BytesPerEvent is Bytes / Events; -1 when the counter is absent.
	BytesPerEvent float64 `json:"bytes_per_event"`
}

// StateWrites is the state-directory write volume of nri-memqos.
type StateWrites struct {
	// Counter is the Prometheus counter read from the plugin's /metrics
	// before and after every phase.
	Counter string `json:"counter"`
	// Available tells whether the plugin exposed it; when not, every
	// Bytes and BytesPerEvent is -1.
	Available bool         `json:"available"`
	Phases    []StatePhase `json:"phases"`
	PerN      []StatePerN  `json:"per_n"`
}

// Target is one target of the issue and what this run measured for it.
type Target struct {
	// Name says what is measured, e.g. "CreateContainer p99 / noop,
	// sequential, 1000 live".
	Name string `json:"name"`
	// Value is the measured value, Limit the most the target allows, both
	// in Unit ("ratio", "MiB", "%").
	Value float64 `json:"value"`
	Limit float64 `json:"limit"`
	Unit  string  `json:"unit"`
	// Status is "met", "missed" or "not measured" (the N was not run, or
	// the plugin does not expose what is needed).
	Status string `json:"status"`
}

// Report is the content of BENCH_OUT/hook.json.
type Report struct {
	Date      string `json:"date"`
	GoVersion string `json:"go_version"`
	NumCPU    int    `json:"num_cpu"`
	Rounds    int    `json:"rounds"`
	// Sizes are the live container counts N, ascending.
	Sizes []int `json:"sizes"`
	// Steps is the number of churn steps per setup, round, N and mode
	// (each step one event of each kind); PhaseBudgetNs caps the time of
	// one such phase.
	Steps         int   `json:"steps"`
	PhaseBudgetNs int64 `json:"phase_budget_ns"`
	Concurrency   int   `json:"concurrency"`
	PerPod        int   `json:"containers_per_pod"`
	// Events are the timed events, in the order of a churn step.
	Events []string `json:"events"`
	// RequestBytes is the pod request annotation every pod carries, sized so
	// the latency-sensitive containers together stay under the default node
	// protection cap (no cap warnings).
	RequestBytes int64  `json:"request_bytes"`
	TmpDir       string `json:"tmp_dir"`
	// MemqosFlags are the extra flags of BENCH_MEMQOS_FLAGS, if any.
	MemqosFlags string `json:"memqos_extra_flags,omitempty"`
	// Results are the medians over the rounds, per N, mode, setup and
	// event.
	Results []Result `json:"results"`
	// Runs are the single phases' figures, in the order they ran.
	Runs []Result `json:"runs"`
	// Ratios are nri-memqos over noop per N, mode and event: the issue's
	// targets.
	Ratios []Ratio `json:"ratios"`
	// FloorRatios are noop-adjust over noop per N, mode and event: what
	// returning an adjustment (CreateContainer) or an update
	// (UpdateContainer) shaped like nri-memqos' costs a plugin that does no
	// work; Stop and Remove return nothing in both, so theirs are noise.
	// Absent in hook.json files from before the floor was measured.
	FloorRatios []Ratio `json:"floor_ratios,omitempty"`
	// OverFloorRatios are nri-memqos over noop-adjust per N, mode and
	// event: what nri-memqos adds beyond the floor. Absent like
	// FloorRatios.
	OverFloorRatios []Ratio `json:"over_floor_ratios,omitempty"`
	// RSS is the resident memory of the noop plugin and of nri-memqos.
	RSS   []PluginRSS `json:"rss"`
	State StateWrites `json:"state_writes"`
	// Targets are the targets, one per N, mode and event for the
	// latencies.
	Targets []Target `json:"targets"`
	// PluginLogLines counts the lines nri-memqos logged (-log-level warn).
	PluginLogLines int `json:"plugin_log_lines"`
	// Reconnects counts, per setup, the plugin's synchronizations after its
	// first: each means the runtime dropped the plugin (for instance a
	// request over NRI's 2 s plugin request timeout) and the numbers of that
	// setup after it are not a plugin's.
	Reconnects map[string]int `json:"plugin_reconnects"`
	// DurationNs is how long the test took.
	DurationNs int64 `json:"duration_ns"`
}

// knobs are the environment's settings (see the package comment).
type knobs struct {
	rounds, steps int
	sizes         []int
	budget        time.Duration
}

func readKnobs(t *testing.T) knobs {
	t.Helper()
	k := knobs{rounds: 3, steps: 2000, sizes: []int{100, 1000, 10000}, budget: 15 * time.Second}
	positive := func(name string, dst *int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				t.Fatalf("%s=%q: want a positive integer", name, v)
			}
			*dst = n
		}
	}
	positive("BENCH_ROUNDS", &k.rounds)
	positive("BENCH_STEPS", &k.steps)
	if v := os.Getenv("BENCH_SIZES"); v != "" {
		k.sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < ctrsPerPod {
				t.Fatalf("BENCH_SIZES=%q: want live container counts of at least %d, comma separated", v, ctrsPerPod)
			}
			k.sizes = append(k.sizes, n)
		}
		slices.Sort(k.sizes)
		k.sizes = slices.Compact(k.sizes)
	}
	if v := os.Getenv("BENCH_PHASE_BUDGET"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("BENCH_PHASE_BUDGET=%q: want a positive duration", v)
		}
		k.budget = d
	}
	return k
}

func TestHookCost(t *testing.T) {
	out := os.Getenv("BENCH_OUT")
	if out == "" {
		t.Skip("BENCH_OUT not set (make bench sets it)")
	}
	k := readKnobs(t)
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	began := time.Now()

	bin := t.TempDir()
	memqosBin, err := gobuild.Binary(bin, "nri-memqos", "nri-memqos/plugin")
	if err != nil {
		t.Fatal(err)
	}
	noopBin, err := gobuild.Binary(bin, "noop", "nri-memqos/test/bench/noop")
	if err != nil {
		t.Fatal(err)
	}

	// Everything the plugin touches lives on tmpfs: the fake cgroup tree,
	// its state directory, the sockets.
	parent := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		parent = "/dev/shm"
	}
	base, err := os.MkdirTemp(parent, "nrib")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(base); err != nil {
			t.Error(err)
		}
	})
	cgRoot := filepath.Join(base, "cg")
	// kubepods as kubelet makes it: with the memory controller's files
	// (memory.current tells the plugin's probe where to look).
	for _, l := range []string{"kubepods", "kubepods/burstable"} {
		cgtest.ZeroProtection(t, filepath.Join(cgRoot, l))
		for f, v := range map[string]string{"memory.current": "0", "memory.high": "max", "memory.swap.max": "max", "memory.oom.group": "0"} {
			cgtest.Write(t, filepath.Join(cgRoot, l, f), v+"\n")
		}
	}
	cfgPath := filepath.Join(base, "memqos.yaml")
	writeConfig(t, cfgPath, cgRoot)
	request := requestSize(t, k.sizes[len(k.sizes)-1])
	metricsAddr := proc.FreeAddr(t)

	// The adaptation logs through logrus' standard logger.
	rtLog := logbuf.Capped(64 << 10)
	logrus.SetOutput(rtLog)
	logrus.SetLevel(logrus.WarnLevel)

	b := &bench{cgRoot: cgRoot, request: request}
	env := map[string]*setup{}
	env[setupNone] = startSetup(t, b, base, setupNone, nil)
	env[setupNoop] = startSetup(t, b, base, setupNoop, []string{noopBin, "-name", "noop", "-idx", "10"})
	env[setupNoopAdjust] = startSetup(t, b, base, setupNoopAdjust, []string{noopBin, "-adjust", "-name", "noop-adjust", "-idx", "11"})
	env[setupMemqos] = startSetup(t, b, base, setupMemqos, append([]string{memqosBin,
		"-config", cfgPath, "-state-dir", filepath.Join(base, "state"),
		"-metrics-address", metricsAddr, "-log-level", "warn"}, strings.Fields(os.Getenv("BENCH_MEMQOS_FLAGS"))...))
	memqos, noop := env[setupMemqos], env[setupNoop]
	rep := Report{
		Date: time.Now().UTC().Format(time.RFC3339), GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(),
		Rounds: k.rounds, Sizes: k.sizes, Steps: k.steps, PhaseBudgetNs: k.budget.Nanoseconds(),
		Concurrency: concurrency, PerPod: ctrsPerPod, Events: eventNames[:],
		RequestBytes: request, TmpDir: base, MemqosFlags: os.Getenv("BENCH_MEMQOS_FLAGS"),
	}
	rss := map[string]*PluginRSS{}
	for _, s := range []*setup{noop, memqos} {
		rss[s.name] = &PluginRSS{Setup: s.name, StartKiB: s.status(t, "VmRSS"), StartFileKiB: s.status(t, "RssFile")}
	}
	t.Logf("nri-memqos pid %d synchronized: VmRSS %d KiB; noop VmRSS %d KiB; metrics on %s",
		memqos.proc.Pid(), rss[setupMemqos].StartKiB, rss[setupNoop].StartKiB, metricsAddr)
	counter := &stateCounterReader{t: t, addr: metricsAddr}
	rep.State = StateWrites{Counter: stateCounter, Available: true}
	// statePhase brackets fn with two reads of the state counter.
	statePhase := func(live int, phase string, round int, fn func() (steps, events int)) {
		before := counter.read()
		steps, events := fn()
		t0 := time.Now()
		after := counter.read()
		scrapeNs := time.Since(t0).Nanoseconds()
		bytes := int64(-1)
		if before >= 0 && after >= 0 {
			bytes = after - before
		} else {
			rep.State.Available = false
		}
		rep.State.Phases = append(rep.State.Phases, StatePhase{Live: live, Phase: phase, Round: round, Steps: steps, Events: events, Bytes: bytes, ScrapeNs: scrapeNs})
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runs := map[string][]Result{}
	for ni, n := range k.sizes {
		// Fill every setup to n, untimed.
		for j := range setups {
			s := env[setups[(j+ni)%len(setups)]]
			t0 := time.Now()
			fill := func() (int, int) {
				added, err := s.fill(ctx, n)
				if err != nil {
					t.Fatalf("%s: filling to %d: %v", s.name, n, err)
				}
				// Before the state counter's scrape at n.
				if r := rss[s.name]; r != nil {
					kib := s.status(t, "VmRSS")
					r.At = append(r.At, RSSAt{Live: n, AfterFillKiB: kib, PeakKiB: kib})
				}
				return added, added * eventsPerFill
			}
			if s == memqos {
				statePhase(n, "fill", 0, fill)
			} else {
				fill()
			}
			t.Logf("%-11s filled to %d live containers in %v", s.name, n, time.Since(t0).Round(time.Millisecond))
		}
		b.checkTree(t, memqos)
		if ni == 0 {
			for _, name := range setups {
				if _, err := env[name].churn(ctx, warmup, 1, time.Time{}, nil); err != nil {
					t.Fatalf("%s: warmup: %v", name, err)
				}
			}
		}

		for r := 1; r <= k.rounds; r++ {
			for m, mode := range modes {
				conc := 1
				if mode == modeConcurrent {
					conc = concurrency
				}
				ph := map[string]*phase{}
				for _, name := range setups {
					ph[name] = &phase{}
				}
				statePhase(n, mode, r, func() (int, int) {
					for c := 0; c*chunkSteps < k.steps; c++ {
						// Rotate the order of the setups from chunk to
						// chunk, so slow phases of this shared machine
						// hit them alike.
						for j := range setups {
							s := env[setups[(j+c+r+m+ni)%len(setups)]]
							p := ph[s.name]
							left := min(chunkSteps, k.steps-c*chunkSteps)
							if p.elapsed >= k.budget {
								p.truncated = true
								continue
							}
							t0 := time.Now()
							done, err := s.churn(ctx, left, conc, t0.Add(k.budget-p.elapsed), &p.lat)
							p.elapsed += time.Since(t0)
							p.steps += done
							if err != nil {
								t.Fatalf("%s: round %d, %d live, %s: %v", s.name, r, n, mode, err)
							}
							if done < left {
								p.truncated = true
							}
							if rr := rss[s.name]; rr != nil {
								at := &rr.At[len(rr.At)-1]
								at.PeakKiB = max(at.PeakKiB, s.status(t, "VmRSS"))
							}
						}
					}
					return ph[setupMemqos].steps, ph[setupMemqos].steps * eventsPerStep
				})
				b.checkTree(t, memqos)
				var line strings.Builder
				for _, name := range setups {
					p := ph[name]
					fmt.Fprintf(&line, "\n  %-11s %5d steps in %6v%s:", name, p.steps, p.elapsed.Round(time.Millisecond), map[bool]string{true: " (budget)"}[p.truncated])
					for e := range numEvents {
						res := summarize(p.lat.d[e])
						res.Live, res.Mode, res.Setup, res.Event, res.Round, res.Truncated = n, mode, name, eventNames[e], r, p.truncated
						key := resultKey(n, mode, name, eventNames[e])
						runs[key] = append(runs[key], res)
						rep.Runs = append(rep.Runs, res)
						fmt.Fprintf(&line, " %s p50 %s p99 %s;", strings.TrimSuffix(eventNames[e], "Container"), us(res.P50Ns), us(res.P99Ns))
					}
				}
				t.Logf("round %d, %d live, %s:%s", r, n, mode, line.String())
			}
		}
	}

	// Drain every setup, untimed.
	maxN := k.sizes[len(k.sizes)-1]
	for _, name := range setups {
		s := env[name]
		t0 := time.Now()
		drain := func() (int, int) {
			removed, err := s.drain(ctx)
			if err != nil {
				t.Fatalf("%s: removing the last containers: %v", s.name, err)
			}
			return removed, removed * eventsPerDrain
		}
		if s == memqos {
			statePhase(maxN, "drain", 0, drain)
		} else {
			drain()
		}
		if r := rss[name]; r != nil {
			r.RemovedKiB = s.status(t, "VmRSS")
		}
		t.Logf("%-11s drained in %v", name, time.Since(t0).Round(time.Millisecond))
	}
	b.checkTree(t, memqos)
	if fs, _ := os.ReadDir(filepath.Join(cgRoot, "kubepods", "burstable")); slices.ContainsFunc(fs, os.DirEntry.IsDir) {
		t.Errorf("kubepods/burstable holds %d entries after the drain: pod directories left behind", len(fs))
	}
	time.Sleep(settle)
	for _, s := range []*setup{noop, memqos} {
		r := rss[s.name]
		r.SettledKiB = s.status(t, "VmRSS")
		r.HWMKiB = s.status(t, "VmHWM")
		r.SettledFileKiB = s.status(t, "RssFile")
		r.ReturnedPct = math.Round(1000*(float64(r.SettledKiB)/float64(r.StartKiB)-1)) / 10
		rep.RSS = append(rep.RSS, *r)
	}

	// Medians, ratios, targets.
	for _, n := range k.sizes {
		for _, mode := range modes {
			for _, name := range setups {
				for _, ev := range eventNames {
					rep.Results = append(rep.Results, medianOf(runs[resultKey(n, mode, name, ev)]))
				}
			}
		}
	}
	get := func(n int, mode, name, ev string) Result {
		for _, r := range rep.Results {
			if r.Live == n && r.Mode == mode && r.Setup == name && r.Event == ev {
				return r
			}
		}
		return Result{}
	}
	ratio := func(a, b int64) float64 {
		if b == 0 {
			return 0
		}
		return math.Round(float64(a)/float64(b)*1000) / 1000
	}
	over := func(n int, mode, ev, a, b string) Ratio {
		x, y := get(n, mode, a, ev), get(n, mode, b, ev)
		return Ratio{Live: n, Mode: mode, Event: ev, P50: ratio(x.P50Ns, y.P50Ns), P99: ratio(x.P99Ns, y.P99Ns)}
	}
	for _, n := range k.sizes {
		for _, mode := range modes {
			for _, ev := range eventNames {
				rep.FloorRatios = append(rep.FloorRatios, over(n, mode, ev, setupNoopAdjust, setupNoop))
				rep.OverFloorRatios = append(rep.OverFloorRatios, over(n, mode, ev, setupMemqos, setupNoopAdjust))
				rt := over(n, mode, ev, setupMemqos, setupNoop)
				rep.Ratios = append(rep.Ratios, rt)
				rep.Targets = append(rep.Targets, target(fmt.Sprintf("%s p99 / noop, %s, %d live", ev, mode, n), rt.P99, targetP99Ratio, "ratio"))
				if ev == eventNames[evCreate] {
					rep.Targets = append(rep.Targets, target(fmt.Sprintf("%s p50 / noop, %s, %d live", ev, mode, n), rt.P50, targetP50Ratio, "ratio"))
				}
			}
		}
	}
	mq := rss[setupMemqos]
	for _, want := range []struct {
		live     int
		limitKiB int64
	}{{1000, targetRSS1000KiB}, {10000, targetRSS10000KiB}} {
		name := fmt.Sprintf("nri-memqos RSS with %d live containers", want.live)
		tg := Target{Name: name, Limit: float64(want.limitKiB) / 1024, Unit: "MiB", Status: "not measured"}
		for _, at := range mq.At {
			if at.Live == want.live {
				tg = target(name, math.Round(float64(at.PeakKiB)/1024*10)/10, float64(want.limitKiB)/1024, "MiB")
			}
		}
		rep.Targets = append(rep.Targets, tg)
	}
	rep.Targets = append(rep.Targets, target("nri-memqos RSS after all containers were removed, over the start", mq.ReturnedPct, targetReturnPc, "%"))
	rep.State.PerN = statePerN(rep.State.Phases, k.sizes)
	growth := Target{Name: "state bytes per event at the largest N / at the smallest N", Limit: targetStateGrowth, Unit: "ratio", Status: "not measured"}
	if first, last := rep.State.PerN[0], rep.State.PerN[len(rep.State.PerN)-1]; len(k.sizes) > 1 && first.BytesPerEvent > 0 && last.BytesPerEvent >= 0 {
		growth = target(growth.Name, math.Round(last.BytesPerEvent/first.BytesPerEvent*1000)/1000, targetStateGrowth, "ratio")
	}
	rep.Targets = append(rep.Targets, growth)

	rep.PluginLogLines = memqos.log.Lines()
	rep.Reconnects = map[string]int{}
	for _, name := range setups {
		if env[name].proc != nil {
			// Every synchronization after the first is a reconnection.
			rep.Reconnects[name] = max(0, env[name].rt.Syncs()-1)
		}
	}
	rep.DurationNs = time.Since(began).Nanoseconds()

	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(out, "hook.json")
	if err := os.WriteFile(file, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Log(summary(&rep, memqos.log, file))
	for _, name := range setups {
		if n := rep.Reconnects[name]; n > 0 {
			t.Errorf("%s: the runtime dropped the plugin %d time(s) (see the runtime log): its numbers after that are not a plugin's", name, n)
		}
	}
	if rtLog.Lines() > 0 {
		t.Logf("runtime (adaptation) log, %d lines; first:\n%s", rtLog.Lines(), indent(firstLines(rtLog.String(), 10)))
	}
}

// summary is the test's closing log: the medians and ratios per N (of
// nri-memqos over noop, of the floor noop-adjust over noop, of nri-memqos
// over the floor), the targets, the memory and state figures.
func summary(rep *Report, pluginLog *logbuf.Buffer, file string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "hook cost: churn at %v live containers, %d steps per setup, round, N and mode, %d rounds (medians of per-round values), %d CPUs, request %d Mi\n",
		rep.Sizes, rep.Steps, rep.Rounds, rep.NumCPU, rep.RequestBytes/mi)
	fmt.Fprintf(&sb, "  ratios p50/p99: memqos/noop the targets; floor/noop what noop-adjust (no work, constant adjustment and update) costs over noop; memqos/floor what nri-memqos adds beyond it\n")
	for _, n := range rep.Sizes {
		fmt.Fprintf(&sb, "  %d live:\n  %-13s %-16s", n, "mode", "event")
		for _, name := range setups {
			fmt.Fprintf(&sb, " %21s", name+" p50/p99")
		}
		fmt.Fprintf(&sb, " %13s %13s %13s\n", "memqos/noop", "floor/noop", "memqos/floor")
		for _, mode := range modes {
			for _, ev := range eventNames {
				fmt.Fprintf(&sb, "  %-13s %-16s", mode, ev)
				for _, name := range setups {
					for _, r := range rep.Results {
						if r.Live == n && r.Mode == mode && r.Setup == name && r.Event == ev {
							fmt.Fprintf(&sb, " %10s/%10s", us(r.P50Ns), us(r.P99Ns))
						}
					}
				}
				for _, rs := range [][]Ratio{rep.Ratios, rep.FloorRatios, rep.OverFloorRatios} {
					for _, r := range rs {
						if r.Live == n && r.Mode == mode && r.Event == ev {
							fmt.Fprintf(&sb, " %6.3f/%6.3f", r.P50, r.P99)
						}
					}
				}
				sb.WriteString("\n")
			}
		}
	}
	for _, r := range rep.RSS {
		fmt.Fprintf(&sb, "  %s RSS: start %d KiB;", r.Setup, r.StartKiB)
		for _, at := range r.At {
			fmt.Fprintf(&sb, " %d live: %d KiB (after fill %d);", at.Live, at.PeakKiB, at.AfterFillKiB)
		}
		fmt.Fprintf(&sb, " removed %d KiB, after %v %d KiB (%+.1f%%), VmHWM %d KiB\n", r.RemovedKiB, settle, r.SettledKiB, r.ReturnedPct, r.HWMKiB)
	}
	if rep.State.Available {
		fmt.Fprintf(&sb, "  nri-memqos state bytes written per event (churn):")
		for _, p := range rep.State.PerN {
			fmt.Fprintf(&sb, " %d live: %.0f;", p.Live, p.BytesPerEvent)
		}
		for _, p := range rep.State.Phases {
			if p.Phase == "fill" || p.Phase == "drain" {
				fmt.Fprintf(&sb, " %s to/from %d: %.0f;", p.Phase, p.Live, float64(p.Bytes)/float64(max(p.Events, 1)))
			}
		}
		sb.WriteString("\n")
	}
	if len(rep.State.Phases) > 0 {
		fmt.Fprintf(&sb, "  scrape of nri-memqos' /metrics, slowest:")
		for _, n := range rep.Sizes {
			var slowest int64
			for _, p := range rep.State.Phases {
				if p.Live == n {
					slowest = max(slowest, p.ScrapeNs)
				}
			}
			fmt.Fprintf(&sb, " %d live %v;", n, time.Duration(slowest).Round(time.Millisecond))
		}
		sb.WriteString("\n")
	} else {
		fmt.Fprintf(&sb, "  nri-memqos state bytes per event: not measured, the plugin's /metrics has no %s (recorded as -1)\n", stateCounter)
	}
	met := 0
	for _, tg := range rep.Targets {
		if tg.Status == "met" {
			met++
		}
	}
	fmt.Fprintf(&sb, "  targets: %d of %d met\n", met, len(rep.Targets))
	for _, tg := range rep.Targets {
		if tg.Status == "not measured" {
			fmt.Fprintf(&sb, "    %-12s %s (target <= %g %s)\n", tg.Status, tg.Name, tg.Limit, tg.Unit)
			continue
		}
		fmt.Fprintf(&sb, "    %-12s %s: %g %s (target <= %g)\n", tg.Status, tg.Name, tg.Value, tg.Unit, tg.Limit)
	}
	fmt.Fprintf(&sb, "  nri-memqos logged %d lines at -log-level warn", rep.PluginLogLines)
	if head := pluginLog.String(); head != "" {
		fmt.Fprintf(&sb, "; first:\n%s", indent(firstLines(head, 5)))
	}
	fmt.Fprintf(&sb, "\n  wrote %s in %v", file, time.Duration(rep.DurationNs).Round(time.Second))
	return sb.String()
}

func target(name string, value, limit float64, unit string) Target {
	status := "missed"
	if value <= limit {
		status = "met"
	}
	return Target{Name: name, Value: value, Limit: limit, Unit: unit, Status: status}
}

// statePerN sums the churn phases per N.
func statePerN(phases []StatePhase, sizes []int) []StatePerN {
	var out []StatePerN
	for _, n := range sizes {
		s := StatePerN{Live: n}
		for _, p := range phases {
			if p.Live != n || p.Phase == "fill" || p.Phase == "drain" {
				continue
			}
			s.Events += p.Events
			if p.Bytes < 0 || s.Bytes < 0 {
				s.Bytes = -1
			} else {
				s.Bytes += p.Bytes
			}
		}
		s.BytesPerEvent = -1
		if s.Bytes >= 0 && s.Events > 0 {
			s.BytesPerEvent = math.Round(float64(s.Bytes)/float64(s.Events)*10) / 10
		}
		out = append(out, s)
	}
	return out
}

func resultKey(n int, mode, setup, event string) string {
	return fmt.Sprintf("%d/%s/%s/%s", n, mode, setup, event)
}

func us(ns int64) string { return fmt.Sprintf("%.1fµs", float64(ns)/1e3) }

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// writeConfig writes the default configuration (config/nri-memqos.yaml)
// with cgroupVersion 2 and cgroupRoot set to the fake tree.
func writeConfig(t *testing.T, path, cgRoot string) {
	t.Helper()
	def, err := os.ReadFile(filepath.Join("..", "..", "..", "config", "nri-memqos.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(def)
	for _, r := range [][2]string{
		{"\ncgroupVersion: auto\n", "\ncgroupVersion: 2\n"},
		{"\ncgroupRoot: /sys/fs/cgroup\n", "\ncgroupRoot: " + cgRoot + "\n"},
	} {
		if !strings.Contains(text, r[0]) {
			t.Fatalf("config/nri-memqos.yaml has no line %q to replace", strings.TrimSpace(r[0]))
		}
		text = strings.Replace(text, r[0], r[1], 1)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// requestSize is the request annotation of every pod: at most 256Mi, and
// small enough that the latency-sensitive containers alive at the largest N
// (their memory.min; up to N+64 containers live while 64 callers churn)
// stay under the default node protection cap, 0.75 of MemTotal, with 10% to
// spare: a benchmark of the common path, not of the cap warning.
func requestSize(t *testing.T, maxLive int) int64 {
	t.Helper()
	memTotal := cgtest.Meminfo(t, "MemTotal")
	pods := (maxLive+concurrency)/ctrsPerPod + 2
	ls := int64((pods+len(classes)-1)/len(classes)) * ctrsPerPod
	req := int64(0.75*0.9*float64(memTotal)) / ls
	req = min(req-req%mi, 256*mi)
	if req < mi {
		t.Fatalf("MemTotal %d bytes: too small for %d latency-sensitive containers of 1Mi", memTotal, ls)
	}
	return req
}

// stateCounterReader reads nri_memqos_state_bytes_written_total from the
// plugin's /metrics. When the plugin does not expose it, read returns -1
// and the first such read says so in the log.
type stateCounterReader struct {
	t      *testing.T
	addr   string
	warned bool
	// read1 is set by the first read, which waits for the listener.
	read1 bool
}

func (r *stateCounterReader) read() int64 {
	wait := time.Duration(0)
	if !r.read1 {
		wait, r.read1 = 3*time.Second, true
	}
	v, err := scrape(r.addr, stateCounter, wait)
	if err != nil {
		if !r.warned {
			r.t.Logf("state bytes per event are not measured (recorded as -1): %v", err)
			r.warned = true
		}
		return -1
	}
	return v
}

var errAbsent = errors.New("counter absent")

// scrape returns the sum over the series of a counter in the Prometheus
// text exposition at http://addr/metrics, asking the server for that
// family only (name[]); it waits up to wait for the listener to come up.
func scrape(addr, name string, wait time.Duration) (int64, error) {
	client := &http.Client{Timeout: 30 * time.Second}
	u := "http://" + addr + "/metrics?" + url.Values{"name[]": {name}}.Encode()
	var (
		rsp *http.Response
		err error
	)
	for deadline := time.Now().Add(wait); ; time.Sleep(100 * time.Millisecond) {
		if rsp, err = client.Get(u); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return 0, fmt.Errorf("scraping nri-memqos: %w", err)
	}
	defer rsp.Body.Close()
	if rsp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("scraping nri-memqos: %s", rsp.Status)
	}
	sc := bufio.NewScanner(rsp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var (
		sum   float64
		found bool
	)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if i := strings.LastIndexByte(rest, '}'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %w", name, line, err)
		}
		sum, found = sum+v, true
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("scraping nri-memqos: %w", err)
	}
	if !found {
		return 0, fmt.Errorf("nri-memqos' /metrics has no %s: %w", name, errAbsent)
	}
	return int64(sum), nil
}

// setup is one adaptation (its own socket), the runtime's pods and
// containers it hands plugins when they synchronize, the plugin connected
// to it and the benchmark's live containers on it.
type setup struct {
	name  string
	b     *bench
	rt    *nritest.Runtime
	store *nritest.Store
	proc  *proc.Process // nil: no plugin
	log   *logbuf.Buffer
	pop   population
}

// status reads a "kB" field of the plugin's /proc/<pid>/status.
func (s *setup) status(t *testing.T, field string) int64 {
	t.Helper()
	return cgtest.KiB(t, fmt.Sprintf("/proc/%d/status", s.proc.Pid()), field)
}

func startSetup(t *testing.T, b *bench, base, name string, argv []string) *setup {
	t.Helper()
	paths, err := nritest.Layout(filepath.Join(base, name))
	if err != nil {
		t.Fatal(err)
	}
	s := &setup{name: name, b: b, store: nritest.NewStore()}
	s.pop.tag = len(b.setups)
	b.setups = append(b.setups, s)
	// Start() synchronizes once for pre-registered plugins (there are
	// none); every later synchronization is an external plugin's, with the
	// pods and containers that exist (reconnections included).
	s.rt, err = nritest.Start(paths, s.store)
	if err != nil {
		t.Fatalf("%s: starting the adaptation: %v", name, err)
	}
	t.Cleanup(s.rt.Stop)
	if argv == nil {
		return s
	}
	s.log = logbuf.Capped(64 << 10)
	cmd := exec.Command(argv[0], append(argv[1:], "-socket", paths.Socket)...)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	p, err := proc.Start(cmd)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	s.proc = p
	// Registered after stopping: cleanups run last in, first out, so the
	// plugin stops before its adaptation.
	t.Cleanup(func() {
		p.Stop(5 * time.Second)
		if t.Failed() {
			t.Logf("%s (pid %d, %v) log:\n%s", name, p.Pid(), p.Err(), s.log)
		}
	})
	ev, err := s.rt.WaitSync(p.Done(), 10*time.Second)
	switch {
	case errors.Is(err, nritest.ErrExited):
		t.Fatalf("%s exited before synchronizing: %v\n%s", name, p.Err(), s.log)
	case errors.Is(err, nritest.ErrTimeout):
		t.Fatalf("%s did not synchronize within 10s\n%s", name, s.log)
	case ev.Err != nil:
		t.Fatalf("%s: synchronization failed: %v", name, ev.Err)
	}
	return s
}

// bench holds what the setups share: the fake cgroup tree and the request.
type bench struct {
	cgRoot  string
	request int64
	setups  []*setup
}

// checkTree checks that the ancestor writes happened: kubepods/memory.min
// comes to hold the memory.min sum of nri-memqos' live latency-sensitive
// containers. The plugin writes ancestors from a goroutine of its own after
// the events (StartContainer waits for them, a removal does not): the check
// waits up to 5 s. Call it only while no event is in flight.
func (b *bench) checkTree(t *testing.T, s *setup) {
	t.Helper()
	ls := s.pop.lsLive.Load()
	want := strconv.FormatInt(ls*b.request, 10)
	path := filepath.Join(b.cgRoot, "kubepods", "memory.min")
	var got string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got = strings.TrimSpace(string(data)); got == want || time.Now().After(deadline) {
			break
		}
	}
	if got != want {
		t.Errorf("kubepods/memory.min = %s 5 s on, want %s (%d live latency-sensitive containers)", got, want, ls)
	}
}

// pod is one pod of the benchmark; its containers come and go in churn
// order.
type pod struct {
	sb *api.PodSandbox
	// dir is its cgroup directory (nri-memqos only).
	dir string
	ls  bool
	// left counts its containers not removed yet.
	left atomic.Int32
}

// ctr is one container and its pod.
type ctr struct {
	pod *pod
	c   *api.Container
}

// population is a setup's live containers, oldest first, and the pods they
// belong to.
type population struct {
	tag int // distinguishes the setups' pod UIDs

	// mu guards the queue of live containers.
	mu   sync.Mutex
	q    []*ctr
	head int

	// allocMu guards the pods and the allocation of new containers.
	allocMu sync.Mutex
	pods    map[*pod]bool // pods whose containers are not all removed
	cur     *pod          // the pod being filled
	inCur   int
	nPods   int
	nCtrs   int

	// lsLive counts the live (created, not stopped) latency-sensitive
	// containers.
	lsLive atomic.Int64
}

func (p *population) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.q) - p.head
}

func (p *population) push(c *ctr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.q = append(p.q, c)
}

// pop takes the oldest live container; nil when there is none.
func (p *population) pop() *ctr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.head == len(p.q) {
		return nil
	}
	c := p.q[p.head]
	p.q[p.head] = nil
	p.head++
	if p.head > 4096 && p.head*2 > len(p.q) {
		p.q = slices.Clone(p.q[p.head:])
		p.head = 0
	}
	return c
}

// alloc returns a new container, in the pod being filled or, when that one
// is full, in a new pod: RunPodSandbox is relayed for it (and for
// nri-memqos its cgroup directory laid out) before any of its containers is
// created. Pods' classes rotate latency-sensitive, burstable, best-effort;
// every pod carries the request annotation and has kubelet's cgroupfs
// layout (kubepods/burstable/pod<uid>).
func (s *setup) alloc(ctx context.Context) (*ctr, error) {
	p := &s.pop
	p.allocMu.Lock()
	defer p.allocMu.Unlock()
	if p.cur == nil || p.inCur == ctrsPerPod {
		i := p.nPods
		uid := fmt.Sprintf("%08x-0000-4000-8000-%012x", p.tag, i)
		class := classes[i%len(classes)]
		parent := "/kubepods/burstable/pod" + uid
		np := &pod{sb: &api.PodSandbox{
			Id:          fmt.Sprintf("sandbox-%s-%d", s.name, i),
			Name:        fmt.Sprintf("app-%d", i),
			Uid:         uid,
			Namespace:   "bench",
			Labels:      map[string]string{labelClass: class, "app": "bench"},
			Annotations: map[string]string{annRequest: strconv.FormatInt(s.b.request, 10)},
			Linux:       &api.LinuxPodSandbox{CgroupParent: parent},
		}, ls: class == "latency-sensitive"}
		np.left.Store(ctrsPerPod)
		if s.name == setupMemqos {
			np.dir = filepath.Join(s.b.cgRoot, parent)
			if err := zeroProtection(np.dir); err != nil {
				return nil, err
			}
		}
		if err := s.rt.RunPod(ctx, np.sb); err != nil {
			return nil, fmt.Errorf("RunPodSandbox %s: %w", np.sb.Name, err)
		}
		if p.pods == nil {
			p.pods = map[*pod]bool{}
		}
		p.pods[np] = true
		p.cur, p.inCur = np, 0
		p.nPods++
	}
	pd := p.cur
	name := fmt.Sprintf("c%d", p.inCur)
	id := fmt.Sprintf("%s-%07d", s.name, p.nCtrs)
	p.inCur++
	p.nCtrs++
	return &ctr{pod: pd, c: &api.Container{
		Id:           id,
		PodSandboxId: pd.sb.Id,
		Name:         name,
		State:        api.ContainerState_CONTAINER_UNKNOWN,
		Labels:       map[string]string{"io.kubernetes.container.name": name},
		Linux: &api.LinuxContainer{
			CgroupsPath: pd.sb.Linux.CgroupParent + "/" + id,
			Resources: &api.LinuxResources{
				Memory:  &api.LinuxMemory{Limit: api.Int64(limit)},
				Unified: maps.Clone(kubeletUnified),
			},
		},
	}}, nil
}

// zeroProtection is cgtest.ZeroProtection for the callers' goroutines:
// memory.min and memory.low of a fresh cgroup, "0\n".
func zeroProtection(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []string{"memory.min", "memory.low"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("0\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// lats are the latencies of the timed events; nil *lats records nothing.
type lats struct{ d [numEvents][]time.Duration }

func (l *lats) add(ev int, d time.Duration) {
	if l != nil {
		l.d[ev] = append(l.d[ev], d)
	}
}

func (l *lats) merge(o *lats) {
	for e := range numEvents {
		l.d[e] = append(l.d[e], o.d[e]...)
	}
}

// phase is one setup's churn at one round, N and mode, over its chunks.
type phase struct {
	lat       lats
	steps     int
	elapsed   time.Duration
	truncated bool
}

// create creates a new container (CreateContainer, timed into l), then
// relays PostCreateContainer and StartContainer and makes it the newest
// live container.
func (s *setup) create(ctx context.Context, l *lats) error {
	x, err := s.alloc(ctx)
	if err != nil {
		return err
	}
	req := &adaptation.CreateContainerRequest{Pod: x.pod.sb, Container: x.c}
	t0 := time.Now()
	rsp, err := s.rt.CreateContainer(ctx, req)
	l.add(evCreate, time.Since(t0))
	if err == nil && adjusts(s.name) && len(rsp.GetAdjust().GetLinux().GetResources().GetUnified()) == 0 {
		err = fmt.Errorf("no unified values in the adjustment: %v", rsp.GetAdjust())
	}
	if err != nil {
		return fmt.Errorf("CreateContainer %s: %w", x.c.Id, err)
	}
	// The runtime's view of the container: the adjustment applied.
	nritest.Adjust(x.c, rsp.GetAdjust())
	s.store.AddCreated(x.c)
	if x.pod.ls {
		s.pop.lsLive.Add(1)
	}
	if err := s.rt.PostCreateContainer(ctx, &adaptation.PostCreateContainerRequest{Pod: x.pod.sb, Container: x.c}); err != nil {
		return fmt.Errorf("PostCreateContainer %s: %w", x.c.Id, err)
	}
	if err := s.rt.StartContainer(ctx, &adaptation.StartContainerRequest{Pod: x.pod.sb, Container: x.c}); err != nil {
		return fmt.Errorf("StartContainer %s: %w", x.c.Id, err)
	}
	s.store.SetState(x.c.Id, api.ContainerState_CONTAINER_RUNNING)
	s.pop.push(x)
	return nil
}

// adjusts tells whether a setup's plugin returns an adjustment from every
// CreateContainer and an update of the container from every
// UpdateContainer: the benchmark checks that it did.
func adjusts(setup string) bool { return setup == setupMemqos || setup == setupNoopAdjust }

// retire ends a live container: when resize is set, an in-place resize
// first (UpdateContainer, timed, then PostUpdateContainer); then
// StopContainer and RemoveContainer (timed each). The pod goes with its
// last container.
func (s *setup) retire(ctx context.Context, y *ctr, resize bool, l *lats) error {
	if resize {
		res := &api.LinuxResources{Memory: &api.LinuxMemory{Limit: api.Int64(resizeLimit)}, Unified: maps.Clone(kubeletUnified)}
		t0 := time.Now()
		rsp, err := s.rt.UpdateContainer(ctx, &adaptation.UpdateContainerRequest{Pod: y.pod.sb, Container: y.c, LinuxResources: res})
		l.add(evUpdate, time.Since(t0))
		if err == nil && adjusts(s.name) && !slices.ContainsFunc(rsp.GetUpdate(), func(u *api.ContainerUpdate) bool { return u.GetContainerId() == y.c.Id }) {
			err = fmt.Errorf("no update for the resized container: %v", rsp.GetUpdate())
		}
		if err != nil {
			return fmt.Errorf("UpdateContainer %s: %w", y.c.Id, err)
		}
		for _, u := range rsp.GetUpdate() {
			s.store.ApplyUpdate(u)
		}
		if err := s.rt.PostUpdateContainer(ctx, &adaptation.PostUpdateContainerRequest{Pod: y.pod.sb, Container: y.c}); err != nil {
			return fmt.Errorf("PostUpdateContainer %s: %w", y.c.Id, err)
		}
	}
	t0 := time.Now()
	_, err := s.rt.StopContainer(ctx, &adaptation.StopContainerRequest{Pod: y.pod.sb, Container: y.c})
	l.add(evStop, time.Since(t0))
	if err != nil {
		return fmt.Errorf("StopContainer %s: %w", y.c.Id, err)
	}
	s.store.SetState(y.c.Id, api.ContainerState_CONTAINER_STOPPED)
	if y.pod.ls {
		s.pop.lsLive.Add(-1)
	}
	t0 = time.Now()
	err = s.rt.RemoveContainer(ctx, &adaptation.RemoveContainerRequest{Pod: y.pod.sb, Container: y.c})
	l.add(evRemove, time.Since(t0))
	if err != nil {
		return fmt.Errorf("RemoveContainer %s: %w", y.c.Id, err)
	}
	s.store.RemoveContainer(y.c.Id)
	if y.pod.left.Add(-1) == 0 {
		return s.dropPod(y.pod)
	}
	return nil
}

// dropPod forgets a pod all of whose containers are gone (the plugins do
// not subscribe to pod events) and removes its cgroup directory.
func (s *setup) dropPod(p *pod) error {
	s.store.RemovePod(p.sb.Id)
	s.pop.allocMu.Lock()
	delete(s.pop.pods, p)
	s.pop.allocMu.Unlock()
	if p.dir == "" {
		return nil
	}
	// The plugin's ancestor writer may still lower the pod's files: on this
	// plain-file tree a write re-creates a file RemoveAll just took (a real
	// cgroup's rmdir cannot race that way), so try again a few times.
	var err error
	for range 50 {
		if err = os.RemoveAll(p.dir); err == nil {
			if _, serr := os.Stat(p.dir); os.IsNotExist(serr) {
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return err
}

// churn runs up to steps churn steps from conc callers (create the newest,
// then resize, stop and remove the oldest), timing them into l (nil: not
// timed); callers start no new step after deadline (zero: none). It
// returns the steps completed.
func (s *setup) churn(ctx context.Context, steps, conc int, deadline time.Time, l *lats) (int, error) {
	var (
		next, done atomic.Int64
		failed     atomic.Bool
		errOnce    sync.Once
		firstErr   error
		wg         sync.WaitGroup
		mu         sync.Mutex
	)
	fail := func(err error) {
		failed.Store(true)
		errOnce.Do(func() { firstErr = err })
	}
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine *lats
			if l != nil {
				mine = &lats{}
				defer func() {
					mu.Lock()
					l.merge(mine)
					mu.Unlock()
				}()
			}
			for !failed.Load() && next.Add(1) <= int64(steps) && (deadline.IsZero() || time.Now().Before(deadline)) {
				if err := s.create(ctx, mine); err != nil {
					fail(err)
					return
				}
				y := s.pop.pop()
				if y == nil {
					fail(errors.New("no live container to retire"))
					return
				}
				if err := s.retire(ctx, y, true, mine); err != nil {
					fail(err)
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(done.Load()), firstErr
}

// fill creates containers, one caller, untimed, until n are live; it
// returns how many it created.
func (s *setup) fill(ctx context.Context, n int) (int, error) {
	added := 0
	for s.pop.len() < n {
		if err := s.create(ctx, nil); err != nil {
			return added, err
		}
		added++
	}
	return added, nil
}

// drain stops and removes every live container, oldest first, one caller,
// untimed, then forgets the pods left (the last one may not be full); it
// returns how many containers it removed.
func (s *setup) drain(ctx context.Context) (int, error) {
	removed := 0
	for y := s.pop.pop(); y != nil; y = s.pop.pop() {
		if err := s.retire(ctx, y, false, nil); err != nil {
			return removed, err
		}
		removed++
	}
	s.pop.allocMu.Lock()
	left := slices.Collect(maps.Keys(s.pop.pods))
	s.pop.allocMu.Unlock()
	for _, p := range left {
		if err := s.dropPod(p); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// summarize computes the latency figures of one phase.
func summarize(lat []time.Duration) Result {
	if len(lat) == 0 {
		return Result{}
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return Result{
		Count:  len(s),
		P50Ns:  rank(s, 0.50).Nanoseconds(),
		P99Ns:  rank(s, 0.99).Nanoseconds(),
		MeanNs: mean(s),
		MaxNs:  s[len(s)-1].Nanoseconds(),
	}
}

func mean(d []time.Duration) int64 {
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	return (sum / time.Duration(len(d))).Nanoseconds()
}

// rank is the nearest-rank percentile of sorted durations.
func rank(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// medianOf takes the median over rounds of each per-round figure.
func medianOf(runs []Result) Result {
	med := func(f func(Result) int64) int64 {
		v := make([]int64, 0, len(runs))
		for _, r := range runs {
			v = append(v, f(r))
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	out := Result{
		Live: runs[0].Live, Mode: runs[0].Mode, Setup: runs[0].Setup, Event: runs[0].Event,
		P50Ns:  med(func(r Result) int64 { return r.P50Ns }),
		P99Ns:  med(func(r Result) int64 { return r.P99Ns }),
		MeanNs: med(func(r Result) int64 { return r.MeanNs }),
		MaxNs:  slices.MaxFunc(runs, func(a, b Result) int { return cmp.Compare(a.MaxNs, b.MaxNs) }).MaxNs,
	}
	for _, r := range runs {
		out.Count += r.Count
		out.Truncated = out.Truncated || r.Truncated
	}
	return out
}

// TestScrape checks the reading of the state counter from a Prometheus text
// exposition (it runs without BENCH_OUT).
func TestScrape(t *testing.T) {
	var body atomic.Value
	body.Store("")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" || r.URL.Query().Get("name[]") != stateCounter {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, body.Load().(string))
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := l.Addr().String()

	body.Store("# HELP " + stateCounter + " Bytes.\n# TYPE " + stateCounter + " counter\n" +
		stateCounter + "_created 1.7e9\n" + stateCounter + " 1.234567e+06\n")
	if v, err := scrape(addr, stateCounter, 0); err != nil || v != 1234567 {
		t.Errorf("scrape = %d, %v; want 1234567", v, err)
	}
	body.Store(stateCounter + `{kind="journal"} 100` + "\n" + stateCounter + `{kind="compaction"} 50` + "\n")
	if v, err := scrape(addr, stateCounter, 0); err != nil || v != 150 {
		t.Errorf("scrape of two series = %d, %v; want 150", v, err)
	}
	body.Store("nri_memqos_other_total 5\n")
	if _, err := scrape(addr, stateCounter, 0); !errors.Is(err, errAbsent) {
		t.Errorf("scrape without the counter: %v, want errAbsent", err)
	}
}
