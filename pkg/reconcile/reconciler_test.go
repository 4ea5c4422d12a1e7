package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/config"
	"nri-memqos/pkg/policy"
)

func TestMain(m *testing.M) {
	cgroupfs.UseTestTree()
	os.Exit(m.Run())
}

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

	maxPerTick = 64 * mi
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
workingset_refault_file 0
workingset_activate_anon 0
workingset_activate_file 0
workingset_restore_anon 0
workingset_restore_file 0
workingset_nodereclaim 0
pgscan 0
pgsteal 0
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
`, f.inactiveAnon+f.activeAnon, f.inactiveFile+f.activeFile, f.inactiveAnon, f.activeAnon, f.inactiveFile, f.activeFile)
}

func pressure(some, full float64) string {
	return fmt.Sprintf("some avg10=%.2f avg60=0.00 avg300=0.00 total=0\nfull avg10=%.2f avg60=0.00 avg300=0.00 total=0\n", some, full)
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
		"memory.pressure":  pressure(f.some, f.full),
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
	log     *bytes.Buffer
}

func newHarness(t *testing.T, version int, cfg *config.Config) *harness {
	t.Helper()
	h := &harness{t: t, fs: &cgroupfs.FS{Root: t.TempDir(), Version: version}, avail: 8 * gi, total: nodeTotal}
	h.k = &kernel{FS: h.fs}
	var l *logrus.Logger
	l, h.log = newLog()
	h.r = New(h.k, version, cfg, func() []Target { return slices.Clone(h.targets) },
		func() (int64, int64, error) { return h.avail, h.total, nil }, l, 4096)
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

func reclaimed(s Stats) string { return fmt.Sprint(s.Reclaimed) }

// ---- watermark ----

func TestTickWatermark(t *testing.T) {
	tests := []struct {
		name     string
		class    string
		current  int64
		maxTick  config.Quantity
		drop     int64 // what the simulated kernel frees; -1: what was asked
		wantAsk  string
		wantDrop int64
	}{
		{name: "burstable above watermark: bounded by maxReclaimPerTick",
			class: config.ClassBurstable, current: 900 * mi, drop: -1,
			wantAsk: "67108864", wantDrop: 64 * mi},
		{name: "burstable one byte above watermark",
			class: config.ClassBurstable, current: buHighWatermark + 1, drop: -1,
			wantAsk: "67108864", wantDrop: 64 * mi},
		{name: "burstable above watermark, larger maxReclaimPerTick: down to low watermark",
			class: config.ClassBurstable, current: 900 * mi, maxTick: "256Mi", drop: -1,
			wantAsk: strconv.FormatInt(900*mi-buLowWatermark, 10), wantDrop: 900*mi - buLowWatermark},
		{name: "kernel frees less than asked: the drop is counted",
			class: config.ClassBurstable, current: 900 * mi, drop: 10 * mi,
			wantAsk: "67108864", wantDrop: 10 * mi},
		{name: "kernel frees nothing: nothing counted",
			class: config.ClassBurstable, current: 900 * mi, drop: 0,
			wantAsk: "67108864", wantDrop: 0},
		{name: "latency-sensitive without memory.high: ceiling is the limit",
			class: config.ClassLatencySensitive, current: 1000 * mi, maxTick: "256Mi", drop: -1,
			// 1000Mi − int64(0.9 × 1Gi)
			wantAsk: "82208359", wantDrop: 82208359},
		{name: "burstable at the watermark: untouched",
			class: config.ClassBurstable, current: buHighWatermark, wantAsk: ""},
		{name: "burstable well below watermark: untouched",
			class: config.ClassBurstable, current: 850 * mi, wantAsk: ""},
		{name: "latency-sensitive below its watermark (0.95 × 1Gi): untouched",
			class: config.ClassLatencySensitive, current: 970 * mi, wantAsk: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			if tc.maxTick != "" {
				cfg.Reconciler.MaxReclaimPerTick = tc.maxTick
			}
			h := newHarness(t, 2, cfg)
			var d *policy.Decision
			switch tc.class {
			case config.ClassBurstable:
				d = decide(t, cfg, tc.class, buRequest, buLimit)
			case config.ClassLatencySensitive:
				d = decide(t, cfg, tc.class, lsRequest, lsLimit)
			}
			dir := h.add("c1", tc.class, d, v2Files{current: tc.current})
			if tc.drop >= 0 {
				drop := tc.drop
				h.k.reclaim = func(string, int64) (int64, error) { return drop, nil }
			}
			h.r.Tick(at(0))

			if got := readFile(t, dir, "memory.reclaim"); got != tc.wantAsk {
				t.Fatalf("memory.reclaim = %q; want %q", got, tc.wantAsk)
			}
			s := h.stats("c1")
			wantReclaimed := map[Reason]int64{}
			if tc.wantDrop > 0 {
				wantReclaimed[ReasonWatermark] = tc.wantDrop
			}
			if reclaimed(s) != fmt.Sprint(wantReclaimed) {
				t.Errorf("Reclaimed = %v; want %v", s.Reclaimed, wantReclaimed)
			}
			if s.Usage != tc.current-tc.wantDrop {
				t.Errorf("Stats.Usage = %d; want %d", s.Usage, tc.current-tc.wantDrop)
			}
			if got := strings.TrimSpace(readFile(t, dir, "memory.current")); got != strconv.FormatInt(tc.current-tc.wantDrop, 10) {
				t.Errorf("memory.current = %s; want %d", got, tc.current-tc.wantDrop)
			}
			if s.DriftRepairs != 0 || s.GuardRaises != 0 {
				t.Errorf("DriftRepairs %d, GuardRaises %d; want 0, 0", s.DriftRepairs, s.GuardRaises)
			}
			if tc.wantAsk == "" && len(h.k.calls) != 0 {
				t.Errorf("Reclaim calls %v; want none", h.k.calls)
			}
			h.noSevere()
		})
	}
}

func TestTickReclaimErrors(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		drop       int64
		wantA      map[Reason]int64
		wantWarnA  bool
		wantUsageA int64
	}{
		{name: "EAGAIN after a partial reclaim: counted, no warning",
			err: fmt.Errorf("failed to reclaim 67108864 bytes: %w", unix.EAGAIN), drop: 10 * mi,
			wantA: map[Reason]int64{ReasonWatermark: 10 * mi}, wantUsageA: 900*mi - 10*mi},
		{name: "EAGAIN without progress: nothing counted, no warning",
			err: fmt.Errorf("failed to reclaim 67108864 bytes: %w", unix.EAGAIN), drop: 0,
			wantA: map[Reason]int64{}, wantUsageA: 900 * mi},
		{name: "EBUSY: nothing counted, others still processed",
			err: fmt.Errorf("failed to reclaim 67108864 bytes: %w", unix.EBUSY), drop: 0,
			wantA: map[Reason]int64{}, wantWarnA: true, wantUsageA: 900 * mi},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			h := newHarness(t, 2, cfg)
			d := decide(t, cfg, config.ClassBurstable, buRequest, buLimit)
			dirA := h.add("a", config.ClassBurstable, d, v2Files{current: 900 * mi})
			dirB := h.add("b", config.ClassBurstable, d, v2Files{current: 900 * mi})
			h.k.reclaim = func(rel string, n int64) (int64, error) {
				if strings.HasSuffix(rel, "/a") {
					return tc.drop, tc.err
				}
				return n, nil
			}
			h.r.Tick(at(0))

			if got := readFile(t, dirA, "memory.reclaim"); got != "67108864" {
				t.Errorf("a: memory.reclaim = %q; want %q", got, "67108864")
			}
			sa := h.stats("a")
			if reclaimed(sa) != fmt.Sprint(tc.wantA) {
				t.Errorf("a: Reclaimed = %v; want %v", sa.Reclaimed, tc.wantA)
			}
			if sa.Usage != tc.wantUsageA {
				t.Errorf("a: Usage = %d; want %d", sa.Usage, tc.wantUsageA)
			}
			// b comes after a in the same tick.
			if got := readFile(t, dirB, "memory.reclaim"); got != "67108864" {
				t.Errorf("b: memory.reclaim = %q; want %q", got, "67108864")
			}
			if sb := h.stats("b"); reclaimed(sb) != fmt.Sprint(map[Reason]int64{ReasonWatermark: 64 * mi}) {
				t.Errorf("b: Reclaimed = %v; want watermark %d", sb.Reclaimed, 64*mi)
			}
			es := entries(t, h.log)
			warns := severe(es)
			if tc.wantWarnA {
				if len(warns) != 1 || warns[0].str("pod") != "pod-a" || !strings.Contains(warns[0].str("msg"), "reclaim") ||
					!strings.Contains(warns[0].str("msg"), unix.EBUSY.Error()) {
					t.Errorf("warnings = %v; want one about a's reclaim and EBUSY", warns)
				}
			} else if len(warns) != 0 {
				t.Errorf("warnings = %v; want none", warns)
			}
			if !tc.wantWarnA {
				var partial []entry
				for _, e := range withMsg(es, "reclaimed") {
					if e.str("pod") == "pod-a" {
						partial = append(partial, e)
					}
				}
				if len(partial) != 1 || partial[0].str("partial") != "true" || partial[0].str("asked") != "67108864" ||
					partial[0].str("reason") != "watermark" || partial[0].str("level") != "debug" {
					t.Errorf("a's reclaimed log = %v; want one debug entry, partial true, asked 67108864", partial)
				}
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

// ---- node pressure ----

func TestTickNodePressure(t *testing.T) {
	cfg := config.Default()
	h := newHarness(t, 2, cfg)
	be := decide(t, cfg, config.ClassBestEffort, beRequest, beLimit)
	bu := decide(t, cfg, config.ClassBurstable, buRequest, buLimit)
	ls := decide(t, cfg, config.ClassLatencySensitive, lsRequest, lsLimit)
	// Listed highest priority first: the order must come from the plan.
	dirs := map[string]string{
		"ls": h.add("ls", config.ClassLatencySensitive, ls, v2Files{current: 700 * mi}),
		"bu": h.add("bu", config.ClassBurstable, bu, v2Files{current: 300 * mi}),
		"be": h.add("be", config.ClassBestEffort, be, v2Files{current: 200 * mi}),
	}
	rel := map[string]string{}
	for _, tg := range h.targets {
		rel[tg.Rel] = tg.ID
	}
	protect := map[string]int64{"ls": lsRequest, "bu": buRequest, "be": 0}
	pct := func(p float64) int64 { return int64(p * float64(nodeTotal)) }

	type take struct {
		id    string
		bytes int64
	}
	steps := []struct {
		name      string
		avail     int64
		before    func()
		wantTakes []take
		wantMsg   string // "node memory pressure: ..." logged this tick
	}{
		{name: "5% available: above request, lowest priority first", avail: pct(0.05),
			wantTakes: []take{{"be", 72 * mi}, {"bu", 44 * mi}, {"ls", 140 * mi}}, wantMsg: "started"},
		{name: "12% available: hysteresis keeps it going, second pass down to protection", avail: pct(0.12),
			wantTakes: []take{{"ls", 48 * mi}, {"be", 128 * mi}}},
		{name: "12% available, nothing above protection left", avail: pct(0.12), wantTakes: nil},
		{name: "16% available: over", avail: pct(0.16), before: func() { setCurrent(t, dirs["be"], 200*mi) },
			wantTakes: nil, wantMsg: "over"},
		{name: "12% available again: does not restart", avail: pct(0.12), wantTakes: nil},
		{name: "9% available: restarts", avail: pct(0.09),
			wantTakes: []take{{"be", 200 * mi}}, wantMsg: "started"},
	}
	wantTotal := map[string]int64{}
	for i, s := range steps {
		if s.before != nil {
			s.before()
		}
		h.avail = s.avail
		h.k.calls = nil
		h.log.Reset()
		h.r.Tick(at(time.Duration(i+1) * time.Second))

		var got []take
		for _, c := range h.k.calls {
			got = append(got, take{rel[c.rel], c.bytes})
		}
		if fmt.Sprint(got) != fmt.Sprint(s.wantTakes) {
			t.Fatalf("step %d %q: reclaims %v; want %v", i, s.name, got, s.wantTakes)
		}
		for _, tk := range s.wantTakes {
			wantTotal[tk.id] += tk.bytes
			if f := readFile(t, dirs[tk.id], "memory.reclaim"); f != strconv.FormatInt(tk.bytes, 10) {
				t.Errorf("step %d: %s memory.reclaim = %q; want %d", i, tk.id, f, tk.bytes)
			}
		}
		for id := range dirs {
			st := h.stats(id)
			if st.Usage < protect[id] {
				t.Errorf("step %d: %s usage %d below its protection %d", i, id, st.Usage, protect[id])
			}
			if st.Reclaimed[ReasonNodePressure] != wantTotal[id] {
				t.Errorf("step %d: %s Reclaimed[node-pressure] = %d; want %d", i, id, st.Reclaimed[ReasonNodePressure], wantTotal[id])
			}
			if st.Reclaimed[ReasonWatermark] != 0 || st.Reclaimed[ReasonProactive] != 0 {
				t.Errorf("step %d: %s Reclaimed = %v; want node-pressure only", i, id, st.Reclaimed)
			}
		}
		var msgs []string
		for _, e := range entries(t, h.log) {
			if m := e.str("msg"); strings.HasPrefix(m, "node memory pressure: ") {
				msgs = append(msgs, strings.TrimPrefix(m, "node memory pressure: "))
				if e.str("memAvailable") != strconv.FormatInt(s.avail, 10) || e.str("memTotal") != strconv.FormatInt(nodeTotal, 10) {
					t.Errorf("step %d: %v; want memAvailable %d, memTotal %d", i, e, s.avail, nodeTotal)
				}
			}
		}
		wantMsgs := []string{}
		if s.wantMsg != "" {
			wantMsgs = []string{s.wantMsg}
		}
		if fmt.Sprint(msgs) != fmt.Sprint(wantMsgs) {
			t.Errorf("step %d: pressure logs %v; want %v", i, msgs, wantMsgs)
		}
		h.noSevere()
	}
}

func TestTickNodePressureOff(t *testing.T) {
	tests := []struct {
		name       string
		mutate     func(c *config.Config)
		meminfoErr bool
	}{
		{name: "lowFraction 0", mutate: func(c *config.Config) { c.Reconciler.NodePressure.LowFraction = 0 }},
		{name: "meminfo fails", meminfoErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			if tc.mutate != nil {
				tc.mutate(cfg)
			}
			h := newHarness(t, 2, cfg)
			if tc.meminfoErr {
				h.r.meminfo = func() (int64, int64, error) { return 0, 0, errors.New("meminfo: boom") }
			}
			be := decide(t, cfg, config.ClassBestEffort, beRequest, beLimit)
			h.add("be", config.ClassBestEffort, be, v2Files{current: 200 * mi})
			h.avail = 0
			h.r.Tick(at(0))
			if len(h.k.calls) != 0 {
				t.Fatalf("reclaims %v; want none", h.k.calls)
			}
			warns := severe(entries(t, h.log))
			if tc.meminfoErr {
				if len(warns) != 1 || !strings.Contains(warns[0].str("msg"), "meminfo: boom") {
					t.Fatalf("warnings %v; want one naming the meminfo error", warns)
				}
			} else if len(warns) != 0 {
				t.Fatalf("warnings %v; want none", warns)
			}
		})
	}
}

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

// ---- proactive ----

func TestTickProactive(t *testing.T) {
	const inactive = 100*mi + 50*mi // inactive_file + inactive_anon
	const ask = 3145728             // 2% of 150Mi
	tests := []struct {
		name      string
		class     string
		proactive bool
		some      float64
		wantAt    []int // seconds of the ticks that reclaim
	}{
		{name: "idle: 2% of inactive every 10s", class: config.ClassBestEffort, proactive: true, some: 0.1, wantAt: []int{0, 10, 20}},
		{name: "no pressure at all", class: config.ClassBestEffort, proactive: true, some: 0, wantAt: []int{0, 10, 20}},
		{name: "pressure at target: none", class: config.ClassBestEffort, proactive: true, some: 0.5},
		{name: "pressure above target: none", class: config.ClassBestEffort, proactive: true, some: 3.2},
		{name: "class not opted in: none", class: config.ClassBestEffort, proactive: false, some: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Classes[config.ClassBestEffort].Reclaim.Proactive = tc.proactive
			h := newHarness(t, 2, cfg)
			d := decide(t, cfg, tc.class, beRequest, beLimit)
			dir := h.add("c1", tc.class, d, v2Files{current: 300 * mi,
				inactiveFile: 100 * mi, activeFile: 20 * mi, inactiveAnon: 50 * mi, activeAnon: 30 * mi, some: tc.some})
			var gotAt []int
			for sec := 0; sec <= 25; sec++ {
				n := len(h.k.calls)
				h.r.Tick(at(time.Duration(sec) * time.Second))
				for _, c := range h.k.calls[n:] {
					if c.bytes != ask {
						t.Fatalf("t=%ds: asked %d; want %d (2%% of %d)", sec, c.bytes, ask, inactive)
					}
					gotAt = append(gotAt, sec)
				}
			}
			if fmt.Sprint(gotAt) != fmt.Sprint(tc.wantAt) {
				t.Fatalf("reclaimed at %v s; want %v", gotAt, tc.wantAt)
			}
			s := h.stats("c1")
			want := map[Reason]int64{}
			wantFile := ""
			if len(tc.wantAt) > 0 {
				want[ReasonProactive] = int64(len(tc.wantAt)) * ask
				wantFile = strconv.Itoa(ask)
			}
			if reclaimed(s) != fmt.Sprint(want) {
				t.Errorf("Reclaimed = %v; want %v", s.Reclaimed, want)
			}
			if got := readFile(t, dir, "memory.reclaim"); got != wantFile {
				t.Errorf("memory.reclaim = %q; want %q", got, wantFile)
			}
			h.noSevere()
		})
	}
}

// ---- events ----

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

func (h *harness) noSevereExcept(msgs ...string) {
	h.t.Helper()
	for _, e := range severe(entries(h.t, h.log)) {
		if !slices.Contains(msgs, e.str("msg")) {
			h.t.Fatalf("unexpected warning: %v", e)
		}
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
			fs := &cgroupfs.FS{Root: t.TempDir(), Version: 2}
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
