package reconcile

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/config"
)

// The benchmarks measure what the reconciler costs on a node with many
// containers. The target: at 1 000 containers and a 1 s interval, a steady
// tick (no reclaim, no drift check) costs at most 1% of one core (10 ms), and
// at most 1.5× BenchmarkRawRead, which only opens and reads memory.current
// and memory.events of every container. (Past eventsPerTick containers a
// steady tick reads memory.events of only some of them: see eventsPeriod.)
//
//	go test -run XXX -bench 'Tick|RawRead' -benchtime 20x -count 5 ./pkg/reconcile/
//
// Each reports ns/container, core%@1s (the share of one core a tick every
// second takes, from ns/op) and cpu-ns/op (the CPU time the process used per
// op, steadier than ns/op on a busy machine). The tree lives on tmpfs, so the
// numbers are syscall and CPU costs, not disk. Off /sys/fs/cgroup (as here)
// the cgroups library opens files with os.OpenFile, which costs three fcntl
// and an epoll_ctl more per open than its openat2 path on a real cgroup
// mount (9 system calls per file read instead of 5); there each read also
// runs the kernel's file handler.

var benchSizes = []int{100, 1000, 5000}

// benchUsage is every container's memory.current: below the watermarks and
// the guard's 95% of memory.high of each fixture class, so a tick has nothing
// to do but read.
const benchUsage = 300 * mi

// steadyDrift is a drift interval no benchmark reaches: after the first
// tick, BenchmarkTick measures ticks without the drift check.
const steadyDrift = time.Duration(1 << 62)

// benchTree is a synthetic cgroup v2 tree of n containers.
type benchTree struct {
	n       int
	fs      *cgroupfs.FS
	targets []Target
}

// benchRoot is a directory for the trees on tmpfs: the test's temporary
// directory when it is on tmpfs, else one under /dev/shm, else (no tmpfs)
// the temporary directory on disk.
func benchRoot(b *testing.B) string {
	dir := b.TempDir()
	if onTmpfs(dir) {
		return dir
	}
	if onTmpfs("/dev/shm") {
		if shm, err := os.MkdirTemp("/dev/shm", "nri-memqos-bench-"); err == nil {
			b.Cleanup(func() { _ = os.RemoveAll(shm) })
			return shm
		}
	}
	b.Logf("no tmpfs directory: the tree is on disk in %s", dir)
	return dir
}

func onTmpfs(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.TMPFS_MAGIC
}

// newBenchTree lays out n containers under root, rotating the three fixture
// classes, with every file a real cgroup v2 memory directory has.
func newBenchTree(b *testing.B, root string, n int) *benchTree {
	b.Helper()
	cfg := config.Default()
	classes := []struct {
		class           string
		request, limits int64
	}{
		{config.ClassBurstable, buRequest, buLimit},
		{config.ClassBestEffort, beRequest, beLimit},
		{config.ClassLatencySensitive, lsRequest, lsLimit},
	}
	tr := &benchTree{n: n, fs: &cgroupfs.FS{Root: root, Version: 2, PlainFiles: true}, targets: make([]Target, 0, n)}
	for i := range n {
		c := classes[i%len(classes)]
		d := decide(b, cfg, c.class, c.request, c.limits)
		id := fmt.Sprintf("%064x", i)
		pod := fmt.Sprintf("pod%08x-0000-4000-8000-%012x", i, i)
		rel := "/kubepods/" + c.class + "/" + pod + "/" + id
		writeV2(b, tr.fs, rel, d, v2Files{current: benchUsage, inactiveFile: 50 * mi, activeFile: 50 * mi, activeAnon: 200 * mi})
		tr.targets = append(tr.targets, Target{ID: id, Namespace: "ns", Pod: pod, Container: "app", Rel: rel, Decision: d})
	}
	return tr
}

// reconciler returns a reconciler over the tree; its source hands over the
// same slice each tick (the plugin's own listing is not measured).
func (tr *benchTree) reconciler(cfg *config.Config) (*Reconciler, *bytes.Buffer) {
	buf := &bytes.Buffer{}
	l := logrus.New()
	l.Out = buf
	return New(tr.fs, 2, cfg, func() []Target { return tr.targets },
		func() (int64, int64, error) { return 8 * gi, nodeTotal, nil }, l, 4096), buf
}

// check makes sure the ticks did read every container and had nothing to
// say: a tick that fails early would look cheap.
func (tr *benchTree) check(b *testing.B, r *Reconciler, logs *bytes.Buffer) {
	b.Helper()
	st := r.Stats()
	if len(st) != tr.n {
		b.Fatalf("Stats() has %d containers; want %d", len(st), tr.n)
	}
	for id, s := range st {
		if s.Usage != benchUsage || len(s.Reclaimed) != 0 || s.DriftRepairs != 0 {
			b.Fatalf("container %s: %+v; want usage %d, nothing reclaimed or repaired", id, s, benchUsage)
		}
	}
	if logs.Len() > 0 {
		b.Fatalf("the ticks logged:\n%s", logs)
	}
}

// report adds ns/container and core%@1s (the share of one core that one
// operation every second takes) to ns/op, and cpu-ns/op: the CPU time the
// process spent (user and system, all threads, the garbage collector
// included) from cpu0, which the timed loop started with. On a busy machine
// ns/op also counts the time other processes held the CPU; cpu-ns/op does
// not.
func report(b *testing.B, n int, cpu0 time.Duration) {
	cpu := processCPU(b) - cpu0
	nsOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(nsOp/float64(n), "ns/container")
	b.ReportMetric(nsOp/1e9*100, "core%@1s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// processCPU is the user and system CPU time the process used so far.
func processCPU(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// eachSize runs bench as a sub-benchmark "containers=N" for every size. The
// trees are made once per top-level benchmark (a sub-benchmark runs more than
// once) and outside the timer.
func eachSize(b *testing.B, bench func(b *testing.B, tr *benchTree)) {
	root := ""
	trees := map[int]*benchTree{}
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("containers=%d", n), func(sb *testing.B) {
			tr := trees[n]
			if tr == nil {
				if root == "" {
					root = benchRoot(b)
				}
				tr = newBenchTree(sb, filepath.Join(root, fmt.Sprintf("n%d", n)), n)
				trees[n] = tr
			}
			sb.ReportAllocs()
			sb.ResetTimer()
			bench(sb, tr)
		})
	}
}

// BenchmarkTick is one steady-state tick: after a first tick that took the
// event baselines and checked drift, each tick a second later reads usage
// and events of every container and has nothing else to do.
func BenchmarkTick(b *testing.B) {
	eachSize(b, func(b *testing.B, tr *benchTree) {
		cfg := config.Default()
		cfg.Reconciler.DriftInterval.Duration = steadyDrift
		r, logs := tr.reconciler(cfg)
		r.Tick(at(0))
		interval := cfg.Reconciler.Interval.Duration
		b.ResetTimer()
		cpu0 := processCPU(b)
		for i := range b.N {
			r.Tick(at(time.Duration(i+1) * interval))
		}
		b.StopTimer()
		report(b, tr.n, cpu0)
		if !r.lastDrift.Equal(at(0)) {
			b.Fatalf("a timed tick checked drift (last check %v)", r.lastDrift)
		}
		tr.check(b, r, logs)
	})
}

// BenchmarkTickDrift is a tick that includes the drift check (every
// driftInterval, 10 s by default), for information.
func BenchmarkTickDrift(b *testing.B) {
	eachSize(b, func(b *testing.B, tr *benchTree) {
		cfg := config.Default()
		r, logs := tr.reconciler(cfg)
		r.Tick(at(0))
		drift := cfg.Reconciler.DriftInterval.Duration
		b.ResetTimer()
		cpu0 := processCPU(b)
		for i := range b.N {
			r.Tick(at(time.Duration(i+1) * drift))
		}
		b.StopTimer()
		report(b, tr.n, cpu0)
		if want := at(time.Duration(b.N) * drift); !r.lastDrift.Equal(want) {
			b.Fatalf("last drift check %v; want %v", r.lastDrift, want)
		}
		tr.check(b, r, logs)
	})
}

// BenchmarkRawRead is the baseline: for every container, open, read and
// close exactly the files a steady tick reads (memory.current and
// memory.events), with os.ReadFile and nothing else.
func BenchmarkRawRead(b *testing.B) {
	eachSize(b, func(b *testing.B, tr *benchTree) {
		b.StopTimer()
		paths := make([]string, 0, 2*tr.n)
		for _, t := range tr.targets {
			dir := tr.fs.MemoryDir(t.Rel)
			paths = append(paths, filepath.Join(dir, "memory.current"), filepath.Join(dir, "memory.events"))
		}
		b.StartTimer()
		cpu0 := processCPU(b)
		total := 0
		for range b.N {
			for _, p := range paths {
				data, err := os.ReadFile(p)
				if err != nil {
					b.Fatal(err)
				}
				total += len(data)
			}
		}
		b.StopTimer()
		report(b, tr.n, cpu0)
		if total == 0 {
			b.Fatal("read nothing")
		}
	})
}
