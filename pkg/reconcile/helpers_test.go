package reconcile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/config"
	"nri-memqos/pkg/policy"
)

const (
	mi = int64(1) << 20
	gi = int64(1) << 30

	nodeTotal = 16 * gi

	// Fixture decisions (config.Default(), 16Gi node, 4096-byte pages).
	buRequest = 256 * mi  // burstable: memory.low = request
	buHigh    = 993210368 // alignDown(256Mi + 0.9 × 768Mi)
	buLimit   = 1 * gi
	beRequest = 128 * mi
	beHigh    = 885833728 // alignDown(128Mi + 0.8 × 896Mi)
	beLimit   = 1 * gi
	lsRequest = 512 * mi // latency-sensitive: memory.min = request
	lsLimit   = 1 * gi

	// Burstable watermarks: 0.9 × 993210368 = 893889331.2 starts,
	// int64(0.8 × 993210368) = 794568294 is the target.
	buHighWatermark = 893889331
	buLowWatermark  = 794568294

	// Guard step for the burstable fixture: alignUp(0.25 × (1Gi − 993210368)).
	buGuardStep = 20135936
)

var base = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return base.Add(d) }

// decide runs the real policy for a container of a pod labelled with class
// and annotated with its memory request.
func decide(t testing.TB, cfg *config.Config, class string, request, limit int64) *policy.Decision {
	t.Helper()
	qos := map[string]string{
		config.ClassBurstable:        "/kubepods/burstable/pod-uid",
		config.ClassBestEffort:       "/kubepods/burstable/pod-uid",
		config.ClassLatencySensitive: "/kubepods/pod-uid",
	}[class]
	p := policy.Pod{
		Namespace: "ns", Name: "pod", UID: "uid",
		Labels:       map[string]string{policy.LabelClass: class},
		Annotations:  map[string]string{policy.AnnotationRequest: strconv.FormatInt(request, 10)},
		CgroupParent: qos,
	}
	d, err := policy.Decide(cfg, p, policy.Container{Name: "app", Limit: limit}, policy.Node{MemTotal: nodeTotal, PageSize: 4096})
	if err != nil || d == nil {
		t.Fatalf("Decide(%s, request %d, limit %d) = %+v, %v", class, request, limit, d, err)
	}
	return d
}

func TestFixtureDecisions(t *testing.T) {
	cfg := config.Default()
	tests := []struct {
		name     string
		d        *policy.Decision
		want     map[string]string
		priority int
	}{
		{name: "burstable", d: decide(t, cfg, config.ClassBurstable, buRequest, buLimit), priority: 50,
			want: map[string]string{"memory.low": "268435456", "memory.high": "993210368"}},
		{name: "best-effort", d: decide(t, cfg, config.ClassBestEffort, beRequest, beLimit), priority: 0,
			want: map[string]string{"memory.high": "885833728", "memory.oom.group": "1"}},
		{name: "latency-sensitive", d: decide(t, cfg, config.ClassLatencySensitive, lsRequest, lsLimit), priority: 100,
			want: map[string]string{"memory.min": "536870912", "memory.swap.max": "0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.d.UnifiedV2()
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("UnifiedV2() = %v; want %v", got, tc.want)
			}
			if tc.d.Reclaim == nil || tc.d.Reclaim.Priority != tc.priority {
				t.Fatalf("Reclaim = %+v; want priority %d", tc.d.Reclaim, tc.priority)
			}
		})
	}
}

// ---- a fake cgroup tree ----

type v2Files struct {
	current                                            int64
	inactiveFile, activeFile, inactiveAnon, activeAnon int64
	some, full                                         float64
	someTotal, refaultFile, steal                      uint64
}

func memoryStat(f v2Files) string {
	return fmt.Sprintf(`anon %d
file %d
kernel 5242880
kernel_stack 163840
pagetables 1048576
sec_pagetables 0
percpu 0
sock 0
vmalloc 0
shmem 0
zswap 0
zswapped 0
file_mapped 52428800
file_dirty 0
file_writeback 0
swapcached 0
anon_thp 0
file_thp 0
shmem_thp 0
inactive_anon %d
active_anon %d
inactive_file %d
active_file %d
unevictable 0
slab_reclaimable 1048576
slab_unreclaimable 1048576
slab 2097152
workingset_refault_anon 0
workingset_refault_file %d
workingset_activate_anon 0
workingset_activate_file 0
workingset_restore_anon 0
workingset_restore_file 0
workingset_nodereclaim 0
pgscan 0
pgsteal %d
pgscan_kswapd 0
pgscan_direct 0
pgscan_khugepaged 0
pgsteal_kswapd 0
pgsteal_direct 0
pgsteal_khugepaged 0
pgfault 12345
pgmajfault 12
pgrefill 0
pgactivate 0
pgdeactivate 0
pglazyfree 0
pglazyfreed 0
zswpin 0
zswpout 0
zswpwb 0
thp_fault_alloc 0
thp_collapse_alloc 0
thp_swpout 0
thp_swpout_fallback 0
`, f.inactiveAnon+f.activeAnon, f.inactiveFile+f.activeFile, f.inactiveAnon, f.activeAnon, f.inactiveFile, f.activeFile, f.refaultFile, f.steal)
}

func pressure(some, full float64) string { return pressureTotal(some, full, 0) }

func pressureTotal(some, full float64, someTotal uint64) string {
	return fmt.Sprintf("some avg10=%.2f avg60=0.00 avg300=0.00 total=%d\nfull avg10=%.2f avg60=0.00 avg300=0.00 total=0\n", some, someTotal, full)
}

const zeroEvents = "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n"

func writeFile(t testing.TB, dir, file, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, dir, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeV2 lays out a container's cgroup v2 memory files, with the values the
// plugin set (the decision's) in place.
func writeV2(t testing.TB, fs *cgroupfs.FS, rel string, d *policy.Decision, f v2Files) string {
	t.Helper()
	dir := fs.MemoryDir(rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"memory.current":   strconv.FormatInt(f.current, 10) + "\n",
		"memory.events":    zeroEvents,
		"memory.stat":      memoryStat(f),
		"memory.pressure":  pressureTotal(f.some, f.full, f.someTotal),
		"memory.min":       "0\n",
		"memory.low":       "0\n",
		"memory.high":      "max\n",
		"memory.max":       "max\n",
		"memory.swap.max":  "max\n",
		"memory.oom.group": "0\n",
		"memory.reclaim":   "",
	}
	if d.Limit > 0 {
		files["memory.max"] = strconv.FormatInt(d.Limit, 10) + "\n"
	}
	for k, v := range d.UnifiedV2() {
		files[k] = v + "\n"
	}
	for k, v := range files {
		writeFile(t, dir, k, v)
	}
	return dir
}

func setCurrent(t *testing.T, dir string, v int64) {
	t.Helper()
	writeFile(t, dir, "memory.current", strconv.FormatInt(v, 10)+"\n")
}

// ---- a simulated kernel around the real FS ----

type call struct {
	rel   string
	bytes int64
}

type kernel struct {
	*cgroupfs.FS
	calls []call
	// fileFirst are the cgroups ReclaimFile was asked of, in order.
	fileFirst []string
	// afterUsage runs after each successful Usage read.
	afterUsage func(rel string)
	// beforeReclaim runs before the memory.reclaim write.
	beforeReclaim func(rel string)
	// reclaim decides, after the write, how far usage falls and what the
	// write returns; nil: usage falls by what was asked.
	reclaim func(rel string, asked int64) (drop int64, err error)
}

func (k *kernel) Usage(rel string) (int64, error) {
	v, err := k.FS.Usage(rel)
	if err == nil && k.afterUsage != nil {
		k.afterUsage(rel)
	}
	return v, err
}

func (k *kernel) Reclaim(rel string, n int64) error {
	k.calls = append(k.calls, call{rel, n})
	if k.beforeReclaim != nil {
		k.beforeReclaim(rel)
	}
	if err := k.FS.Reclaim(rel, n); err != nil {
		return err
	}
	drop, rerr := n, error(nil)
	if k.reclaim != nil {
		drop, rerr = k.reclaim(rel, n)
	}
	if drop > 0 {
		cur, err := k.FS.Usage(rel)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(k.MemoryDir(rel), "memory.current"), []byte(strconv.FormatInt(max(cur-drop, 0), 10)+"\n"), 0o644); err != nil {
			return err
		}
	}
	return rerr
}

// ReclaimFile reclaims as Reclaim does; the calls record file-first
// reclaims with fileFirst set (the argument itself is cgroupfs's test).
func (k *kernel) ReclaimFile(rel string, n int64) (bool, error) {
	k.fileFirst = append(k.fileFirst, rel)
	return false, k.Reclaim(rel, n)
}

// ---- logs ----

func newLog() (*logrus.Logger, *bytes.Buffer) {
	buf := &bytes.Buffer{}
	l := logrus.New()
	l.Out = buf
	l.Formatter = &logrus.JSONFormatter{}
	l.Level = logrus.DebugLevel
	return l, buf
}

type entry map[string]any

func (e entry) str(k string) string { return fmt.Sprint(e[k]) }

func entries(t *testing.T, buf *bytes.Buffer) []entry {
	t.Helper()
	var out []entry
	dec := json.NewDecoder(bytes.NewReader(buf.Bytes()))
	dec.UseNumber()
	for dec.More() {
		var e entry
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("log is not JSON lines: %v\n%s", err, buf.String())
		}
		out = append(out, e)
	}
	return out
}

// severe returns entries at warning level or above.
func severe(es []entry) []entry {
	var out []entry
	for _, e := range es {
		switch e.str("level") {
		case "warning", "error", "fatal", "panic":
			out = append(out, e)
		}
	}
	return out
}

func withMsg(es []entry, msg string) []entry {
	var out []entry
	for _, e := range es {
		if e.str("msg") == msg {
			out = append(out, e)
		}
	}
	return out
}

// ---- harness ----

type harness struct {
	t       *testing.T
	fs      *cgroupfs.FS
	k       *kernel
	r       *Reconciler
	targets []Target
	avail   int64
	total   int64
	psi     cgroupfs.PSI
	log     *bytes.Buffer
}

func newHarness(t *testing.T, version int, cfg *config.Config) *harness {
	t.Helper()
	h := &harness{t: t, fs: &cgroupfs.FS{Root: t.TempDir(), Version: version, PlainFiles: true}, avail: 8 * gi, total: nodeTotal}
	h.k = &kernel{FS: h.fs}
	var l *logrus.Logger
	l, h.log = newLog()
	h.r = New(h.k, version, cfg, func() []Target { return slices.Clone(h.targets) },
		func() (int64, int64, error) { return h.avail, h.total, nil }, l, 4096)
	h.r.SetNodePSI(func() (cgroupfs.PSI, error) { return h.psi, nil })
	// One write per reclaim, so the tests see what each reclaim asked;
	// TestReclaimChunksAndDeadline covers the chunks.
	h.r.chunk = math.MaxInt64
	return h
}

// add creates a v2 container and makes it a target.
func (h *harness) add(id, class string, d *policy.Decision, f v2Files) string {
	h.t.Helper()
	rel := "/kubepods/" + class + "/pod-" + id + "/" + id
	dir := writeV2(h.t, h.fs, rel, d, f)
	h.targets = append(h.targets, Target{ID: id, Namespace: "ns", Pod: "pod-" + id, Container: "app", Rel: rel, Decision: d})
	return dir
}

// setFiles rewrites target id's memory.stat and memory.pressure.
func (h *harness) setFiles(id string, f v2Files) {
	h.t.Helper()
	dir := h.fs.MemoryDir(h.target(id).Rel)
	writeFile(h.t, dir, "memory.stat", memoryStat(f))
	writeFile(h.t, dir, "memory.pressure", pressureTotal(f.some, f.full, f.someTotal))
	setCurrent(h.t, dir, f.current)
}

func (h *harness) target(id string) Target {
	h.t.Helper()
	for _, tg := range h.targets {
		if tg.ID == id {
			return tg
		}
	}
	h.t.Fatalf("no target %q", id)
	return Target{}
}

func (h *harness) stats(id string) Stats {
	h.t.Helper()
	s, ok := h.r.Stats()[id]
	if !ok {
		h.t.Fatalf("Stats() has no %q", id)
	}
	return s
}

func (h *harness) noSevere() {
	h.t.Helper()
	if s := severe(entries(h.t, h.log)); len(s) > 0 {
		h.t.Fatalf("warning-level log entries: %v", s)
	}
}

func (h *harness) noSevereExcept(msgs ...string) {
	h.t.Helper()
	for _, e := range severe(entries(h.t, h.log)) {
		if !slices.Contains(msgs, e.str("msg")) {
			h.t.Fatalf("unexpected warning: %v", e)
		}
	}
}

func reclaimed(s Stats) string { return fmt.Sprint(s.Reclaimed) }

// setCurrent sets memory.current of target id.
func (h *harness) setCurrent(id string, v int64) {
	h.t.Helper()
	for _, tg := range h.targets {
		if tg.ID == id {
			setCurrent(h.t, h.fs.MemoryDir(tg.Rel), v)
			return
		}
	}
	h.t.Fatalf("no target %q", id)
}

// logsAt returns the entries at level whose message contains substr.
func (h *harness) logsAt(level, substr string) []entry {
	h.t.Helper()
	var out []entry
	for _, e := range entries(h.t, h.log) {
		if e.str("level") == level && strings.Contains(e.str("msg"), substr) {
			out = append(out, e)
		}
	}
	return out
}

// reclaimingAny tells whether a memory.reclaim write is still in the kernel.
func (r *Reconciler) reclaimingAny() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.states {
		if s.reclaiming.Load() {
			return true
		}
	}
	return false
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 5s")
}

// tierTestConfig is the default configuration with the tiers' throttleAfter
// at 3s: the tier tests step through episodes whose reclaim-only phase
// lasts a few ticks.
func tierTestConfig() *config.Config {
	cfg := config.Default()
	cfg.Reconciler.Tiers.ThrottleAfter = config.Duration{Duration: 3 * time.Second}
	return cfg
}
