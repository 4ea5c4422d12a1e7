package e2e

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/test/internal/cgtest"
	"nri-memqos/test/internal/wait"
)

// The protection benchmark (issues 5 and 12): what a latency-sensitive
// container keeps of its page cache, and how fast it reads it, next to a
// best-effort neighbour that takes the node's memory; alone, without
// protection, with what Kubernetes' own MemoryQoS writes, and with
// nri-memqos, with and without priority-aware reclaim. Three scenarios: a
// working set within the request, one larger than the request, and a real
// storage engine (a bbolt store served by random point reads) larger than
// the request. Then background reclaim: a reader at its limit with and
// without the plugin's watermarks.
//
// TestBenchProtection (host, BENCH_OUT set) boots the cgroup v2 VM, runs
// TestProtectionGuest there and writes BENCH_OUT/protection.json.
// BENCH_SCENARIOS and BENCH_MODES (comma-separated names) run only some
// scenarios and configurations (for development: the targets compare runs
// of one series). Targets
// are reported, never asserted: the benchmark measures, the scenarios prove.

const (
	envBenchOut       = "BENCH_OUT"
	envBenchScenarios = "BENCH_SCENARIOS"
	envBenchModes     = "BENCH_MODES"
	protectionPrefix  = "PROTECTION-JSON "
	protectionSchema  = "nri-memqos/protection-bench/v2"

	// The latency-sensitive (LS) container: it reads its working set once,
	// then re-reads it in one timed burst every protIdle seconds, idle in
	// between (a working set read continuously stays hot whatever the
	// settings).
	protLSLimit = 512 * mi
	protIdle    = 3 // seconds between bursts
	// protWindow is how long the bursts are measured per run.
	protWindow = 60 * time.Second
	// protGets is the bbolt workload's point reads per burst.
	protGets = 20000

	// The best-effort (BE) neighbour holds anonymous memory (no swap: it
	// cannot be reclaimed) and streams a file larger than what is left.
	protBEStream = 1024 * mi
	// protOverhead is what containerd, its shims, the plugin and the
	// containers' processes take once the pods run; protRoom is what the
	// BE's anonymous memory leaves free besides the LS working set: page
	// cache for the stream, and the LS cache's only competitor.
	protOverhead = 100 * mi
	protRoom     = 150 * mi
	// protSettle lets the stream push the node to its steady state after the
	// BE's anonymous memory is in, before the bursts are measured.
	protSettle = 8 * time.Second

	// kubeletThrottlingFactor is kubelet's default memoryThrottlingFactor.
	kubeletThrottlingFactor = 0.9

	// Part 4: two readers at a 256 MiB limit, 16 MiB dd operations over
	// 400 MiB of a file, one in a class with watermarks, one without.
	bgLimit    = 256 * mi
	bgSpan     = 400 // MiB each reader cycles through
	bgWindow   = 30 * time.Second
	bgNoWMBase = 512 // MiB: where the second reader's span starts in the file
)

// protectionResult is the JSON the guest prints and the host writes.
type protectionResult struct {
	Schema            string        `json:"schema"`
	Kernel            string        `json:"kernel"`
	LRUGen            string        `json:"lru_gen,omitempty"`
	MemTotalMiB       float64       `json:"mem_total_mib"`
	Notes             string        `json:"notes"`
	Scenarios         []*protResult `json:"scenarios"`
	BackgroundReclaim *bgResult     `json:"background_reclaim,omitempty"`
	GuestSeconds      float64       `json:"guest_seconds"`
}

// protResult is one scenario's runs.
type protResult struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Setup       protSetup      `json:"setup"`
	Runs        []*protRun     `json:"runs"`
	Targets     []targetResult `json:"targets,omitempty"`
}

type protSetup struct {
	Workload            string  `json:"workload"`
	LSRequestMiB        int64   `json:"ls_request_mib"`
	LSLimitMiB          int64   `json:"ls_limit_mib"`
	LSWorkingSetMiB     float64 `json:"ls_working_set_mib"`
	LSOOMScoreAdj       int64   `json:"ls_oom_score_adj"`
	BurstIdleSeconds    int     `json:"burst_idle_s"`
	GetsPerBurst        int     `json:"gets_per_burst,omitempty"`
	WindowSeconds       float64 `json:"window_s"`
	BEAnonMiB           int64   `json:"be_anon_mib"`
	BEStreamMiB         int64   `json:"be_stream_file_mib"`
	MemAvailableMiB     float64 `json:"mem_available_before_mib"`
	KubeletLSMemoryHigh int64   `json:"kubelet_ls_memory_high"`
}

// protRun is one configuration's measurement.
type protRun struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Config      string `json:"plugin_config,omitempty"`
	Failed      bool   `json:"failed,omitempty"`

	Bursts         int       `json:"bursts"`
	BurstMs        []float64 `json:"burst_ms"`
	P50Ms          float64   `json:"p50_ms"`
	P90Ms          float64   `json:"p90_ms"`
	P99Ms          float64   `json:"p99_ms"`
	ThroughputMiBs float64   `json:"throughput_mib_s,omitempty"`
	// The bbolt workload's point reads over the window, from the reader's
	// histogram (buckets 2^(1/8) apart: each figure is its bucket's upper
	// bound).
	Gets      int     `json:"gets,omitempty"`
	GetP50Us  float64 `json:"get_p50_us,omitempty"`
	GetP99Us  float64 `json:"get_p99_us,omitempty"`
	GetP999Us float64 `json:"get_p999_us,omitempty"`
	GetsPerS  float64 `json:"gets_per_s,omitempty"`

	LSCacheStartMiB   float64 `json:"ls_cache_start_mib"`
	LSCacheEndMiB     float64 `json:"ls_cache_end_mib"`
	LSCacheMinMiB     float64 `json:"ls_cache_min_mib"`
	LSRefaultFile     int64   `json:"ls_workingset_refault_file"`
	LSPressureSomeMs  float64 `json:"ls_pressure_some_ms"`
	LSCPUSomeMs       float64 `json:"ls_cpu_pressure_some_ms"`
	LSIOSomeMs        float64 `json:"ls_io_pressure_some_ms"`
	LSOOMKills        int64   `json:"ls_oom_kills"`
	MemAvailableMinMB float64 `json:"mem_available_min_mib"`
	// PluginCPUMs is the CPU time the plugin used during the window (its
	// memory.reclaim writes included: the kernel reclaims in its task), and
	// PluginReclaimedMiB what it reclaimed then, by "pod/reason".
	PluginCPUMs        float64            `json:"plugin_cpu_ms,omitempty"`
	PluginReclaimedMiB map[string]float64 `json:"plugin_reclaimed_mib,omitempty"`
	// TierThrottles counts the plugin's memory.high steps on the BE pod in
	// the window.
	TierThrottles float64 `json:"tier_throttles,omitempty"`

	// What the cgroups held when the bursts began.
	LSCgroup  map[string]string `json:"ls_cgroup"`
	Ancestors map[string]string `json:"ancestors_memory_min"`
	BE        *beResult         `json:"be,omitempty"`
	// WindowStart is when the bursts began (UTC, for the plugin's log);
	// Trace samples the window once a second from then.
	WindowStart string       `json:"window_start"`
	Trace       []protSample `json:"trace,omitempty"`
}

// protSample is one second of a run's window.
type protSample struct {
	T             float64 `json:"t"`
	LSFileMiB     float64 `json:"ls_file_mib"`
	LSRefaultFile int64   `json:"ls_refault_file"`
	BEFileMiB     float64 `json:"be_file_mib,omitempty"`
	BEHigh        string  `json:"be_memory_high,omitempty"`
	MemAvailMiB   float64 `json:"mem_available_mib"`
}

type beResult struct {
	Cgroup     map[string]string `json:"cgroup"`
	AnonMiB    float64           `json:"anon_mib"`
	State      string            `json:"state"`
	ExitCode   int               `json:"exit_code"`
	Reason     string            `json:"reason"`
	OOMKills   int64             `json:"oom_kills"`
	Finished   bool              `json:"finished"`
	MaxFileMiB float64           `json:"max_file_mib"`
	// StreamMiBs is what the stream read during the window, in whole passes
	// over its file.
	StreamMiBs float64 `json:"stream_mib_s"`
}

type bgResult struct {
	Config        string  `json:"plugin_config"`
	WindowSeconds float64 `json:"window_s"`
	// PluginCPUMs is the CPU time the plugin used during the window,
	// memory.reclaim included (the kernel reclaims in the writer's task).
	PluginCPUMs float64        `json:"plugin_cpu_ms"`
	Readers     []*bgReader    `json:"readers"`
	Note        string         `json:"note"`
	Targets     []targetResult `json:"targets,omitempty"`
}

type bgReader struct {
	Name           string  `json:"name"`
	Class          string  `json:"class"`
	Ops            int     `json:"ops"`
	P50Ms          float64 `json:"p50_ms"`
	P99Ms          float64 `json:"p99_ms"`
	MaxMs          float64 `json:"max_ms"`
	MaxHits        int64   `json:"memory_max_hits"`
	PressureSomeMs float64 `json:"pressure_some_ms"`
	PgscanDirect   int64   `json:"pgscan_direct"`
	PgstealDirect  int64   `json:"pgsteal_direct"`
	// PluginReclaimedMiB is the plugin's own count, from its metrics: how
	// far memory.current fell per memory.reclaim write (less than it took
	// while the reader charged).
	PluginReclaimedMiB float64 `json:"plugin_reclaimed_mib"`
	// PluginRequests, PluginAskedMiB and PluginPartial are the plugin's
	// memory.reclaim writes in the window, from its log: how many, the bytes
	// asked by those the kernel fully served (it may take more: 6.1
	// overshoots), and how many it served only in part.
	PluginRequests int     `json:"plugin_reclaim_requests"`
	PluginAskedMiB float64 `json:"plugin_reclaim_asked_mib"`
	PluginPartial  int     `json:"plugin_reclaim_partial"`
	// OwnStealEstimate is pgsteal_direct less the pages the plugin
	// reclaimed by its own count: memory.reclaim counts as direct reclaim
	// on Linux 6.1, and the plugin's count is low, so this is an upper
	// bound of the reader's own direct reclaim.
	OwnStealEstimate int64   `json:"own_direct_steal_upper_bound"`
	CurrentP95MiB    float64 `json:"memory_current_p95_mib"`
}

type targetResult struct {
	Name   string `json:"name"`
	Met    bool   `json:"met"`
	Detail string `json:"detail"`
}

// protMode is one configuration of a scenario.
type protMode struct {
	name, description string
	neighbour         bool // the BE pod runs
	kubelet           bool // Kubernetes MemoryQoS values, written as kubelet would
	plugin            bool // nri-memqos runs
	// config is the plugin's configuration; "" is its default.
	config string
}

var (
	modeAlone   = protMode{name: "alone", description: "the LS pod by itself"}
	modeNoisy   = protMode{name: "noisy", description: "LS + BE, no protection", neighbour: true}
	modeKubelet = protMode{name: "kubelet", description: "LS + BE, Kubernetes MemoryQoS: LS memory.min = request and memory.high by kubelet's formula (CRI unified), memory.min = sum of requests on pod, QoS and kubepods cgroups", neighbour: true, kubelet: true}
	modeNoTiers = protMode{name: "notiers", description: "LS + BE, nri-memqos with priority-aware reclaim off (reconciler.tiers.enabled: false): LS latency-sensitive with a request annotation, BE best-effort", neighbour: true, plugin: true,
		config: "cgroupVersion: auto\nreconciler:\n  tiers:\n    enabled: false\n"}
	modePlugin = protMode{name: "plugin", description: "LS + BE, nri-memqos with its default configuration (priority-aware reclaim on): LS latency-sensitive with a request annotation, BE best-effort", neighbour: true, plugin: true}
)

// protScenario is one LS workload and request against the same BE pod.
type protScenario struct {
	name, description string
	// request is the LS pod's request (the annotation; kubelet's
	// memory.min), ws the size of its file or store.
	request, ws int64
	// bbolt: the LS reads a bbolt store with kvread; else it re-reads a
	// file with dd.
	bbolt bool
	modes []protMode
}

var protScenarios = []protScenario{
	{name: "within-request", description: "LS request 320Mi, limit 512Mi; working set a 300 MiB file, re-read whole with dd every 3 s",
		request: 320 * mi, ws: 300 * mi, modes: []protMode{modeAlone, modeNoisy, modeKubelet, modePlugin}},
	{name: "hot-set", description: "LS request 256Mi, limit 512Mi; working set a 320 MiB file (1.25x the request), re-read whole with dd every 3 s",
		request: 256 * mi, ws: 320 * mi, modes: []protMode{modeAlone, modeNoisy, modeKubelet, modeNoTiers, modePlugin}},
	{name: "bbolt", description: fmt.Sprintf("LS request 256Mi, limit 512Mi; a go.etcd.io/bbolt store of 320 MiB (1.25x the request, 1000-byte values) "+
		"served by %d random point reads in one read transaction every 3 s (kvread, test/bench/kvread)", protGets),
		request: 256 * mi, ws: 320 * mi, bbolt: true, modes: []protMode{modeAlone, modeNoisy, modeKubelet, modeNoTiers, modePlugin}},
}

// TestProtectionGuest is the benchmark's guest side (run only by
// TestBenchProtection, inside the cgroup v2 VM).
func TestProtectionGuest(t *testing.T) {
	if os.Getenv(envInVM) != "1" {
		t.Log("the protection benchmark's guest side: run TestBenchProtection with BENCH_OUT set")
		return
	}
	start := time.Now()
	e := loadEnv(t)
	if e.version != 2 {
		t.Fatalf("the protection benchmark needs cgroup v2")
	}
	data := os.Getenv(envDataDir)
	if data == "" {
		t.Fatalf("%s is not set", envDataDir)
	}
	removeKubepodsCgroups()

	res := &protectionResult{Schema: protectionSchema, MemTotalMiB: mib(cgtest.Meminfo(t, "MemTotal"))}
	res.Kernel = strings.TrimSpace(readFileOr("/proc/sys/kernel/osrelease"))
	res.LRUGen = strings.TrimSpace(readFileOr("/sys/kernel/mm/lru_gen/enabled"))
	res.Notes = "each run on a fresh containerd with dropped caches; dd bursts are timed with /proc/uptime (10 ms) by a busybox " +
		"the LS container copied itself (charged to it, so its own binary is protected too), bbolt bursts and reads by kvread " +
		"(copied likewise); BE holds be_anon_mib with dd and streams its file with cat (sendfile); /kubepods/besteffort " +
		"cpu.weight=1 as kubelet's QoS manager sets it (cpu.shares=2), in every run with the BE pod; BE anon = MemAvailable - " +
		fmt.Sprintf("LS working set - %d MiB overhead - %d MiB room", protOverhead/mi, protRoom/mi)
	defer func() {
		res.GuestSeconds = time.Since(start).Seconds()
		b, err := json.Marshal(res)
		if err != nil {
			t.Errorf("marshal result: %v", err)
			return
		}
		// One line, one write: the host picks it out of the console.
		if _, err := os.Stdout.Write([]byte("\n" + protectionPrefix + string(b) + "\n")); err != nil {
			t.Errorf("write result: %v", err)
		}
	}()

	beFile := filepath.Join(data, "prot-be")
	writeFile(t, beFile, protBEStream)
	only := nameSet(os.Getenv(envBenchScenarios))
	for _, sc := range protScenarios {
		if len(only) > 0 && !only[sc.name] {
			continue
		}
		sr := &protResult{Name: sc.name, Description: sc.description}
		res.Scenarios = append(res.Scenarios, sr)
		t.Run(sc.name, func(t *testing.T) { runScenario(t, e, sc, sr, data, beFile) })
	}
	t.Run("background-reclaim", func(t *testing.T) {
		res.BackgroundReclaim = runBackgroundReclaim(t, e, beFile)
	})
}

// runScenario writes the LS data, sizes the BE and measures each mode.
func runScenario(t *testing.T, e *suiteEnv, sc protScenario, sr *protResult, data, beFile string) {
	lsFile := filepath.Join(data, "prot-"+sc.name)
	kvread := filepath.Join(os.Getenv(envWorkDir), "kvread")
	if sc.bbolt {
		if out, err := exec.Command(kvread, "load", "-db", lsFile, "-mib", strconv.FormatInt(sc.ws/mi, 10)).CombinedOutput(); err != nil {
			t.Fatalf("kvread load: %v\n%s", err, out)
		}
	} else {
		writeFile(t, lsFile, sc.ws)
	}
	defer os.Remove(lsFile)
	fi, err := os.Stat(lsFile)
	if err != nil {
		t.Fatal(err)
	}
	ws := fi.Size()
	dropCaches(t)
	avail := cgtest.Meminfo(t, "MemAvailable")
	total := cgtest.Meminfo(t, "MemTotal")
	// Sized from this VM so that the node runs short once the BE holds its
	// memory: the ratio of what is left to the LS working set matters, not
	// the VM size.
	beAnon := (avail - ws - protOverhead - protRoom) / (8 * mi) * 8 * mi
	lsAdj := 1000 - 1000*sc.request/total // kubelet's oom_score_adj for Burstable
	sr.Setup = protSetup{Workload: "dd", LSRequestMiB: sc.request / mi, LSLimitMiB: protLSLimit / mi, LSWorkingSetMiB: mib(ws),
		LSOOMScoreAdj: lsAdj, BurstIdleSeconds: protIdle, WindowSeconds: protWindow.Seconds(),
		BEAnonMiB: beAnon / mi, BEStreamMiB: protBEStream / mi, MemAvailableMiB: mib(avail),
		KubeletLSMemoryHigh: kubeletMemoryHigh(sc.request, protLSLimit)}
	if sc.bbolt {
		sr.Setup.Workload, sr.Setup.GetsPerBurst = "bbolt", protGets
	}
	t.Logf("%s: MemTotal %d MiB, MemAvailable %d MiB, LS working set %.0f MiB: BE holds %d MiB anonymous",
		sc.name, total/mi, avail/mi, mib(ws), beAnon/mi)
	only := nameSet(os.Getenv(envBenchModes))
	for _, m := range sc.modes {
		if len(only) > 0 && !only[m.name] {
			continue
		}
		run := &protRun{Name: m.name, Description: m.description, Config: m.config}
		sr.Runs = append(sr.Runs, run)
		if !t.Run(m.name, func(t *testing.T) { runProtection(t, e, sc, m, run, lsFile, beFile, kvread, ws, beAnon, lsAdj) }) {
			run.Failed = true
		}
	}
}

// nameSet is a comma-separated list as a set.
func nameSet(list string) map[string]bool {
	set := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			set[s] = true
		}
	}
	return set
}

// runProtection measures one configuration on a fresh containerd.
func runProtection(t *testing.T, e *suiteEnv, sc protScenario, m protMode, run *protRun, lsFile, beFile, kvread string, ws, beAnon, lsAdj int64) {
	r := newRuntime(t, e)
	r.importImage()
	var p *plugin
	if m.plugin {
		p = r.startPlugin(cmp.Or(m.config, e2eConfig))
	}
	out := filepath.Join(r.dir, "out")
	if err := os.MkdirAll(out, 0o777); err != nil {
		t.Fatal(err)
	}
	dropCaches(t)

	ls := pod{name: "ls", uid: "00000000-0000-0000-0000-000000000601", qos: "burstable",
		labels:      map[string]string{"memqos.nri.io/class": "latency-sensitive"},
		annotations: map[string]string{"memqos.nri.io/memory-request": fmt.Sprintf("%dMi", sc.request/mi)}}
	lsID := r.runPod(ls)
	lsC := container{name: "app", limit: protLSLimit, oomScoreAdj: lsAdj,
		command: []string{"/bin/sh", "-c", selfCharged, "ls"}, args: []string{lsScript},
		mounts: []mount{{host: lsFile, container: "/data/f"}, {host: out, container: "/out", rw: true}}}
	if sc.bbolt {
		lsC.command = []string{"/bin/sh", "-c", fmt.Sprintf(kvScript, protGets, protIdle)}
		lsC.args = nil
		lsC.mounts = append(lsC.mounts, mount{host: kvread, container: "/kv/kvread"})
	}
	if m.kubelet {
		// kubelet MemoryQoS: the container's unified keys at creation, and
		// memory.min = the sum of requests on the pod, its QoS class and
		// kubepods (the QoS manager), outermost first.
		lsC.unified = map[string]string{
			"memory.min":  cgtest.Itoa(sc.request),
			"memory.high": cgtest.Itoa(kubeletMemoryHigh(sc.request, protLSLimit)),
		}
		for _, rel := range []string{"/kubepods", "/kubepods/burstable", ls.cgroupParent()} {
			if err := os.WriteFile(filepath.Join(cgroupMount, rel, "memory.min"), []byte(cgtest.Itoa(sc.request)), 0o644); err != nil {
				t.Fatalf("kubelet's memory.min on %s: %v", rel, err)
			}
		}
	}
	lsCtr := r.runContainer(lsID, ls, lsC)
	lsDir := r.cgroupDir(lsCtr)
	wait.For(t, 3*time.Minute, "the LS container to read its working set", func() bool { return exists(filepath.Join(out, "ready")) })

	var beDir, beCtr string
	if m.neighbour {
		be := pod{name: "be", uid: "00000000-0000-0000-0000-000000000602", qos: "besteffort",
			labels: map[string]string{"memqos.nri.io/class": "best-effort"}}
		beID := r.runPod(be)
		// kubelet's QoS manager gives the BestEffort class cpu.shares=2.
		if err := os.WriteFile(filepath.Join(cgroupMount, "kubepods/besteffort/cpu.weight"), []byte("1"), 0o644); err != nil {
			t.Logf("besteffort cpu.weight: %v", err)
		}
		beCtr = r.runContainer(beID, be, container{name: "batch", oomScoreAdj: 1000,
			command: []string{"/bin/sh", "-c", fmt.Sprintf(beScript, beAnon/mi)},
			mounts:  []mount{{host: beFile, container: "/data/f"}, {host: out, container: "/out", rw: true}}})
		beDir = r.cgroupDir(beCtr)
		run.BE = &beResult{Cgroup: optSnapshot(beDir, v2Files)}
		deadline := time.Now().Add(90 * time.Second)
		for optStat(beDir, "anon") < beAnon*95/100 && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		run.BE.AnonMiB = mib(optStat(beDir, "anon"))
		t.Logf("BE holds %.0f MiB anonymous", run.BE.AnonMiB)
		time.Sleep(protSettle)
	}

	run.LSCgroup = optSnapshot(lsDir, v2Files)
	run.Ancestors = map[string]string{}
	for _, rel := range []string{"/kubepods", "/kubepods/burstable", ls.cgroupParent()} {
		run.Ancestors[rel] = strings.TrimSpace(readFileOr(filepath.Join(cgroupMount, rel, "memory.min")))
	}
	startStall, startRefault := readStall(t, lsDir), memStat(t, lsDir, "workingset_refault_file")
	startCPU, startIO := someTotal(lsDir, "cpu.pressure"), someTotal(lsDir, "io.pressure")
	run.LSCacheStartMiB = mib(memStat(t, lsDir, "file"))
	if err := os.WriteFile(filepath.Join(out, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	beReads0 := countLines(filepath.Join(out, "be-reads"))
	cpu0, reclaimed0 := p.cpuTime(), pluginReclaimed(t, p)
	var throttles0 float64
	if p != nil {
		throttles0 = scrape(t, "nri_memqos_container_tier_throttles_total", `pod="be"`)
	}
	availMin, lsCacheMin := int64(math.MaxInt64), int64(math.MaxInt64)
	var beFileMax int64
	t0 := time.Now()
	run.WindowStart = t0.UTC().Format(time.RFC3339)
	for end := t0.Add(protWindow); time.Now().Before(end); time.Sleep(time.Second) {
		avail, lsCache := cgtest.Meminfo(t, "MemAvailable"), memStat(t, lsDir, "file")
		s := protSample{T: time.Since(t0).Seconds(), LSFileMiB: mib(lsCache), MemAvailMiB: mib(avail),
			LSRefaultFile: memStat(t, lsDir, "workingset_refault_file") - startRefault}
		if beDir != "" {
			s.BEFileMiB = mib(optStat(beDir, "file"))
			s.BEHigh = strings.TrimSpace(readFileOr(filepath.Join(beDir, "memory.high")))
			beFileMax = max(beFileMax, optStat(beDir, "file"))
		}
		run.Trace = append(run.Trace, s)
		availMin, lsCacheMin = min(availMin, avail), min(lsCacheMin, lsCache)
	}
	run.MemAvailableMinMB = mib(availMin)
	run.LSCacheMinMiB = mib(lsCacheMin)
	run.PluginCPUMs = float64(p.cpuTime()-cpu0) / float64(time.Millisecond)
	if p != nil {
		run.PluginReclaimedMiB = map[string]float64{}
		for k, v := range pluginReclaimed(t, p) {
			run.PluginReclaimedMiB[k] = (v - reclaimed0[k]) / float64(mi)
		}
		run.TierThrottles = scrape(t, "nri_memqos_container_tier_throttles_total", `pod="be"`) - throttles0
	}
	beReads := countLines(filepath.Join(out, "be-reads")) - beReads0
	run.LSCacheEndMiB = mib(memStat(t, lsDir, "file"))
	run.LSRefaultFile = memStat(t, lsDir, "workingset_refault_file") - startRefault
	run.LSPressureSomeMs = float64(readStall(t, lsDir).sub(startStall).stall) / float64(time.Millisecond)
	run.LSCPUSomeMs = float64(someTotal(lsDir, "cpu.pressure")-startCPU) / 1000
	run.LSIOSomeMs = float64(someTotal(lsDir, "io.pressure")-startIO) / 1000
	run.LSOOMKills = optEvent(lsDir, "oom_kill")

	lat := readOps(filepath.Join(out, "lat"), "burst", 0)
	run.Bursts = len(lat)
	run.BurstMs = lat
	if len(lat) > 0 {
		run.P50Ms, run.P90Ms, run.P99Ms = percentile(lat, 50), percentile(lat, 90), percentile(lat, 99)
		var sum float64
		for _, ms := range lat {
			sum += ms
		}
		if sc.bbolt {
			h := readHistogram(filepath.Join(out, "gets"))
			run.Gets = h.n()
			run.GetP50Us, run.GetP99Us, run.GetP999Us = h.quantile(0.5)/1e3, h.quantile(0.99)/1e3, h.quantile(0.999)/1e3
			run.GetsPerS = float64(run.Gets) / (sum / 1000)
		} else {
			run.ThroughputMiBs = float64(len(lat)) * mib(ws) / (sum / 1000)
		}
	}

	if beDir != "" {
		run.BE.MaxFileMiB = mib(beFileMax)
		run.BE.StreamMiBs = float64(int64(beReads)*protBEStream/mi) / protWindow.Seconds()
		run.BE.OOMKills = optEvent(beDir, "oom_kill")
		if err := os.WriteFile(filepath.Join(out, "stop"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			st, err := containerStatus(r, beCtr)
			if err != nil {
				t.Errorf("BE status: %v", err)
				break
			}
			run.BE.State, run.BE.ExitCode, run.BE.Reason = st.State, st.ExitCode, st.Reason
			if st.State == "CONTAINER_EXITED" || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		run.BE.Finished = run.BE.State == "CONTAINER_EXITED" && run.BE.ExitCode == 0 && run.BE.OOMKills == 0
	}
	t.Logf("%s/%s: %d bursts p50 %.0f ms p90 %.0f ms p99 %.0f ms; gets %d p50 %.0f µs p99 %.0f µs; LS cache %.0f -> %.0f MiB, %d refaults, stalled memory %.0f ms cpu %.0f ms io %.0f ms; MemAvailable min %.0f MiB; tier throttles %.0f; BE %+v",
		sc.name, m.name, run.Bursts, run.P50Ms, run.P90Ms, run.P99Ms, run.Gets, run.GetP50Us, run.GetP99Us, run.LSCacheStartMiB, run.LSCacheEndMiB,
		run.LSRefaultFile, run.LSPressureSomeMs, run.LSCPUSomeMs, run.LSIOSomeMs, run.MemAvailableMinMB, run.TierThrottles, run.BE)
	if p != nil {
		t.Logf("plugin log of the window:\n%s", tierLog(p.log.String()))
	}
}

// tierLog is the plugin's log lines about priority-aware reclaim and node
// pressure, for the test log.
func tierLog(log string) string {
	var s strings.Builder
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "priority-aware") || strings.Contains(l, "reason=priority") || strings.Contains(l, "reason=node-pressure") {
			s.WriteString(l + "\n")
		}
	}
	return s.String()
}

// someTotal is the "some" total stall in µs of a cgroup's PSI file
// (cpu.pressure, io.pressure); 0 where it cannot be read.
func someTotal(dir, file string) int64 {
	p, err := cgroupfs.ParsePSI([]byte(readFileOr(filepath.Join(dir, file))))
	if err != nil {
		return 0
	}
	return int64(p.SomeTotal)
}

// histogram is kvread's latency histogram: bucket upper bound in ns ->
// reads.
type histogram map[int64]int

// readHistogram sums the "gets <bound>:<count> ..." lines of a file.
func readHistogram(path string) histogram {
	h := histogram{}
	for _, line := range strings.Split(readFileOr(path), "\n") {
		rest, ok := strings.CutPrefix(line, "gets ")
		if !ok {
			continue
		}
		for _, f := range strings.Fields(rest) {
			b, c, ok := strings.Cut(f, ":")
			bound, err1 := strconv.ParseInt(b, 10, 64)
			count, err2 := strconv.Atoi(c)
			if ok && err1 == nil && err2 == nil {
				h[bound] += count
			}
		}
	}
	return h
}

func (h histogram) n() int {
	n := 0
	for _, c := range h {
		n += c
	}
	return n
}

// quantile is the upper bound of the bucket that holds the q-th read (0 <
// q <= 1); 0 for no reads.
func (h histogram) quantile(q float64) float64 {
	bounds := slices.Sorted(maps.Keys(h))
	rank := int(math.Ceil(q * float64(h.n())))
	seen := 0
	for _, b := range bounds {
		if seen += h[b]; seen >= rank {
			return float64(b)
		}
	}
	return 0
}

// selfCharged runs the script in $1 with a busybox the container wrote
// itself (/out/busybox: its page cache is charged to the container, so
// memory.min protects it too), not the image's, which the native
// snapshotter wrote from containerd's root cgroup: those pages would be
// reclaimed from the root and refault into the container, a one-off that is
// not its working set. The shell is a standalone busybox: dd and sleep run
// from /out/busybox too.
const selfCharged = `cat /bin/busybox >/out/busybox && /bin/busybox chmod 755 /out/busybox && exec /out/busybox sh -c "$1"`

// lsScript reads the working set once, waits for /out/go, then re-reads it
// in one burst every protIdle seconds and appends "burst <ms>" to /out/lat.
// The clock is /proc/uptime read by the shell's builtin read: no fork, 10 ms
// resolution.
var lsScript = fmt.Sprintf(`dd if=/data/f of=/dev/null bs=1M 2>/dev/null
: > /out/ready
while [ ! -e /out/go ]; do sleep 0.2; done
while :; do
	read a _ </proc/uptime
	dd if=/data/f of=/dev/null bs=1M 2>/dev/null
	read b _ </proc/uptime
	echo "burst $(( (${b%%.*}${b#*.} - ${a%%.*}${a#*.}) * 10 ))" >>/out/lat
	sleep %d
done`, protIdle)

// kvScript runs kvread serve (gets per burst, idle seconds) from a copy
// the container wrote itself, as selfCharged does for busybox.
const kvScript = `cat /kv/kvread >/out/kvread && chmod 755 /out/kvread && exec /out/kvread serve -db /data/f -out /out -gets %d -idle %ds`

// beScript holds %d MiB of anonymous memory (dd's buffer, while sleep never
// reads the pipe) and streams its file with cat until /out/stop appears,
// then exits 0. It counts its passes over the file in /out/be-reads. cat
// sends the file to /dev/null with sendfile: the pages go through the page
// cache as with read(), without a copy to user space, which under TCG on a
// 2-core host would take CPU from the LS vCPU that a real node's cores would
// not.
const beScript = `dd if=/dev/zero bs=%dM count=1 2>/dev/null | sleep 100000 &
while [ ! -e /out/stop ]; do
	cat /data/f >/dev/null
	echo read >>/out/be-reads
done
exit 0`

// kubeletMemoryHigh is kubelet's MemoryQoS memory.high for a container with
// a limit: floor((request + factor * (limit - request)) / page) * page.
func kubeletMemoryHigh(request, limit int64) int64 {
	return int64(math.Floor((float64(request)+kubeletThrottlingFactor*float64(limit-request))/pageSize)) * pageSize
}

// runBackgroundReclaim is part 4: two readers at their limit, with and
// without the plugin's watermarks, side by side on one containerd.
func runBackgroundReclaim(t *testing.T, e *suiteEnv, file string) *bgResult {
	cfg := fmt.Sprintf(reconcilerConfig, false)
	res := &bgResult{Config: strings.TrimSpace(cfg), WindowSeconds: bgWindow.Seconds(),
		Note: "on Linux 6.1 pgscan_direct/pgsteal_direct also count the reclaim the plugin asks for through memory.reclaim " +
			"(it runs as direct reclaim in the plugin's task, charged to the reader's lruvec): with watermarks they measure " +
			"the plugin's work as well as the reader's; memory_max_hits and pressure_some_ms are the reader's own"}
	r := newRuntime(t, e)
	r.importImage()
	p := r.startPlugin(cfg)
	dropCaches(t)
	type reader struct {
		res            *bgReader
		pod, dir, out  string
		startStall     stall
		startScan      int64
		startSteal     int64
		startLines     int
		currentSamples []int64
	}
	var readers []*reader
	for i, rd := range []struct{ name, class string }{{"reader-wm", "cache"}, {"reader-nowm", "cache-nowm"}} {
		base := i * bgNoWMBase // distinct pages of the same file: no shared page cache
		out := filepath.Join(r.dir, "out-"+rd.name)
		if err := os.MkdirAll(out, 0o777); err != nil {
			t.Fatal(err)
		}
		pd := pod{name: rd.name, uid: fmt.Sprintf("00000000-0000-0000-0000-00000000070%d", i+1), qos: "burstable",
			labels: map[string]string{"memqos.nri.io/class": rd.class}}
		id := r.runPod(pd)
		ctr := r.runContainer(id, pd, container{name: "reader", limit: bgLimit, oomScoreAdj: 900,
			command: []string{"/bin/sh", "-c", fmt.Sprintf(readerScript, base, bgSpan)},
			mounts:  []mount{{host: file, container: "/data/f"}, {host: out, container: "/out", rw: true}}})
		readers = append(readers, &reader{res: &bgReader{Name: rd.name, Class: rd.class}, pod: id, dir: r.cgroupDir(ctr), out: out})
	}
	// Measure once both have read more than their limit.
	wait.For(t, 2*time.Minute, "the readers to read past their limit", func() bool {
		for _, rd := range readers {
			if int64(len(readOps(filepath.Join(rd.out, "lat"), "op", 0)))*16*mi < bgLimit+64*mi {
				return false
			}
		}
		return true
	})
	for _, rd := range readers {
		rd.startStall = readStall(t, rd.dir)
		rd.startScan, rd.startSteal = memStat(t, rd.dir, "pgscan_direct"), memStat(t, rd.dir, "pgsteal_direct")
		rd.startLines = len(readOps(filepath.Join(rd.out, "lat"), "op", 0))
	}
	logLines0 := strings.Count(p.log.String(), "\n")
	cpu0 := p.cpuTime()
	reclaimed0 := scrape(t, "nri_memqos_container_reclaimed_bytes_total", `pod="reader-wm"`, `reason="watermark"`)
	nowmReclaimed0 := scrape(t, "nri_memqos_container_reclaimed_bytes_total", `pod="reader-nowm"`, `reason="watermark"`)
	for end := time.Now().Add(bgWindow); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		for _, rd := range readers {
			rd.currentSamples = append(rd.currentSamples, cgtest.ReadInt(t, rd.dir, "memory.current"))
		}
	}
	res.PluginCPUMs = float64(p.cpuTime()-cpu0) / float64(time.Millisecond)
	reclaimed := []float64{
		scrape(t, "nri_memqos_container_reclaimed_bytes_total", `pod="reader-wm"`, `reason="watermark"`) - reclaimed0,
		scrape(t, "nri_memqos_container_reclaimed_bytes_total", `pod="reader-nowm"`, `reason="watermark"`) - nowmReclaimed0,
	}
	for i, rd := range readers {
		s := readStall(t, rd.dir).sub(rd.startStall)
		b := rd.res
		b.MaxHits = s.maxHits
		b.PressureSomeMs = float64(s.stall) / float64(time.Millisecond)
		b.PgscanDirect = memStat(t, rd.dir, "pgscan_direct") - rd.startScan
		b.PgstealDirect = memStat(t, rd.dir, "pgsteal_direct") - rd.startSteal
		b.PluginReclaimedMiB = reclaimed[i] / float64(mi)
		var asked int64
		b.PluginRequests, asked, b.PluginPartial = pluginReclaims(p.log.String(), logLines0, rd.res.Name)
		b.PluginAskedMiB = mib(asked)
		b.OwnStealEstimate = max(0, b.PgstealDirect-int64(reclaimed[i])/pageSize)
		ops := readOps(filepath.Join(rd.out, "lat"), "op", rd.startLines)
		b.Ops = len(ops)
		if len(ops) > 0 {
			b.P50Ms, b.P99Ms, b.MaxMs = percentile(ops, 50), percentile(ops, 99), percentile(ops, 100)
		}
		slices.Sort(rd.currentSamples)
		if n := len(rd.currentSamples); n > 0 {
			b.CurrentP95MiB = mib(rd.currentSamples[n*95/100])
		}
		res.Readers = append(res.Readers, b)
		t.Logf("%s: %d ops p50 %.0f ms p99 %.0f ms; %d memory.max hits, stalled %.0f ms; pgscan_direct %d pgsteal_direct %d; plugin reclaimed %.0f MiB; memory.current p95 %.0f MiB",
			b.Name, b.Ops, b.P50Ms, b.P99Ms, b.MaxHits, b.PressureSomeMs, b.PgscanDirect, b.PgstealDirect, b.PluginReclaimedMiB, b.CurrentP95MiB)
	}
	for _, rd := range readers {
		r.removePod(rd.pod)
	}
	return res
}

// readerScript reads 16 MiB at a time through a span of the file (base and
// span in MiB), 0.1 s apart, and appends "op <ms>" to /out/lat per read.
const readerScript = `base=%d; span=%d; i=0
while :; do
	read a _ </proc/uptime
	dd if=/data/f of=/dev/null bs=1M count=16 skip=$((base + i)) 2>/dev/null
	read b _ </proc/uptime
	echo "op $(( (${b%%.*}${b#*.} - ${a%%.*}${a#*.}) * 10 ))" >>/out/lat
	i=$(( (i + 16) %% span ))
	sleep 0.1
done`

// TestBenchProtection runs the protection benchmark in the cgroup v2 VM and
// writes BENCH_OUT/protection.json.
func TestBenchProtection(t *testing.T) {
	dir := os.Getenv(envBenchOut)
	if dir == "" {
		t.Skipf("%s is not set: the benchmark writes its result there", envBenchOut)
	}
	// kvread, static, on the guest's disk: the bbolt scenario's reader.
	kvread := filepath.Join(t.TempDir(), "kvread")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", kvread, "../bench/kvread")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build kvread: %v\n%s", err, out)
	}
	var line string
	_, code := runGuest(t, guestRun{pattern: "^TestProtectionGuest$", timeout: 40 * time.Minute,
		disk: map[string]string{"kvread": kvread},
		env:  map[string]string{envBenchScenarios: os.Getenv(envBenchScenarios), envBenchModes: os.Getenv(envBenchModes)},
		onLine: func(l string) {
			if i := strings.Index(l, protectionPrefix); i >= 0 {
				line = l[i+len(protectionPrefix):]
				return
			}
			t.Logf("vm: %s", l)
		}})
	if line == "" {
		t.Fatalf("the guest printed no %q line (exit %d)", strings.TrimSpace(protectionPrefix), code)
	}
	var res protectionResult
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		t.Fatalf("the guest's result: %v", err)
	}
	for _, sc := range res.Scenarios {
		sc.Targets = protectionTargets(sc)
	}
	if bg := res.BackgroundReclaim; bg != nil {
		bg.Targets = backgroundTargets(bg)
	}
	b, err := json.MarshalIndent(&res, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "protection.json")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s\n%s", path, protectionSummary(&res))
	if code != 0 {
		t.Errorf("the guest test failed (exit %d): the result may be partial", code)
	}
}

// lsLatency is what a scenario's targets judge: the bbolt reads' p50 and
// p99 (µs), else the bursts' (ms).
func lsLatency(sc *protResult, r *protRun) (p50, p99 float64, unit string) {
	if sc.Setup.Workload == "bbolt" {
		return r.GetP50Us, r.GetP99Us, "µs per read"
	}
	return r.P50Ms, r.P99Ms, "ms per burst"
}

// protectionTargets judges a scenario's targets (issue 5's for the working
// set within the request, issue 12's for the others); they are reported,
// not asserted.
func protectionTargets(sc *protResult) []targetResult {
	runs := map[string]*protRun{}
	for _, r := range sc.Runs {
		if !r.Failed && r.Bursts > 0 {
			runs[r.Name] = r
		}
	}
	var out []targetResult
	add := func(name string, ok bool, format string, args ...any) {
		out = append(out, targetResult{Name: name, Met: ok, Detail: fmt.Sprintf(format, args...)})
	}
	alone, noisy, kube, notiers, plug := runs["alone"], runs["noisy"], runs["kubelet"], runs["notiers"], runs["plugin"]
	if alone != nil && plug != nil {
		a50, a99, unit := lsLatency(sc, alone)
		p50, p99, _ := lsLatency(sc, plug)
		add("LS p50 with nri-memqos within 1.5x of alone", p50 <= 1.5*a50, "%.0f vs %.0f %s (%.2fx)", p50, a50, unit, p50/a50)
		if notiers != nil {
			add("LS p99 with nri-memqos within 2x of alone", p99 <= 2*a99, "%.0f vs %.0f %s (%.2fx)", p99, a99, unit, p99/a99)
		}
	}
	if alone != nil && noisy != nil {
		a50, _, unit := lsLatency(sc, alone)
		n50, _, _ := lsLatency(sc, noisy)
		add("LS without protection several (>=3) times slower than alone", n50 >= 3*a50, "p50 %.0f vs %.0f %s (%.2fx)", n50, a50, unit, n50/a50)
	}
	if noisy != nil && plug != nil {
		add("LS refaults with nri-memqos <= 10% of unprotected", float64(plug.LSRefaultFile) <= 0.1*float64(noisy.LSRefaultFile),
			"%d vs %d", plug.LSRefaultFile, noisy.LSRefaultFile)
	}
	if kube != nil && plug != nil {
		if notiers == nil {
			add("LS refaults with nri-memqos <= half of Kubernetes MemoryQoS", float64(plug.LSRefaultFile) <= 0.5*float64(kube.LSRefaultFile),
				"%d vs %d", plug.LSRefaultFile, kube.LSRefaultFile)
		} else {
			k50, _, unit := lsLatency(sc, kube)
			p50, _, _ := lsLatency(sc, plug)
			var a50 float64
			if alone != nil {
				a50, _, _ = lsLatency(sc, alone)
			}
			add("LS p50 with nri-memqos at least 2x better than Kubernetes MemoryQoS", 2*p50 <= k50,
				"%.0f vs %.0f %s (%.2fx); over alone: %.0f vs %.0f", p50, k50, unit, k50/p50, p50-a50, k50-a50)
		}
	}
	if noisy != nil && plug != nil && plug.BE != nil && noisy.BE != nil && noisy.BE.StreamMiBs > 0 {
		add("BE still does its work with nri-memqos (stream vs no protection)", plug.BE.Finished,
			"%.0f vs %.0f MiB/s (%.2fx)", plug.BE.StreamMiBs, noisy.BE.StreamMiBs, plug.BE.StreamMiBs/noisy.BE.StreamMiBs)
	}
	for _, r := range sc.Runs {
		if r.BE == nil {
			continue
		}
		add("BE finishes, not OOM-killed ("+r.Name+")", r.BE.Finished,
			"state %s, exit %d, reason %q, oom_kill %d", r.BE.State, r.BE.ExitCode, r.BE.Reason, r.BE.OOMKills)
	}
	return out
}

// backgroundTargets judges part 4.
func backgroundTargets(bg *bgResult) []targetResult {
	if bg == nil || len(bg.Readers) != 2 {
		return nil
	}
	wm, nowm := bg.Readers[0], bg.Readers[1]
	return []targetResult{
		{Name: "reader pgscan_direct >= 90% lower with watermarks", Met: float64(wm.PgscanDirect) <= 0.1*float64(nowm.PgscanDirect),
			Detail: fmt.Sprintf("%d vs %d: Linux 6.1 counts the plugin's memory.reclaim here", wm.PgscanDirect, nowm.PgscanDirect)},
		{Name: "reader's own direct reclaim >= 90% lower with watermarks", Met: float64(wm.OwnStealEstimate) <= 0.1*float64(nowm.OwnStealEstimate),
			Detail: fmt.Sprintf("pgsteal_direct less the plugin's reclaim, at most %d vs %d pages; memory.max hits %d vs %d; stalled %.0f vs %.0f ms; op p99 %.0f vs %.0f ms",
				wm.OwnStealEstimate, nowm.OwnStealEstimate, wm.MaxHits, nowm.MaxHits, wm.PressureSomeMs, nowm.PressureSomeMs, wm.P99Ms, nowm.P99Ms)},
	}
}

// protectionSummary is the result as tables for the test log.
func protectionSummary(res *protectionResult) string {
	var s strings.Builder
	fmt.Fprintf(&s, "kernel %s, MemTotal %.0f MiB, guest %.0fs\n", res.Kernel, res.MemTotalMiB, res.GuestSeconds)
	mark := func(tg targetResult) {
		m := "MISSED"
		if tg.Met {
			m = "met"
		}
		fmt.Fprintf(&s, "target %-6s %s: %s\n", m, tg.Name, tg.Detail)
	}
	for _, sc := range res.Scenarios {
		fmt.Fprintf(&s, "\n%s: %s; BE anon %d MiB, window %.0fs\n", sc.Name, sc.Description, sc.Setup.BEAnonMiB, sc.Setup.WindowSeconds)
		fmt.Fprintf(&s, "%-8s %6s %8s %8s %8s %9s %9s %13s %9s %22s %8s %s\n", "run", "bursts", "p50 ms", "p90 ms", "p99 ms",
			"get p50us", "get p99us", "cache MiB", "refaults", "stall mem/cpu/io ms", "avail", "BE")
		for _, r := range sc.Runs {
			be := "-"
			if r.BE != nil {
				be = fmt.Sprintf("%s exit %d oom_kill %d, streamed %.0f MiB/s", r.BE.State, r.BE.ExitCode, r.BE.OOMKills, r.BE.StreamMiBs)
			}
			fmt.Fprintf(&s, "%-8s %6d %8.0f %8.0f %8.0f %9.0f %9.0f %6.0f->%-6.0f %9d %8.0f/%6.0f/%6.0f %8.0f %s\n", r.Name, r.Bursts,
				r.P50Ms, r.P90Ms, r.P99Ms, r.GetP50Us, r.GetP99Us, r.LSCacheStartMiB, r.LSCacheEndMiB, r.LSRefaultFile,
				r.LSPressureSomeMs, r.LSCPUSomeMs, r.LSIOSomeMs, r.MemAvailableMinMB, be)
		}
		for _, r := range sc.Runs {
			if r.PluginReclaimedMiB != nil {
				fmt.Fprintf(&s, "%-8s plugin CPU %.0f ms in the window; tier throttles %.0f; reclaimed MiB %v\n", r.Name, r.PluginCPUMs, r.TierThrottles, r.PluginReclaimedMiB)
			}
		}
		for _, tg := range sc.Targets {
			mark(tg)
		}
	}
	if bg := res.BackgroundReclaim; bg != nil {
		fmt.Fprintf(&s, "\nbackground reclaim, %.0fs: plugin CPU %.0f ms\n", bg.WindowSeconds, bg.PluginCPUMs)
		for _, b := range bg.Readers {
			fmt.Fprintf(&s, "%-11s ops %d p50 %.0f ms p99 %.0f ms max %.0f ms; max hits %d; stall %.0f ms; pgscan_direct %d pgsteal_direct %d; "+
				"plugin memory.reclaim %d requests asking %.0f MiB (%d partial), reclaimed %.0f MiB; own steal at most %d; current p95 %.0f MiB\n",
				b.Name, b.Ops, b.P50Ms, b.P99Ms, b.MaxMs, b.MaxHits, b.PressureSomeMs, b.PgscanDirect, b.PgstealDirect,
				b.PluginRequests, b.PluginAskedMiB, b.PluginPartial, b.PluginReclaimedMiB, b.OwnStealEstimate, b.CurrentP95MiB)
		}
		for _, tg := range bg.Targets {
			mark(tg)
		}
	}
	return s.String()
}

// pluginReclaims sums the plugin's watermark memory.reclaim requests for a
// pod from its debug log, after the first skip lines: how many, the bytes
// asked by those fully served, and how many the kernel served in part.
func pluginReclaims(log string, skip int, pod string) (n int, served int64, partial int) {
	lines := strings.Split(log, "\n")
	for _, line := range lines[min(skip, len(lines)):] {
		if !strings.Contains(line, "msg=reclaimed") || !strings.Contains(line, "reason=watermark") ||
			!strings.Contains(line, "pod="+pod+" ") {
			continue
		}
		n++
		var asked int64
		isPartial := false
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "asked="); ok {
				asked, _ = strconv.ParseInt(v, 10, 64)
			}
			if f == "partial=true" {
				isPartial = true
			}
		}
		if isPartial {
			partial++
		} else {
			served += asked
		}
	}
	return n, served, partial
}

// readOps reads "<kind> <ms>" lines from a file, skipping the first skip
// ones; a missing file has none.
func readOps(path, kind string, skip int) []float64 {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var ops []float64
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !ok || k != kind {
			continue
		}
		ms, err := strconv.ParseFloat(v, 64)
		if err != nil {
			continue
		}
		if n++; n > skip {
			ops = append(ops, ms)
		}
	}
	return ops
}

// percentile is the nearest-rank percentile p (0-100] of xs.
func percentile(xs []float64, p float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// pluginReclaimed reads what the plugin reclaimed from the LS and BE pods
// so far, by "pod/reason", from its metrics; nil without a plugin.
func pluginReclaimed(t *testing.T, p *plugin) map[string]float64 {
	if p == nil {
		return nil
	}
	m := map[string]float64{}
	for _, pod := range []string{"ls", "be"} {
		for _, reason := range []string{"watermark", "node-pressure", "proactive", "priority"} {
			m[pod+"/"+reason] = scrape(t, "nri_memqos_container_reclaimed_bytes_total", `pod="`+pod+`"`, `reason="`+reason+`"`)
		}
	}
	return m
}

// cpuTime is the user and system time the plugin process used so far; zero
// without a plugin.
func (p *plugin) cpuTime() time.Duration {
	if p == nil {
		return 0
	}
	stat := readFileOr(fmt.Sprintf("/proc/%d/stat", p.Pid()))
	// Fields after the command name, which ends with the last ')':
	// utime and stime are the 12th and 13th, in clock ticks (USER_HZ 100).
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// countLines counts the lines of a file; a missing file has none.
func countLines(path string) int {
	return strings.Count(readFileOr(path), "\n")
}

func mib(b int64) float64 { return float64(b) / float64(mi) }

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func readFileOr(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// optStat reads a memory.stat key of a cgroup that may be gone (0 then).
func optStat(dir, key string) int64 {
	return optKeyed(filepath.Join(dir, "memory.stat"), key)
}

// optEvent reads a memory.events key of a cgroup that may be gone.
func optEvent(dir, key string) int64 {
	return optKeyed(filepath.Join(dir, "memory.events"), key)
}

func optKeyed(path, key string) int64 {
	for _, line := range strings.Split(readFileOr(path), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// optSnapshot reads cgroup files that exist.
func optSnapshot(dir string, files []string) map[string]string {
	m := map[string]string{}
	for _, f := range files {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
			m[f] = strings.TrimSpace(string(b))
		}
	}
	return m
}

// ctrStatus is the part of crictl inspect's status the benchmark reports.
type ctrStatus struct {
	State    string `json:"state"`
	ExitCode int    `json:"exitCode"`
	Reason   string `json:"reason"`
}

func containerStatus(r *runtime, id string) (ctrStatus, error) {
	out, err := r.crictl("inspect", "-o", "json", id)
	if err != nil {
		return ctrStatus{}, err
	}
	var v struct {
		Status ctrStatus `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return ctrStatus{}, fmt.Errorf("crictl inspect %s: %w", id, err)
	}
	return v.Status, nil
}
