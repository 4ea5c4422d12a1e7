// Package hook measures what nri-memqos adds to the runtime's
// CreateContainer hook: the latency of CreateContainer round trips through
// NRI's real runtime side (github.com/containerd/nri/pkg/adaptation) with no
// plugin, with a no-op plugin (test/bench/noop) and with nri-memqos on a fake
// cgroup v2 tree, sequentially and with many concurrent callers; and the
// plugin's resident memory while 10 000 containers exist and after they went.
//
// TestHookCost runs only when BENCH_OUT names an output directory (make
// bench); it writes BENCH_OUT/hook.json (see Report) and logs a summary.
// BENCH_ROUNDS (default 2) sets how many interleaved rounds it runs: one
// round takes about 2.5 minutes on a 2-CPU machine, most of it nri-memqos
// creating and removing its containers. BENCH_MEMQOS_FLAGS adds flags to
// nri-memqos' command line (space separated; a repeated flag wins), for
// experiments such as "-state-dir=".
package hook

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
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
	// containersPerRun is how many containers one run creates (and removes).
	containersPerRun = 10000
	ctrsPerPod       = 10
	// concurrency is the number of callers in the concurrent mode.
	concurrency = 64
	// warmup containers are created and removed once per setup, untimed.
	warmup = 200
	// settle is how long the plugin is left alone after the removals before
	// its RSS is read again.
	settle = 2 * time.Second

	labelClass = "memqos.nri.io/class"
	annRequest = "memqos.nri.io/memory-request"
	mi         = int64(1) << 20
	limit      = 512 * mi

	// Targets from the issue.
	targetRatio    = 1.05
	targetPeakKiB  = 16 * 1024
	targetReturnPc = 10.0

	modeSequential = "sequential"
	setupNone      = "none"
	setupNoop      = "noop"
	setupMemqos    = "nri-memqos"
)

var (
	modeConcurrent = fmt.Sprintf("concurrent-%d", concurrency)
	setups         = []string{setupNone, setupNoop, setupMemqos}
	modes          = []string{modeSequential, modeConcurrent}
	classes        = []string{"latency-sensitive", "burstable", "best-effort"}
	// kubeletUnified is what kubelet may already have put in a container's
	// unified map on cgroup v2.
	kubeletUnified = map[string]string{"cpu.weight": "79", "memory.oom.group": "1"}
)

// Result is the latency of the CreateContainer calls of one setup and mode,
// as the runtime sees them (time spent in Adaptation.CreateContainer).
type Result struct {
	// Setup is "none" (no plugin connected), "noop" (test/bench/noop) or
	// "nri-memqos".
	Setup string `json:"setup"`
	// Mode is "sequential" (one caller) or "concurrent-64" (64 callers).
	Mode string `json:"mode"`
	// Round is the round of a single run (1-based); 0 in Report.Results,
	// where each number is the median over the rounds of the per-round value.
	Round int `json:"round,omitempty"`
	// P50Ns, P99Ns and MeanNs are the median, 99th percentile (nearest rank)
	// and mean latency of one CreateContainer call, in nanoseconds.
	P50Ns  int64 `json:"p50_ns"`
	P99Ns  int64 `json:"p99_ns"`
	MeanNs int64 `json:"mean_ns"`
	// N is the number of calls measured per round.
	N int `json:"n"`
	// MaxNs is the slowest call (in Report.Results: of all rounds).
	MaxNs int64 `json:"max_ns"`
	// FirstMeanNs and LastMeanNs are the mean latency of the first and of
	// the last 1000 containers of a run (by index): the cost with few and
	// with nearly 10 000 containers alive.
	FirstMeanNs int64 `json:"first_1000_mean_ns"`
	LastMeanNs  int64 `json:"last_1000_mean_ns"`
	// RemoveTotalNs is how long removing the N containers took (one caller,
	// untimed by the headline numbers); RemoveP99Ns and RemoveMaxNs are the
	// 99th percentile and the slowest of those RemoveContainer calls.
	RemoveTotalNs int64 `json:"remove_total_ns,omitempty"`
	RemoveP99Ns   int64 `json:"remove_p99_ns,omitempty"`
	RemoveMaxNs   int64 `json:"remove_max_ns,omitempty"`
}

// RSSRun is nri-memqos' resident memory around one of its runs.
type RSSRun struct {
	Round int    `json:"round"`
	Mode  string `json:"mode"`
	// PeakKiB is VmRSS right after the run's 10 000 containers were created.
	PeakKiB int64 `json:"peak_kib"`
	// RemovedKiB is VmRSS right after all of them were removed, SettledKiB
	// the same after a further settle (2 s without events).
	RemovedKiB int64 `json:"removed_kib"`
	SettledKiB int64 `json:"settled_kib"`
}

// RSS is nri-memqos' resident memory (VmRSS of /proc/<pid>/status) over the
// whole benchmark; one process serves all its runs.
type RSS struct {
	// StartKiB: after it synchronized with the runtime, before any container.
	StartKiB int64 `json:"rss_start_kib"`
	// PeakKiB: the largest VmRSS read while 10 000 containers existed.
	PeakKiB int64 `json:"rss_peak_kib"`
	// AfterKiB: after the last run's containers were all removed and a
	// settle of 2 s.
	AfterKiB int64 `json:"rss_after_kib"`
	// HWMKiB is the kernel's high-water mark of RSS (VmHWM) at the end.
	HWMKiB int64 `json:"rss_hwm_kib"`
	// Runs are the readings around every run.
	Runs []RSSRun `json:"runs"`
}

// Report is the content of BENCH_OUT/hook.json.
type Report struct {
	Date       string `json:"date"`
	GoVersion  string `json:"go_version"`
	NumCPU     int    `json:"num_cpu"`
	Rounds     int    `json:"rounds"`
	Containers int    `json:"containers_per_run"`
	PerPod     int    `json:"containers_per_pod"`
	// RequestBytes is the pod request annotation every pod carries, sized so
	// the latency-sensitive containers together stay under the default node
	// protection cap (no cap warnings).
	RequestBytes int64  `json:"request_bytes"`
	TmpDir       string `json:"tmp_dir"`
	// MemqosFlags are the extra flags of BENCH_MEMQOS_FLAGS, if any.
	MemqosFlags string `json:"memqos_extra_flags,omitempty"`
	// Results are the medians over the rounds, per setup and mode.
	Results []Result `json:"results"`
	// Runs are the single runs, in the order they ran.
	Runs []Result `json:"runs"`
	// P99RatioSequential and P99RatioConcurrent are p99(nri-memqos) /
	// p99(noop); the P50 ratios likewise.
	P99RatioSequential float64 `json:"p99_ratio_sequential"`
	P99RatioConcurrent float64 `json:"p99_ratio_concurrent"`
	P50RatioSequential float64 `json:"p50_ratio_sequential"`
	P50RatioConcurrent float64 `json:"p50_ratio_concurrent"`
	RSS                RSS     `json:"rss"`
	// RSSReturned tells whether AfterKiB is within 10% of StartKiB.
	RSSReturned bool `json:"rss_returned_within_10pct"`
	// PluginLogLines counts the lines nri-memqos logged (-log-level warn).
	PluginLogLines int `json:"plugin_log_lines"`
	// Reconnects counts, per setup, the plugin's synchronizations after its
	// first: each means the runtime dropped the plugin (for instance a
	// request over NRI's 2 s plugin request timeout) and the numbers of that
	// setup after it are not a plugin's.
	Reconnects map[string]int `json:"plugin_reconnects"`
}

func TestHookCost(t *testing.T) {
	out := os.Getenv("BENCH_OUT")
	if out == "" {
		t.Skip("BENCH_OUT not set (make bench sets it)")
	}
	rounds := 2
	if v := os.Getenv("BENCH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("BENCH_ROUNDS=%q: want a positive integer", v)
		}
		rounds = n
	}
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
	// its state file, the sockets.
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
	for _, l := range []string{"kubepods", "kubepods/burstable"} {
		cgtest.ZeroProtection(t, filepath.Join(cgRoot, l))
	}
	cfgPath := filepath.Join(base, "memqos.yaml")
	writeConfig(t, cfgPath, cgRoot)
	request := requestSize(t)

	// The adaptation logs through logrus' standard logger.
	rtLog := logbuf.Capped(64 << 10)
	logrus.SetOutput(rtLog)
	logrus.SetLevel(logrus.WarnLevel)

	env := map[string]*setup{}
	env[setupNone] = startSetup(t, base, setupNone, nil)
	env[setupNoop] = startSetup(t, base, setupNoop, []string{noopBin, "-name", "noop", "-idx", "10"})
	env[setupMemqos] = startSetup(t, base, setupMemqos, append([]string{memqosBin,
		"-config", cfgPath, "-state-dir", filepath.Join(base, "state"),
		"-metrics-address", "", "-log-level", "warn"}, strings.Fields(os.Getenv("BENCH_MEMQOS_FLAGS"))...))
	memqos := env[setupMemqos]
	rep := Report{
		Date: time.Now().UTC().Format(time.RFC3339), GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(),
		Rounds: rounds, Containers: containersPerRun, PerPod: ctrsPerPod, RequestBytes: request, TmpDir: base,
		MemqosFlags: os.Getenv("BENCH_MEMQOS_FLAGS"),
	}
	rep.RSS.StartKiB = memqos.status(t, "VmRSS")
	t.Logf("nri-memqos pid %d synchronized: VmRSS %d KiB", memqos.proc.Pid(), rep.RSS.StartKiB)

	b := &bench{t: t, cgRoot: cgRoot, request: request}
	for _, name := range setups {
		w := b.build(name, "w", warmup)
		env[name].create(t, w, 1)
		env[name].remove(t, w)
	}

	runs := map[string][]Result{}
	for r := 1; r <= rounds; r++ {
		for m, mode := range modes {
			conc := 1
			if mode == modeConcurrent {
				conc = concurrency
			}
			// Rotate the order of the setups from run to run, so slow
			// phases of this shared machine hit them alike.
			for k := range setups {
				name := setups[(k+r+m)%len(setups)]
				s := env[name]
				w := b.build(name, fmt.Sprintf("r%d%c", r, mode[0]), containersPerRun)
				lat := s.create(t, w, conc)
				var rr RSSRun
				if s == memqos {
					rr = RSSRun{Round: r, Mode: mode, PeakKiB: s.status(t, "VmRSS")}
					b.checkTree(w, true)
				}
				t0 := time.Now()
				rlat := s.remove(t, w)
				removed := time.Since(t0)
				if s == memqos {
					b.checkTree(w, false)
					rr.RemovedKiB = s.status(t, "VmRSS")
					time.Sleep(settle)
					rr.SettledKiB = s.status(t, "VmRSS")
					rep.RSS.Runs = append(rep.RSS.Runs, rr)
				}
				b.dropTree(w)
				res := summarize(name, mode, lat)
				res.Round, res.RemoveTotalNs = r, removed.Nanoseconds()
				rs := summarize(name, mode, rlat)
				res.RemoveP99Ns, res.RemoveMaxNs = rs.P99Ns, rs.MaxNs
				runs[name+"/"+mode] = append(runs[name+"/"+mode], res)
				rep.Runs = append(rep.Runs, res)
				t.Logf("round %d %-13s %-10s p50 %9s p99 %9s mean %9s max %9s (first 1000 %s, last 1000 %s); removal %v (p99 %s, max %s)",
					r, mode, name, us(res.P50Ns), us(res.P99Ns), us(res.MeanNs), us(res.MaxNs), us(res.FirstMeanNs), us(res.LastMeanNs),
					removed.Round(time.Millisecond), us(res.RemoveP99Ns), us(res.RemoveMaxNs))
			}
		}
	}

	for _, mode := range modes {
		for _, name := range setups {
			rep.Results = append(rep.Results, medianOf(name, mode, runs[name+"/"+mode]))
		}
	}
	get := func(name, mode string) Result {
		for _, r := range rep.Results {
			if r.Setup == name && r.Mode == mode {
				return r
			}
		}
		return Result{}
	}
	ratio := func(a, b int64) float64 { return math.Round(float64(a)/float64(b)*1000) / 1000 }
	rep.P99RatioSequential = ratio(get(setupMemqos, modeSequential).P99Ns, get(setupNoop, modeSequential).P99Ns)
	rep.P99RatioConcurrent = ratio(get(setupMemqos, modeConcurrent).P99Ns, get(setupNoop, modeConcurrent).P99Ns)
	rep.P50RatioSequential = ratio(get(setupMemqos, modeSequential).P50Ns, get(setupNoop, modeSequential).P50Ns)
	rep.P50RatioConcurrent = ratio(get(setupMemqos, modeConcurrent).P50Ns, get(setupNoop, modeConcurrent).P50Ns)
	for _, rr := range rep.RSS.Runs {
		rep.RSS.PeakKiB = max(rep.RSS.PeakKiB, rr.PeakKiB)
		rep.RSS.AfterKiB = rr.SettledKiB
	}
	rep.RSS.HWMKiB = memqos.status(t, "VmHWM")
	rep.RSSReturned = float64(rep.RSS.AfterKiB) <= float64(rep.RSS.StartKiB)*(1+targetReturnPc/100)
	rep.PluginLogLines = memqos.log.Lines()
	rep.Reconnects = map[string]int{}
	for _, name := range setups {
		if env[name].proc != nil {
			// Every synchronization after the first is a reconnection.
			rep.Reconnects[name] = max(0, env[name].rt.Syncs()-1)
		}
	}

	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(out, "hook.json")
	if err := os.WriteFile(file, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}

	var sb strings.Builder
	fmt.Fprintf(&sb, "hook cost: %d CreateContainer calls per setup and mode, %d rounds (medians of per-round values), %d CPUs, request %d Mi\n",
		containersPerRun, rounds, rep.NumCPU, request/mi)
	fmt.Fprintf(&sb, "  %-13s %-10s %11s %11s %11s %11s %11s %11s\n", "mode", "setup", "p50", "p99", "mean", "max", "first1000", "last1000")
	for _, r := range rep.Results {
		fmt.Fprintf(&sb, "  %-13s %-10s %11s %11s %11s %11s %11s %11s\n", r.Mode, r.Setup,
			us(r.P50Ns), us(r.P99Ns), us(r.MeanNs), us(r.MaxNs), us(r.FirstMeanNs), us(r.LastMeanNs))
	}
	fmt.Fprintf(&sb, "  p99(nri-memqos)/p99(noop): sequential %.3f, %s %.3f (target <= %.2f: %s, %s)\n",
		rep.P99RatioSequential, modeConcurrent, rep.P99RatioConcurrent, targetRatio,
		verdict(rep.P99RatioSequential <= targetRatio), verdict(rep.P99RatioConcurrent <= targetRatio))
	fmt.Fprintf(&sb, "  p50(nri-memqos)/p50(noop): sequential %.3f, %s %.3f\n",
		rep.P50RatioSequential, modeConcurrent, rep.P50RatioConcurrent)
	fmt.Fprintf(&sb, "  nri-memqos RSS: start %d KiB, peak with %d containers %d KiB (target <= %d KiB: %s), after removal and %v settle %d KiB (%+.1f%% of start; within %.0f%%: %s), VmHWM %d KiB\n",
		rep.RSS.StartKiB, containersPerRun, rep.RSS.PeakKiB, targetPeakKiB, verdict(rep.RSS.PeakKiB <= targetPeakKiB),
		settle, rep.RSS.AfterKiB, 100*(float64(rep.RSS.AfterKiB)/float64(rep.RSS.StartKiB)-1), targetReturnPc,
		verdict(rep.RSSReturned), rep.RSS.HWMKiB)
	for _, rr := range rep.RSS.Runs {
		fmt.Fprintf(&sb, "    round %d %-13s peak %d KiB, removed %d KiB, settled %d KiB\n", rr.Round, rr.Mode, rr.PeakKiB, rr.RemovedKiB, rr.SettledKiB)
	}
	fmt.Fprintf(&sb, "  nri-memqos logged %d lines at -log-level warn", rep.PluginLogLines)
	if head := memqos.log.String(); head != "" {
		fmt.Fprintf(&sb, "; first:\n%s", indent(firstLines(head, 5)))
	}
	fmt.Fprintf(&sb, "\n  wrote %s in %v", file, time.Since(began).Round(time.Second))
	t.Log(sb.String())
	for _, name := range setups {
		if n := rep.Reconnects[name]; n > 0 {
			t.Errorf("%s: the runtime dropped the plugin %d time(s) (see the runtime log): its numbers after that are not a plugin's", name, n)
		}
	}
	if rtLog.Lines() > 0 {
		t.Logf("runtime (adaptation) log, %d lines; first:\n%s", rtLog.Lines(), indent(firstLines(rtLog.String(), 10)))
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
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
// small enough that the latency-sensitive containers of one run (their
// memory.min) stay under the default node protection cap, 0.75 of MemTotal,
// with 10% to spare: a benchmark of the common path, not of the cap warning.
func requestSize(t *testing.T) int64 {
	t.Helper()
	memTotal := cgtest.Meminfo(t, "MemTotal")
	pods := containersPerRun / ctrsPerPod
	ls := int64((pods+len(classes)-1)/len(classes)) * ctrsPerPod
	req := int64(0.75*0.9*float64(memTotal)) / ls
	req = min(req-req%mi, 256*mi)
	if req < mi {
		t.Fatalf("MemTotal %d bytes: too small for %d latency-sensitive containers of 1Mi", memTotal, ls)
	}
	return req
}

// setup is one adaptation (its own socket), the runtime's pods and
// containers it hands plugins when they synchronize, and the plugin
// connected to it.
type setup struct {
	name  string
	rt    *nritest.Runtime
	store *nritest.Store
	proc  *proc.Process // nil: no plugin
	log   *logbuf.Buffer
}

// status reads a "kB" field of the plugin's /proc/<pid>/status.
func (s *setup) status(t *testing.T, field string) int64 {
	t.Helper()
	return cgtest.KiB(t, fmt.Sprintf("/proc/%d/status", s.proc.Pid()), field)
}

func startSetup(t *testing.T, base, name string, argv []string) *setup {
	t.Helper()
	paths, err := nritest.Layout(filepath.Join(base, name))
	if err != nil {
		t.Fatal(err)
	}
	s := &setup{name: name, store: nritest.NewStore()}
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

// bench builds the pods and containers of runs and their cgroup tree.
type bench struct {
	t       *testing.T
	cgRoot  string
	request int64
	seq     int
}

// workload is the pods and containers of one run.
type workload struct {
	setup string
	pods  []*api.PodSandbox
	reqs  []*adaptation.CreateContainerRequest
	// dirs are the pod cgroup directories laid out for nri-memqos.
	dirs []string
	// ls counts the latency-sensitive containers.
	ls int
}

// build returns n containers in n/ctrsPerPod pods whose classes rotate
// latency-sensitive, burstable, best-effort, all with the request
// annotation, in kubelet's cgroupfs layout (kubepods/burstable/pod<uid>).
// For nri-memqos it lays out the pods' cgroup directories.
func (b *bench) build(setup, tag string, n int) *workload {
	b.seq++
	w := &workload{setup: setup}
	for i := range n / ctrsPerPod {
		uid := fmt.Sprintf("%08x-0000-4000-8000-%012x", b.seq, i)
		class := classes[i%len(classes)]
		parent := "/kubepods/burstable/pod" + uid
		w.pods = append(w.pods, &api.PodSandbox{
			Id:          fmt.Sprintf("sandbox-%s-%d", tag, i),
			Name:        fmt.Sprintf("app-%s-%d", tag, i),
			Uid:         uid,
			Namespace:   "bench",
			Labels:      map[string]string{labelClass: class, "app": "bench"},
			Annotations: map[string]string{annRequest: strconv.FormatInt(b.request, 10)},
			Linux:       &api.LinuxPodSandbox{CgroupParent: parent},
		})
		if setup == setupMemqos {
			dir := filepath.Join(b.cgRoot, parent)
			cgtest.ZeroProtection(b.t, dir)
			w.dirs = append(w.dirs, dir)
		}
	}
	for i := range n {
		pod := w.pods[i/ctrsPerPod]
		if pod.Labels[labelClass] == "latency-sensitive" {
			w.ls++
		}
		id := fmt.Sprintf("%s-%s-%05d", setup, tag, i)
		w.reqs = append(w.reqs, &adaptation.CreateContainerRequest{
			Pod: pod,
			Container: &api.Container{
				Id:           id,
				PodSandboxId: pod.Id,
				Name:         fmt.Sprintf("c%d", i%ctrsPerPod),
				State:        api.ContainerState_CONTAINER_UNKNOWN,
				Labels:       map[string]string{"io.kubernetes.container.name": fmt.Sprintf("c%d", i%ctrsPerPod)},
				Linux: &api.LinuxContainer{
					CgroupsPath: pod.Linux.CgroupParent + "/" + id,
					Resources: &api.LinuxResources{
						Memory:  &api.LinuxMemory{Limit: api.Int64(limit)},
						Unified: maps.Clone(kubeletUnified),
					},
				},
			},
		})
	}
	return w
}

// checkTree checks that the ancestor writes happened: with the run's
// containers alive, kubepods/memory.min holds their memory.min sum; after
// the removals, 0 again.
func (b *bench) checkTree(w *workload, alive bool) {
	b.t.Helper()
	want := "0"
	if alive {
		want = strconv.FormatInt(int64(w.ls)*b.request, 10)
	}
	if s := cgtest.Read(b.t, b.cgRoot, "kubepods", "memory.min"); s != want {
		b.t.Errorf("kubepods/memory.min = %s, want %s (alive %v)", s, want, alive)
	}
}

func (b *bench) dropTree(w *workload) {
	b.t.Helper()
	for _, d := range w.dirs {
		if err := os.RemoveAll(d); err != nil {
			b.t.Error(err)
		}
	}
}

// create runs RunPodSandbox for every pod (untimed), then CreateContainer for
// every container from conc callers, and returns each call's latency.
func (s *setup) create(t *testing.T, w *workload, conc int) []time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, pod := range w.pods {
		if err := s.rt.RunPod(ctx, pod); err != nil {
			t.Fatalf("%s: RunPodSandbox %s: %v", s.name, pod.Name, err)
		}
	}
	lat := make([]time.Duration, len(w.reqs))
	var (
		next     atomic.Int64
		failures atomic.Int64
		firstErr sync.Once
		wg       sync.WaitGroup
	)
	worker := func() {
		defer wg.Done()
		for {
			i := int(next.Add(1) - 1)
			if i >= len(w.reqs) {
				return
			}
			t0 := time.Now()
			rsp, err := s.rt.CreateContainer(ctx, w.reqs[i])
			lat[i] = time.Since(t0)
			if err == nil && s.name == setupMemqos && len(rsp.GetAdjust().GetLinux().GetResources().GetUnified()) == 0 {
				err = fmt.Errorf("no unified values in the adjustment: %v", rsp.GetAdjust())
			}
			if err != nil {
				failures.Add(1)
				firstErr.Do(func() { t.Errorf("%s: CreateContainer %s: %v", s.name, w.reqs[i].Container.Id, err) })
				continue
			}
			// The runtime knows the container from here on (the
			// adjustment does not matter to a resync: the request comes
			// from the pod annotation).
			s.store.AddCreated(w.reqs[i].Container)
		}
	}
	wg.Add(conc)
	for range conc {
		go worker()
	}
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%s: %d of %d CreateContainer calls failed", s.name, n, len(w.reqs))
	}
	return lat
}

// remove relays RemoveContainer for every container of w, one caller, then
// forgets w's pods; it returns each call's latency.
func (s *setup) remove(t *testing.T, w *workload) []time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lat := make([]time.Duration, 0, len(w.reqs))
	for _, req := range w.reqs {
		c := req.Container
		s.store.RemoveContainer(c.Id)
		t0 := time.Now()
		if err := s.rt.RemoveContainer(ctx, &adaptation.RemoveContainerRequest{Pod: req.Pod, Container: c}); err != nil {
			t.Fatalf("%s: RemoveContainer %s: %v", s.name, c.Id, err)
		}
		lat = append(lat, time.Since(t0))
	}
	for _, pod := range w.pods {
		s.store.RemovePod(pod.Id)
	}
	return lat
}

// summarize computes the latency figures of one run.
func summarize(setup, mode string, lat []time.Duration) Result {
	s := slices.Clone(lat)
	slices.Sort(s)
	k := min(1000, len(lat))
	return Result{
		Setup: setup, Mode: mode, N: len(s),
		P50Ns:       rank(s, 0.50).Nanoseconds(),
		P99Ns:       rank(s, 0.99).Nanoseconds(),
		MeanNs:      mean(s),
		MaxNs:       s[len(s)-1].Nanoseconds(),
		FirstMeanNs: mean(lat[:k]),
		LastMeanNs:  mean(lat[len(lat)-k:]),
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
func medianOf(setup, mode string, runs []Result) Result {
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
	return Result{
		Setup: setup, Mode: mode, N: runs[0].N,
		P50Ns:       med(func(r Result) int64 { return r.P50Ns }),
		P99Ns:       med(func(r Result) int64 { return r.P99Ns }),
		MeanNs:      med(func(r Result) int64 { return r.MeanNs }),
		FirstMeanNs: med(func(r Result) int64 { return r.FirstMeanNs }),
		LastMeanNs:  med(func(r Result) int64 { return r.LastMeanNs }),
		MaxNs:       slices.MaxFunc(runs, func(a, b Result) int { return cmp.Compare(a.MaxNs, b.MaxNs) }).MaxNs,
	}
}
