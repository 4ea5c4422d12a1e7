// Package ocihook measures what the OCI hook of nri-memqos adds to a
// container's start and stop: the wall time of the hook process, from
// fork+exec to its exit as the runtime waits for it, of
//
//   - the slim hook nri-memqos-oci-hook (./plugin/oci-hook) and
//   - the full binary's subcommand `nri-memqos oci-hook` (./plugin),
//
// each at createRuntime (OCI state "creating": decide, raise the ancestors'
// protection, write the container's cgroup files, journal the promise) and
// at poststop ("stopped": withdraw), against a hook that does nothing in
// the same binary size class: nophook (links the slim hook's packages and
// code) and nopfull (links every package the plugin links; the test checks
// with `go list -deps` that the sets are the plugin's). A no-op only reads
// its stdin to EOF and exits 0, so it costs what exec, the Go runtime's
// start and the package initializers of that size class cost; a hook's
// ratio to its no-op is what its work adds.
//
// Each hook works on its own fake cgroup v2 tree (plain files, on tmpfs
// when /dev/shm is there, as /sys/fs/cgroup and /run are on a node) and
// state directory, laid out as CRI-O (the runtime without NRI the hook is
// for) lays out a node: pod cgroups kubepods/burstable/pod<uid>/crio-<id>,
// bundles <run>/overlay-containers/<id>/userdata with a config.json of a
// typical size (mounts, capabilities, masked paths, a seccomp profile of
// about 360 syscalls) and the pod's sandbox config.json (its labels) beside
// them. Every pod is latency-sensitive (memqos.nri.io/class) and asks for
// 1 to 8 MiB (memqos.nri.io/memory-request), one container per pod. Each
// hook is filled once (untimed) to BENCH_OCIHOOK_LIVE live containers; then,
// in each of BENCH_OCIHOOK_RUNS rounds, it creates a NEW container (a fresh
// id, cgroup and bundle) and stops the oldest live one, so its state file
// keeps about that many promises, as on a node. In every round all six
// timed runs (slim create, slim stop, full create, full stop, nophook,
// nopfull) take their turn in a shuffled order, so drift of the shared
// machine hits them alike.
//
// After the rounds the test checks that the hooks did their work: the
// kubepods and kubepods/burstable memory.min of each tree must equal the
// sum of its live containers' requests and every live container's
// memory.min its request; then it stops all containers (untimed) and checks
// that kubepods' memory.min fell to 0. Any run that exits non-zero or
// writes to stderr fails the test.
//
// Besides the wall time it records each run's own CPU time (getrusage of
// the child), how busy the machine was during the rounds and with what
// (Report.CPU: other work on a shared machine shows in the tails), and it
// runs each binary with GODEBUG=inittrace=1 for the median time its
// package initializers take (the part of the no-op's cost that grows with
// what the binary links).
//
// TestOCIHookCost runs only when BENCH_OUT names an output directory; it
// writes BENCH_OUT/ocihook.json (see Report) and logs a table. Knobs, both
// optional: BENCH_OCIHOOK_RUNS (default 1000: timed runs per hook and
// event, and per no-op) and BENCH_OCIHOOK_LIVE (default 100: live
// containers per hook). With the defaults it takes about a minute on a
// 2-CPU machine once the binaries are in the build cache.
package ocihook

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"nri-memqos/test/internal/gobuild"
)

const (
	// Schema names the format of ocihook.json.
	Schema = "nri-memqos/ocihook-bench/v1"

	defaultRuns = 1000
	defaultLive = 100
	// warmupRuns of each no-op run untimed before the rounds (the hooks
	// are warmed by the fill).
	warmupRuns = 20
	// initRuns of each binary run with GODEBUG=inittrace=1.
	initRuns = 21

	// targetP99 is the target for each hook and event.
	targetP99 = 5 * time.Millisecond

	mi = int64(1) << 20
	// limit is every container's memory limit.
	limit = 512 * mi

	annClass   = "memqos.nri.io/class"
	annRequest = "memqos.nri.io/memory-request"
	class      = "latency-sensitive"
)

// Stats are the wall times of one kind of run, in nanoseconds; the
// percentiles are nearest-rank.
type Stats struct {
	Count  int   `json:"count"`
	P50Ns  int64 `json:"p50_ns"`
	P90Ns  int64 `json:"p90_ns"`
	P99Ns  int64 `json:"p99_ns"`
	MaxNs  int64 `json:"max_ns"`
	MeanNs int64 `json:"mean_ns"`
	// CPUP50Ns is the median of the process's own CPU time, user and
	// kernel (getrusage of the child: all its threads, the kernel's exec
	// work after the fork included); a wall time beyond it was spent
	// waiting (for a CPU, for the pipes, for the exit's teardown).
	// Linux splits that time into user and kernel by tick samples, too
	// coarse for processes this short, so only the sum is kept.
	CPUP50Ns int64 `json:"cpu_p50_ns"`
}

// Ratio is a hook's figure over its no-op's.
type Ratio struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
}

// Binary is one executable measured.
type Binary struct {
	// Name is the command as a runtime's hook configuration runs it:
	// "nri-memqos-oci-hook", "nri-memqos oci-hook", "nophook", "nopfull".
	Name string `json:"name"`
	// Package is the Go package it is built from.
	Package   string `json:"package"`
	SizeBytes int64  `json:"size_bytes"`
	// InitPackages is the number of packages GODEBUG=inittrace=1 reports
	// initializing; InitClockNs the median over the init runs of the sum of
	// their clock time; InitDoneNs the median of when the last of them was
	// done, from the process's start.
	InitPackages int   `json:"init_packages"`
	InitClockNs  int64 `json:"init_clock_ns"`
	InitDoneNs   int64 `json:"init_done_ns"`
}

// Check is what the hooks of one variant left in its fake tree.
type Check struct {
	// Live is the number of live containers after the rounds;
	// WantMinBytes the sum of their requests.
	Live         int   `json:"live"`
	WantMinBytes int64 `json:"want_min_bytes"`
	// KubepodsMinBytes and BurstableMinBytes are memory.min of kubepods
	// and kubepods/burstable after the rounds.
	KubepodsMinBytes  int64 `json:"kubepods_min_bytes"`
	BurstableMinBytes int64 `json:"burstable_min_bytes"`
	// StateBytes is the size of the state directory's files after the
	// rounds.
	StateBytes int64 `json:"state_bytes"`
	// DrainedMinBytes is kubepods' memory.min after all containers were
	// stopped.
	DrainedMinBytes int64 `json:"drained_kubepods_min_bytes"`
	OK              bool  `json:"ok"`
}

// Variant is one hook and its no-op baseline of the same size class.
type Variant struct {
	// Name is "slim" (nri-memqos-oci-hook) or "full" (nri-memqos
	// oci-hook).
	Name     string `json:"name"`
	Hook     Binary `json:"hook"`
	Baseline Binary `json:"baseline"`
	// Create and Stop are the hook's runs with the states "creating"
	// and "stopped"; BaselineRuns the no-op's.
	Create       Stats `json:"create"`
	Stop         Stats `json:"stop"`
	BaselineRuns Stats `json:"baseline_runs"`
	// CreateRatio and StopRatio are the hook's over the no-op's.
	CreateRatio Ratio `json:"create_ratio"`
	StopRatio   Ratio `json:"stop_ratio"`
	// TargetMet: both the create and the stop p99 are under the target.
	TargetMet bool  `json:"target_met"`
	Check     Check `json:"check"`
}

// Target is one target of the issue and what this run measured for it.
type Target struct {
	// Name is e.g. "nri-memqos-oci-hook create p99".
	Name    string `json:"name"`
	ValueNs int64  `json:"value_ns"`
	LimitNs int64  `json:"limit_ns"`
	// Status is "met" (value < limit) or "missed".
	Status string `json:"status"`
}

// MachineCPU is how busy the machine was during the rounds, in percent of
// all its CPUs' time (from /proc/stat): a shared machine's other work
// shows in the tail of the figures.
type MachineCPU struct {
	// BusyPct is all non-idle time; OursPct the test's and its hook
	// processes' (getrusage), OthersPct the rest: other processes and the
	// kernel's work for them.
	BusyPct   float64 `json:"busy_pct"`
	OursPct   float64 `json:"ours_pct"`
	OthersPct float64 `json:"others_pct"`
	// StealPct is time the hypervisor gave to other guests.
	StealPct float64 `json:"steal_pct"`
}

// Report is the content of BENCH_OUT/ocihook.json.
type Report struct {
	Schema    string `json:"schema"`
	Date      string `json:"date"`
	GoVersion string `json:"go_version"`
	Kernel    string `json:"kernel"`
	NumCPU    int    `json:"num_cpu"`
	// Runs is the number of timed runs per hook and event and per no-op;
	// Live the live containers each hook keeps.
	Runs       int `json:"runs"`
	Live       int `json:"live"`
	WarmupRuns int `json:"warmup_runs"`
	InitRuns   int `json:"init_runs"`
	// ConfigJSONBytes is the size of a container's config.json,
	// StateJSONBytes of the OCI state on the hook's stdin.
	ConfigJSONBytes int    `json:"config_json_bytes"`
	StateJSONBytes  int    `json:"state_json_bytes"`
	TmpDir          string `json:"tmp_dir"`
	TargetP99Ns     int64  `json:"target_p99_ns"`
	// CPU is the machine's load during the rounds.
	CPU MachineCPU `json:"machine_cpu"`
	// Variants are "slim" and "full".
	Variants   []Variant `json:"variants"`
	Targets    []Target  `json:"targets"`
	DurationNs int64     `json:"duration_ns"`
}

// cpuTimes are the machine's CPU times from /proc/stat (in USER_HZ
// ticks) and this process's and its waited-for children's (in seconds).
type cpuTimes struct {
	total, idle, steal float64
	ours               float64
}

// userHZ is the unit of /proc/stat's times.
const userHZ = 100

func readCPUTimes() (cpuTimes, error) {
	var c cpuTimes
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return c, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return c, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	// user nice system idle iowait irq softirq steal (guest time is in user).
	for i := 1; i <= 8; i++ {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return c, fmt.Errorf("/proc/stat: %w", err)
		}
		c.total += v
		switch i {
		case 4, 5:
			c.idle += v
		case 8:
			c.steal = v
		}
	}
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err != nil {
			return c, err
		}
		c.ours += time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	return c, nil
}

// machineCPU is the load between two readings.
func machineCPU(a, b cpuTimes) MachineCPU {
	total := b.total - a.total
	if total <= 0 {
		return MachineCPU{}
	}
	pct := func(v float64) float64 { return math.Round(v/total*1000) / 10 }
	steal := b.steal - a.steal
	busy := total - (b.idle - a.idle) - steal
	// getrusage is exact, /proc/stat counts ticks: keep ours within busy.
	ours := min(busy, (b.ours-a.ours)*userHZ)
	return MachineCPU{BusyPct: pct(busy), OursPct: pct(ours), OthersPct: pct(max(0, busy-ours)), StealPct: pct(steal)}
}

func knob(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// world is one hook's node: its fake cgroup tree, state directory, the
// runtime's run directory with the bundles, and its live containers.
type world struct {
	name     string
	argv     []string // the hook's command line up to its flags
	cgRoot   string
	stateDir string
	run      string // CRI-O's runroot: <run>/overlay-containers/<id>/userdata
	config   string
	seq      int
	live     []*ctr // oldest first
	cfgBytes int
}

// ctr is one container of a world.
type ctr struct {
	id, sandbox, podUID string
	request             int64
	podDir, cgDir       string // absolute, in the fake tree
	bundle, sbDir       string // <run>/overlay-containers/<id>, .../<sandbox>
	creating, stopped   []byte // the OCI states
}

func (w *world) hookArgs() []string {
	return append(slices.Clone(w.argv), "-config", w.config, "-state-dir", w.stateDir)
}

// cgroupFiles are the memory files of a fresh cgroup v2 directory
// (memory.current tells the core's probe where kubepods is).
var cgroupFiles = [][2]string{
	{"memory.current", "0"}, {"memory.min", "0"}, {"memory.low", "0"}, {"memory.high", "max"},
	{"memory.max", "max"}, {"memory.swap.max", "0"}, {"memory.oom.group", "0"},
}

func makeCgroup(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range cgroupFiles {
		if err := os.WriteFile(filepath.Join(dir, f[0]), []byte(f[1]+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func newWorld(base, name string, argv []string) (*world, error) {
	w := &world{name: name, argv: argv}
	dir := filepath.Join(base, name)
	w.cgRoot, w.stateDir, w.run = filepath.Join(dir, "cg"), filepath.Join(dir, "state"), filepath.Join(dir, "run")
	w.config = filepath.Join(dir, "memqos.yaml")
	for _, l := range []string{"", "kubepods", "kubepods/burstable"} {
		if err := makeCgroup(filepath.Join(w.cgRoot, l)); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(w.cgRoot, "cgroup.controllers"), nil, 0o644); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf("cgroupVersion: 2\ncgroupRoot: %s\n", w.cgRoot)
	if err := os.WriteFile(w.config, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	return w, nil
}

// hexID is a 64-digit hex id, as runtimes give containers.
func hexID(parts ...any) string {
	h := sha256.Sum256(fmt.Append(nil, parts...))
	return hex.EncodeToString(h[:])
}

// newCtr lays out a new container of w as the runtime has it when it runs
// the createRuntime hook: its pod's cgroup and its own (fresh), its
// pod's sandbox bundle and its own bundle with config.json.
func (w *world) newCtr() (*ctr, error) {
	w.seq++
	c := &ctr{
		id:      hexID(w.name, "ctr", w.seq),
		sandbox: hexID(w.name, "sandbox", w.seq),
		request: int64(1+w.seq%8) * mi,
	}
	u := hexID(w.name, "pod", w.seq)
	c.podUID = u[0:8] + "-" + u[8:12] + "-" + u[12:16] + "-" + u[16:20] + "-" + u[20:32]
	podRel := "/kubepods/burstable/pod" + c.podUID
	cgRel := podRel + "/crio-" + c.id
	c.podDir, c.cgDir = filepath.Join(w.cgRoot, podRel), filepath.Join(w.cgRoot, cgRel)
	if err := makeCgroup(c.podDir); err != nil {
		return nil, err
	}
	if err := makeCgroup(c.cgDir); err != nil {
		return nil, err
	}
	c.bundle = filepath.Join(w.run, "overlay-containers", c.id, "userdata")
	c.sbDir = filepath.Join(w.run, "overlay-containers", c.sandbox)
	podName := fmt.Sprintf("web-%d", w.seq)
	labels := map[string]string{"app": "web", "pod-template-hash": u[:10], annClass: class}
	podAnn := map[string]string{annClass: class, annRequest: fmt.Sprintf("%dMi", c.request/mi), "kubernetes.io/config.seen": "2026-12-03T17:00:00.000000000Z", "kubernetes.io/config.source": "api"}
	sb, err := sandboxConfig(c, podName, labels, podAnn)
	if err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(c.sbDir, "userdata", "config.json"), sb); err != nil {
		return nil, err
	}
	spec := containerSpec(c, podName, cgRel, labels, podAnn)
	cfg, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	w.cfgBytes = len(cfg)
	if err := writeFile(filepath.Join(c.bundle, "config.json"), cfg); err != nil {
		return nil, err
	}
	// runc hands the hooks the config's annotations in the state.
	for _, s := range []struct {
		dst    *[]byte
		status specs.ContainerState
		pid    int
	}{{&c.creating, specs.StateCreating, 4242 + w.seq}, {&c.stopped, specs.StateStopped, 0}} {
		*s.dst, err = json.Marshal(specs.State{Version: specs.Version, ID: c.id, Status: s.status, Pid: s.pid, Bundle: c.bundle, Annotations: spec.Annotations})
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

func writeFile(name string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	return os.WriteFile(name, data, 0o644)
}

// criOAnnotations are the annotations CRI-O gives a container's (or a
// sandbox's) config.json, with the pod's annotations copied in.
func criOAnnotations(c *ctr, podName, kind, name string, labels, podAnn map[string]string) map[string]string {
	lj, _ := json.Marshal(labels)
	aj, _ := json.Marshal(podAnn)
	a := map[string]string{
		"io.container.manager":                             "cri-o",
		"io.kubernetes.cri-o.ContainerType":                kind,
		"io.kubernetes.cri-o.SandboxID":                    c.sandbox,
		"io.kubernetes.cri-o.Labels":                       string(lj),
		"io.kubernetes.cri-o.Annotations":                  string(aj),
		"io.kubernetes.cri-o.Created":                      "2026-12-03T17:00:00.123456789Z",
		"io.kubernetes.cri-o.Image":                        "sha256:" + hexID("image"),
		"io.kubernetes.cri-o.ImageName":                    "registry.example/web:1.27",
		"io.kubernetes.cri-o.LogPath":                      "/var/log/pods/default_" + podName + "_" + c.podUID + "/" + name + "/0.log",
		"io.kubernetes.cri-o.Name":                         "k8s_" + name + "_" + podName + "_default_" + c.podUID + "_0",
		"io.kubernetes.cri-o.ResolvPath":                   "/run/containers/storage/overlay-containers/" + c.sandbox + "/userdata/resolv.conf",
		"io.kubernetes.cri-o.SandboxName":                  "k8s_" + podName + "_default_" + c.podUID + "_0",
		"io.kubernetes.cri-o.SeccompProfilePath":           "RuntimeDefault",
		"io.kubernetes.pod.namespace":                      "default",
		"io.kubernetes.pod.name":                           podName,
		"io.kubernetes.pod.uid":                            c.podUID,
		"io.kubernetes.pod.terminationGracePeriod":         "30",
		"io.kubernetes.container.name":                     name,
		"io.kubernetes.container.restartCount":             "0",
		"io.kubernetes.container.terminationMessagePath":   "/dev/termination-log",
		"io.kubernetes.container.terminationMessagePolicy": "File",
	}
	for k, v := range podAnn {
		a[k] = v
	}
	return a
}

// sandboxConfig is the pod sandbox's config.json, of which the hook reads
// the annotations (the pod's labels).
func sandboxConfig(c *ctr, podName string, labels, podAnn map[string]string) ([]byte, error) {
	return json.Marshal(specs.Spec{
		Version:     specs.Version,
		Process:     &specs.Process{Args: []string{"/pause"}, Cwd: "/"},
		Root:        &specs.Root{Path: "rootfs", Readonly: true},
		Annotations: criOAnnotations(c, podName, "sandbox", "POD", labels, podAnn),
	})
}

// containerSpec is a container's config.json as CRI-O writes it for a
// typical pod (contents of the usual size; the seccomp profile's syscall
// names stand in for the about 360 of the runtime default profile).
func containerSpec(c *ctr, podName, cgroupsPath string, labels, podAnn map[string]string) *specs.Spec {
	caps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_KILL"}
	oom := 968
	lim := limit
	shares, quota, period, pids := uint64(512), int64(50000), uint64(100000), int64(4096)
	var mounts []specs.Mount
	for _, m := range [][3]string{
		{"/proc", "proc", "proc"}, {"/dev", "tmpfs", "tmpfs"}, {"/dev/pts", "devpts", "devpts"},
		{"/dev/mqueue", "mqueue", "mqueue"}, {"/sys", "sysfs", "sysfs"}, {"/sys/fs/cgroup", "cgroup", "cgroup"},
		{"/dev/shm", "bind", "/run/containers/storage/overlay-containers/" + c.sandbox + "/userdata/shm"},
		{"/etc/resolv.conf", "bind", "/run/containers/storage/overlay-containers/" + c.sandbox + "/userdata/resolv.conf"},
		{"/etc/hostname", "bind", "/run/containers/storage/overlay-containers/" + c.sandbox + "/userdata/hostname"},
		{"/etc/hosts", "bind", "/var/lib/kubelet/pods/" + c.podUID + "/etc-hosts"},
		{"/dev/termination-log", "bind", "/var/lib/kubelet/pods/" + c.podUID + "/containers/web/0"},
		{"/var/run/secrets/kubernetes.io/serviceaccount", "bind", "/var/lib/kubelet/pods/" + c.podUID + "/volumes/kubernetes.io~projected/kube-api-access-x7q2z"},
	} {
		mounts = append(mounts, specs.Mount{Destination: m[0], Type: m[1], Source: m[2], Options: []string{"nosuid", "noexec", "nodev", "rbind", "ro"}})
	}
	var sys []string
	for i := range 360 {
		sys = append(sys, fmt.Sprintf("syscall_%03d", i))
	}
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			User: specs.User{UID: 101, GID: 101, AdditionalGids: []uint32{101}},
			Args: []string{"nginx", "-g", "daemon off;"},
			Env: []string{
				"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", "HOSTNAME=" + podName,
				"NGINX_VERSION=1.27.0", "KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT=443",
				"KUBERNETES_PORT=tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP=tcp://10.96.0.1:443",
				"KUBERNETES_PORT_443_TCP_PROTO=tcp", "KUBERNETES_PORT_443_TCP_PORT=443", "KUBERNETES_PORT_443_TCP_ADDR=10.96.0.1",
			},
			Cwd:             "/",
			Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
			OOMScoreAdj:     &oom,
			ApparmorProfile: "crio-default",
			SelinuxLabel:    "system_u:system_r:container_t:s0:c123,c456",
		},
		Root:        &specs.Root{Path: "/var/lib/containers/storage/overlay/" + hexID("layer", c.id) + "/merged"},
		Hostname:    podName,
		Mounts:      mounts,
		Annotations: criOAnnotations(c, podName, "container", "web", labels, podAnn),
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
				Memory:  &specs.LinuxMemory{Limit: &lim},
				CPU:     &specs.LinuxCPU{Shares: &shares, Quota: &quota, Period: &period},
				Pids:    &specs.LinuxPids{Limit: &pids},
			},
			CgroupsPath: cgroupsPath,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.MountNamespace},
				{Type: specs.IPCNamespace, Path: "/var/run/ipcns/" + c.sandbox},
				{Type: specs.UTSNamespace, Path: "/var/run/utsns/" + c.sandbox},
				{Type: specs.NetworkNamespace, Path: "/var/run/netns/" + c.sandbox},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
				"/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/dev/block", "/sys/devices/virtual/powercap", "/proc/interrupts",
			},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
			Seccomp: &specs.LinuxSeccomp{
				DefaultAction: specs.ActErrno,
				Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
				Syscalls:      []specs.LinuxSyscall{{Names: sys, Action: specs.ActAllow}},
			},
		},
	}
}

// runner starts processes the way a runtime starts a hook: stdin the OCI
// state, stdout nowhere, stderr a file checked after each run, an empty
// environment.
type runner struct{ stderr *os.File }

// sample is one run: its wall time and the process's CPU time.
type sample struct{ wall, cpu time.Duration }

// run times one process from fork+exec to its exit; it fails when the
// process exits non-zero or writes to stderr.
func (r *runner) run(argv []string, stdin []byte) (sample, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stderr = r.stderr
	cmd.Env = []string{}
	t0 := time.Now()
	err := cmd.Run()
	d := sample{wall: time.Since(t0)}
	if ps := cmd.ProcessState; ps != nil {
		d.cpu = ps.UserTime() + ps.SystemTime()
	}
	fi, serr := r.stderr.Stat()
	if serr != nil {
		return d, serr
	}
	if fi.Size() > 0 || err != nil {
		msg, _ := os.ReadFile(r.stderr.Name())
		_ = r.stderr.Truncate(0)
		_, _ = r.stderr.Seek(0, 0)
		return d, fmt.Errorf("%s: %v; stderr: %q", strings.Join(argv, " "), err, strings.TrimSpace(string(msg)))
	}
	return d, nil
}

// create runs w's hook for a new container and makes it the newest live
// one.
func (w *world) create(r *runner) (sample, error) {
	c, err := w.newCtr()
	if err != nil {
		return sample{}, err
	}
	d, err := r.run(w.hookArgs(), c.creating)
	if err != nil {
		return d, fmt.Errorf("%s create %s: %w", w.name, c.id, err)
	}
	w.live = append(w.live, c)
	return d, nil
}

// stop runs w's hook for the oldest live container at poststop, checks
// that its pod's protection was withdrawn and removes its cgroups and
// bundles, as the runtime and kubelet do.
func (w *world) stop(r *runner) (sample, error) {
	if len(w.live) == 0 {
		return sample{}, errors.New(w.name + ": no live container to stop")
	}
	c := w.live[0]
	w.live = w.live[1:]
	d, err := r.run(w.hookArgs(), c.stopped)
	if err != nil {
		return d, fmt.Errorf("%s stop %s: %w", w.name, c.id, err)
	}
	if v, err := readInt(filepath.Join(c.podDir, "memory.min")); err != nil || v != 0 {
		return d, fmt.Errorf("%s stop %s: pod memory.min = %d (%v) after poststop, want 0", w.name, c.id, v, err)
	}
	for _, dir := range []string{c.podDir, filepath.Dir(c.bundle), c.sbDir} {
		if err := os.RemoveAll(dir); err != nil {
			return d, err
		}
	}
	return d, nil
}

func readInt(name string) (int64, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// check compares w's tree with its live containers' requests.
func (w *world) check() (Check, error) {
	ck := Check{Live: len(w.live)}
	var errs []error
	for _, c := range w.live {
		ck.WantMinBytes += c.request
		if v, err := readInt(filepath.Join(c.cgDir, "memory.min")); err != nil || v != c.request {
			errs = append(errs, fmt.Errorf("%s: container %s memory.min = %d (%v), want its request %d", w.name, c.id[:12], v, err, c.request))
		}
	}
	var err error
	if ck.KubepodsMinBytes, err = readInt(filepath.Join(w.cgRoot, "kubepods", "memory.min")); err != nil {
		errs = append(errs, err)
	}
	if ck.BurstableMinBytes, err = readInt(filepath.Join(w.cgRoot, "kubepods", "burstable", "memory.min")); err != nil {
		errs = append(errs, err)
	}
	if ck.KubepodsMinBytes != ck.WantMinBytes || ck.BurstableMinBytes != ck.WantMinBytes {
		errs = append(errs, fmt.Errorf("%s: kubepods memory.min = %d, kubepods/burstable %d; want the sum of the %d live containers' requests, %d",
			w.name, ck.KubepodsMinBytes, ck.BurstableMinBytes, ck.Live, ck.WantMinBytes))
	}
	ents, err := os.ReadDir(w.stateDir)
	if err != nil {
		errs = append(errs, err)
	}
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			ck.StateBytes += fi.Size()
		}
	}
	return ck, errors.Join(errs...)
}

// summarize computes the figures of a set of runs.
func summarize(runs []sample) Stats {
	if len(runs) == 0 {
		return Stats{}
	}
	sorted := func(f func(sample) time.Duration) []time.Duration {
		s := make([]time.Duration, 0, len(runs))
		for _, r := range runs {
			s = append(s, f(r))
		}
		slices.Sort(s)
		return s
	}
	s := sorted(func(r sample) time.Duration { return r.wall })
	var sum time.Duration
	for _, v := range s {
		sum += v
	}
	return Stats{
		Count:    len(s),
		P50Ns:    rank(s, 0.50).Nanoseconds(),
		P90Ns:    rank(s, 0.90).Nanoseconds(),
		P99Ns:    rank(s, 0.99).Nanoseconds(),
		MaxNs:    s[len(s)-1].Nanoseconds(),
		MeanNs:   (sum / time.Duration(len(s))).Nanoseconds(),
		CPUP50Ns: rank(sorted(func(r sample) time.Duration { return r.cpu }), 0.50).Nanoseconds(),
	}
}

// rank is the nearest-rank percentile of sorted durations.
func rank(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return math.Round(float64(a)/float64(b)*1000) / 1000
}

// initLine is a line of GODEBUG=inittrace=1.
var initLine = regexp.MustCompile(`^init (\S+) @([0-9.]+) ms, ([0-9.]+) ms clock`)

// parseInitTrace sums the clock time of the package initializers in a
// GODEBUG=inittrace=1 output and tells when the last one was done (from
// the process's start), both in ns, and how many there were.
func parseInitTrace(out string) (packages int, clockNs, doneNs int64) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		m := initLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		at, _ := strconv.ParseFloat(m[2], 64)
		clock, _ := strconv.ParseFloat(m[3], 64)
		packages++
		clockNs += int64(math.Round(clock * 1e6))
		doneNs = max(doneNs, int64(math.Round((at+clock)*1e6)))
	}
	return packages, clockNs, doneNs
}

// initTrace runs a binary initRuns times with GODEBUG=inittrace=1 and an
// empty stdin (a hook fails then, after its initializers ran) and records
// the medians in b.
func initTrace(b *Binary, argv []string) error {
	var clocks, dones []int64
	for range initRuns {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = []string{"GODEBUG=inittrace=1"}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		_ = cmd.Run() // a hook exits 1 without a state
		n, clock, done := parseInitTrace(stderr.String())
		if n == 0 {
			return fmt.Errorf("%s: no inittrace output: %q", b.Name, stderr.String())
		}
		b.InitPackages = n
		clocks, dones = append(clocks, clock), append(dones, done)
	}
	slices.Sort(clocks)
	slices.Sort(dones)
	b.InitClockNs, b.InitDoneNs = clocks[len(clocks)/2], dones[len(dones)/2]
	return nil
}

// goListDeps is the set of packages pkg links, without pkg itself.
func goListDeps(pkg string) ([]string, error) {
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps %s: %w", pkg, err)
	}
	deps := slices.DeleteFunc(strings.Fields(string(out)), func(p string) bool { return p == pkg })
	slices.Sort(deps)
	return deps, nil
}

func TestOCIHookCost(t *testing.T) {
	out := os.Getenv("BENCH_OUT")
	if out == "" {
		t.Skip("BENCH_OUT not set (make bench sets it)")
	}
	runs, live := knob(t, "BENCH_OCIHOOK_RUNS", defaultRuns), knob(t, "BENCH_OCIHOOK_LIVE", defaultLive)
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	began := time.Now()

	// The binaries, and the check that each no-op links what its hook
	// links.
	type build struct {
		bin  *Binary
		path string
	}
	bins := map[string]*build{
		"slim":     {bin: &Binary{Name: "nri-memqos-oci-hook", Package: "nri-memqos/plugin/oci-hook"}},
		"full":     {bin: &Binary{Name: "nri-memqos oci-hook", Package: "nri-memqos/plugin"}},
		"nop-slim": {bin: &Binary{Name: "nophook", Package: "nri-memqos/test/bench/ocihook/nophook"}},
		"nop-full": {bin: &Binary{Name: "nopfull", Package: "nri-memqos/test/bench/ocihook/nopfull"}},
	}
	dir := t.TempDir()
	for _, k := range []string{"slim", "full", "nop-slim", "nop-full"} {
		b := bins[k]
		path, err := gobuild.Binary(dir, k, b.bin.Package)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		b.path, b.bin.SizeBytes = path, fi.Size()
	}
	for _, pair := range [][2]string{{"slim", "nop-slim"}, {"full", "nop-full"}} {
		hook, err := goListDeps(bins[pair[0]].bin.Package)
		if err != nil {
			t.Fatal(err)
		}
		nop, err := goListDeps(bins[pair[1]].bin.Package)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(hook, nop) {
			var only []string
			for _, p := range hook {
				if _, found := slices.BinarySearch(nop, p); !found {
					only = append(only, p)
				}
			}
			for _, p := range nop {
				if _, found := slices.BinarySearch(hook, p); !found {
					only = append(only, "+"+p)
				}
			}
			t.Fatalf("%s does not link the same packages as %s (differing: %v): make the no-op import what the hook imports", bins[pair[1]].bin.Package, bins[pair[0]].bin.Package, only)
		}
	}

	// Everything the hooks touch lives on tmpfs, as /sys/fs/cgroup and
	// /run do on a node.
	parent := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		parent = "/dev/shm"
	}
	base, err := os.MkdirTemp(parent, "nri-memqos-ocihook")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(base); err != nil {
			t.Error(err)
		}
	})
	errFile, err := os.Create(filepath.Join(base, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	r := &runner{stderr: errFile}

	slim, err := newWorld(base, "slim", []string{bins["slim"].path})
	if err != nil {
		t.Fatal(err)
	}
	full, err := newWorld(base, "full", []string{bins["full"].path, "oci-hook"})
	if err != nil {
		t.Fatal(err)
	}
	worlds := []*world{slim, full}

	// Fill (untimed; it warms the hooks' pages too), and warm the no-ops.
	for range live {
		for _, w := range worlds {
			if _, err := w.create(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The no-ops read the state of a container as large as the hooks'.
	nopState := slim.live[len(slim.live)-1].creating
	for range warmupRuns {
		for _, k := range []string{"nop-slim", "nop-full"} {
			if _, err := r.run([]string{bins[k].path}, nopState); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The rounds.
	const (
		slimCreate = iota
		slimStop
		fullCreate
		fullStop
		nopSlim
		nopFull
		numOps
	)
	lat := make([][]sample, numOps)
	ops := []int{slimCreate, slimStop, fullCreate, fullStop, nopSlim, nopFull}
	rng := rand.New(rand.NewPCG(1, 2))
	cpu0, err := readCPUTimes()
	if err != nil {
		t.Fatal(err)
	}
	for range runs {
		rng.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
		for _, op := range ops {
			var d sample
			var err error
			switch op {
			case slimCreate:
				d, err = slim.create(r)
			case slimStop:
				d, err = slim.stop(r)
			case fullCreate:
				d, err = full.create(r)
			case fullStop:
				d, err = full.stop(r)
			case nopSlim:
				d, err = r.run([]string{bins["nop-slim"].path}, nopState)
			case nopFull:
				d, err = r.run([]string{bins["nop-full"].path}, nopState)
			}
			if err != nil {
				t.Fatal(err)
			}
			lat[op] = append(lat[op], d)
		}
	}
	timed := time.Since(began)
	cpu1, err := readCPUTimes()
	if err != nil {
		t.Fatal(err)
	}

	// Did the hooks do their work?
	checks := map[string]Check{}
	for _, w := range worlds {
		ck, err := w.check()
		ck.OK = err == nil
		if err != nil {
			t.Error(err)
		}
		for len(w.live) > 0 {
			if _, err := w.stop(r); err != nil {
				t.Fatal(err)
			}
		}
		if ck.DrainedMinBytes, err = readInt(filepath.Join(w.cgRoot, "kubepods", "memory.min")); err != nil || ck.DrainedMinBytes != 0 {
			ck.OK = false
			t.Errorf("%s: kubepods memory.min = %d (%v) after all containers stopped, want 0", w.name, ck.DrainedMinBytes, err)
		}
		checks[w.name] = ck
	}

	// Package initializers.
	for _, k := range []string{"slim", "full", "nop-slim", "nop-full"} {
		argv := []string{bins[k].path}
		if k == "full" {
			argv = append(argv, "oci-hook")
		}
		if err := initTrace(bins[k].bin, argv); err != nil {
			t.Fatal(err)
		}
	}

	rep := Report{
		Schema:          Schema,
		Date:            time.Now().UTC().Format(time.RFC3339),
		GoVersion:       runtime.Version(),
		NumCPU:          runtime.NumCPU(),
		Runs:            runs,
		Live:            live,
		WarmupRuns:      warmupRuns,
		InitRuns:        initRuns,
		ConfigJSONBytes: slim.cfgBytes,
		StateJSONBytes:  len(nopState),
		TmpDir:          base,
		TargetP99Ns:     targetP99.Nanoseconds(),
		CPU:             machineCPU(cpu0, cpu1),
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		rep.Kernel = strings.TrimSpace(string(b))
	}
	for _, v := range []struct {
		name, hook, nop      string
		create, stop, nopLat int
	}{{"slim", "slim", "nop-slim", slimCreate, slimStop, nopSlim}, {"full", "full", "nop-full", fullCreate, fullStop, nopFull}} {
		vr := Variant{
			Name:         v.name,
			Hook:         *bins[v.hook].bin,
			Baseline:     *bins[v.nop].bin,
			Create:       summarize(lat[v.create]),
			Stop:         summarize(lat[v.stop]),
			BaselineRuns: summarize(lat[v.nopLat]),
			Check:        checks[v.name],
		}
		vr.CreateRatio = Ratio{P50: ratio(vr.Create.P50Ns, vr.BaselineRuns.P50Ns), P99: ratio(vr.Create.P99Ns, vr.BaselineRuns.P99Ns)}
		vr.StopRatio = Ratio{P50: ratio(vr.Stop.P50Ns, vr.BaselineRuns.P50Ns), P99: ratio(vr.Stop.P99Ns, vr.BaselineRuns.P99Ns)}
		vr.TargetMet = true
		for _, ev := range []struct {
			name string
			s    Stats
		}{{"create", vr.Create}, {"stop", vr.Stop}} {
			tg := Target{Name: vr.Hook.Name + " " + ev.name + " p99", ValueNs: ev.s.P99Ns, LimitNs: targetP99.Nanoseconds(), Status: "met"}
			if ev.s.P99Ns >= tg.LimitNs {
				tg.Status, vr.TargetMet = "missed", false
			}
			rep.Targets = append(rep.Targets, tg)
		}
		rep.Variants = append(rep.Variants, vr)
	}
	rep.DurationNs = time.Since(began).Nanoseconds()

	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(out, "ocihook.json")
	if err := os.WriteFile(file, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Log(summary(&rep, file, timed))
}

func msec(ns int64) string { return fmt.Sprintf("%.2f ms", float64(ns)/1e6) }

// summary is the test's closing log.
func summary(rep *Report, file string, timed time.Duration) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "OCI hook cost: %d runs per hook and event and per no-op, %d live containers per hook, %d CPUs, config.json %d B, state %d B; %v to the end of the rounds\n",
		rep.Runs, rep.Live, rep.NumCPU, rep.ConfigJSONBytes, rep.StateJSONBytes, timed.Round(time.Millisecond))
	fmt.Fprintf(&sb, "  %-20s %-7s %9s %9s %9s %9s %9s %7s %7s %9s %8s %11s\n", "binary", "run", "size MiB", "p50", "p90", "p99", "max", "/nop50", "/nop99", "CPU p50", "init", "target p99")
	line := func(b Binary, run string, s Stats, r *Ratio, target string) {
		rs := [2]string{"", ""}
		if r != nil {
			rs = [2]string{fmt.Sprintf("%.2f", r.P50), fmt.Sprintf("%.2f", r.P99)}
		}
		fmt.Fprintf(&sb, "  %-20s %-7s %9.1f %9s %9s %9s %9s %7s %7s %9s %8s %11s\n", b.Name, run, float64(b.SizeBytes)/(1<<20),
			msec(s.P50Ns), msec(s.P90Ns), msec(s.P99Ns), msec(s.MaxNs), rs[0], rs[1], msec(s.CPUP50Ns), msec(b.InitClockNs), target)
	}
	status := func(s Stats) string {
		if s.P99Ns < rep.TargetP99Ns {
			return "met"
		}
		return "MISSED"
	}
	for _, v := range rep.Variants {
		line(v.Hook, "create", v.Create, &v.CreateRatio, status(v.Create))
		line(v.Hook, "stop", v.Stop, &v.StopRatio, status(v.Stop))
		line(v.Baseline, "no-op", v.BaselineRuns, nil, "")
	}
	for _, v := range rep.Variants {
		fmt.Fprintf(&sb, "  %s: %d live, kubepods memory.min %d = sum of requests %d; state %d B; after the drain %d\n",
			v.Name, v.Check.Live, v.Check.KubepodsMinBytes, v.Check.WantMinBytes, v.Check.StateBytes, v.Check.DrainedMinBytes)
	}
	fmt.Fprintf(&sb, "  machine CPU during the rounds: %.1f%% busy, %.1f%% this test and its hooks, %.1f%% others, %.1f%% steal\n", rep.CPU.BusyPct, rep.CPU.OursPct, rep.CPU.OthersPct, rep.CPU.StealPct)
	fmt.Fprintf(&sb, "  (CPU: median CPU time of the process, user and kernel; init: median sum of the package initializers' clock time, GODEBUG=inittrace=1)\n  wrote %s", file)
	return sb.String()
}

// TestParseInitTrace checks the reading of GODEBUG=inittrace=1 output (it
// runs without BENCH_OUT).
func TestParseInitTrace(t *testing.T) {
	out := "init internal/bytealg @0.007 ms, 0 ms clock, 0 bytes, 0 allocs\n" +
		"init runtime @0.046 ms, 0.050 ms clock, 0 bytes, 0 allocs\n" +
		"nri-memqos-oci-hook: reading the OCI state from stdin: EOF\n" +
		"init github.com/prometheus/client_golang/prometheus @7.1 ms, 0.60 ms clock, 64656 bytes, 249 allocs\n"
	n, clock, done := parseInitTrace(out)
	if n != 3 || clock != 650_000 || done != 7_700_000 {
		t.Errorf("parseInitTrace = %d packages, %d ns clock, done at %d ns; want 3, 650000, 7700000", n, clock, done)
	}
}
