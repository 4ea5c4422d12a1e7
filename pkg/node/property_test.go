package node_test

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
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
	"nri-memqos/pkg/node"
	"nri-memqos/pkg/policy"
)

// The property test plays random sequences of what a node sees — creations,
// resizes, removals, reloads, plugin restarts with the state file kept or
// lost, someone else writing ancestor files (kubelet resetting them to 0 or
// raising them), pod cgroups vanishing — against the real core over a fake
// cgroup tree, and after every step and the ancestor repair that follows it
// checks the ledger's invariants:
//
//   - every ancestor's memory.min and memory.low ≥ max(baseline, the sum
//     promised below it), where the baseline is what someone else last
//     wrote there;
//   - nothing negative, nothing above MemTotal;
//   - the node caps on memory.min and memory.low hold;
//   - once every container is gone, every ancestor is back at its baseline
//     (unless a restart lost the state file: then the lost process's values
//     are someone else's for the new one).
var (
	propSequences = flag.Int("property.sequences", 10000, "random sequences TestLedgerProperties plays")
	propSeed      = flag.Uint64("property.seed", 0, "seed of TestLedgerProperties (0: from the clock; failures print theirs)")
)

const propMemTotal = 8 * gi

// chooser is where a sequence takes its decisions: a seeded generator in
// the property test, the fuzzer's bytes in the fuzz target.
type chooser interface {
	IntN(n int) int
}

// bytesChooser takes decisions from fuzz input; past its end, zeros.
type bytesChooser struct{ b []byte }

func (c *bytesChooser) IntN(n int) int {
	if len(c.b) == 0 || n <= 1 {
		return 0
	}
	v := int(c.b[0])
	c.b = c.b[1:]
	return v % n
}

// reload variants: caps and fractions that change who gets what.
var propConfigs = []string{
	"",
	"nodeProtectionFraction: 0.1\n",
	"nodeLowProtectionFraction: 0.15\n",
	"classes:\n  latency-sensitive: {min: 0.5, low: 1.0}\n",
	"nodeProtectionFraction: 0.3\nnodeLowProtectionFraction: 0.4\nmaxProtectionFraction: 0.5\n",
}

var propPods = []struct{ uid, parent string }{
	{"p0", "/kubepods/burstable/podp0"},
	{"p1", "/kubepods/burstable/podp1"},
	{"p2", "/kubepods/besteffort/podp2"},
	{"p3", "/kubepods/podp3"},
}

type propCtr struct {
	id, pod, parent string
	facts           node.Container
	request         int64 // decided at creation, for the runtime's annotation
}

// world is one sequence: the tree, the core, and what the test knows.
type world struct {
	t         testing.TB
	c         chooser
	root      string
	stateDir  string
	stateFile string
	cfgIdx    int
	n         *node.Node
	live      map[string]*propCtr
	order     []string // live container IDs, in creation order
	next      int
	baseline  map[string]int64 // "rel/file" -> what someone else last wrote
	lostState bool
	log       *logrus.Logger
	steps     []string
}

func newWorld(t testing.TB, c chooser, dir string) *world {
	log := logrus.New()
	log.SetOutput(io.Discard)
	log.SetLevel(logrus.ErrorLevel)
	w := &world{t: t, c: c, root: filepath.Join(dir, "cg"), stateDir: dir, live: map[string]*propCtr{},
		baseline: map[string]int64{}, log: log}
	w.stateFile = filepath.Join(dir, "state-0.json")
	w.cfgIdx = c.IntN(len(propConfigs))
	w.mkdir("/kubepods")
	for _, q := range []string{"/kubepods/burstable", "/kubepods/besteffort"} {
		w.mkdir(q)
	}
	w.start()
	return w
}

func (w *world) fail(format string, args ...any) {
	w.t.Helper()
	w.t.Fatalf("%s\nsteps:\n  %s", fmt.Sprintf(format, args...), strings.Join(w.steps, "\n  "))
}

// mkdir makes a cgroup with memory.min and memory.low at 0, the kernel's
// defaults, if it is not there.
func (w *world) mkdir(rel string) {
	dir := filepath.Join(w.root, rel)
	if _, err := os.Stat(filepath.Join(dir, "memory.min")); err == nil {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		w.t.Fatal(err)
	}
	for _, f := range []string{"memory.min", "memory.low"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("0\n"), 0o644); err != nil {
			w.t.Fatal(err)
		}
	}
}

func (w *world) read(rel, file string) (int64, bool) {
	b, err := os.ReadFile(filepath.Join(w.root, rel, file))
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		w.fail("%s/%s holds %q", rel, file, b)
	}
	return v, true
}

func (w *world) config() *config.Config {
	cfg, err := config.Parse([]byte("cgroupRoot: " + w.root + "\ncgroupVersion: \"2\"\n" + propConfigs[w.cfgIdx]))
	if err != nil {
		w.t.Fatal(err)
	}
	return cfg
}

// start starts a core, as the plugin's process does.
func (w *world) start() {
	if w.n != nil {
		if err := w.n.Close(); err != nil {
			w.t.Fatal(err)
		}
	}
	w.n = node.New(node.Options{Log: w.log, Host: node.Host{MemTotal: propMemTotal, PageSize: 4096},
		FileConfig: w.config(), StateFile: w.stateFile,
		Meminfo: func() (int64, int64, error) { return propMemTotal, propMemTotal, nil }, NodePSI: func() (cgroupfs.PSI, error) { return cgroupfs.PSI{}, nil }})
	if err := w.n.Configure(""); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) pick(vals ...int64) int64 { return vals[w.c.IntN(len(vals))] }

// ancestors lists the cgroups whose files the checks look at.
func (w *world) ancestors() []string {
	out := []string{"/kubepods", "/kubepods/burstable", "/kubepods/besteffort"}
	for _, p := range propPods {
		out = append(out, p.parent)
	}
	return out
}

func (w *world) step() {
	switch op := w.c.IntN(100); {
	case op < 30:
		w.create()
	case op < 40:
		w.update()
	case op < 60:
		w.remove()
	case op < 68:
		w.cfgIdx = w.c.IntN(len(propConfigs))
		w.steps = append(w.steps, fmt.Sprintf("reload %q", propConfigs[w.cfgIdx]))
		w.n.Reload(w.config())
	case op < 74:
		w.restart()
	case op < 92:
		w.foreign()
	default:
		w.vanish()
	}
}

func (w *world) create() {
	p := propPods[w.c.IntN(len(propPods))]
	w.mkdir(p.parent)
	w.next++
	id := fmt.Sprintf("c%d", w.next)
	class := []string{"latency-sensitive", "burstable", "best-effort", ""}[w.c.IntN(4)]
	request := w.pick(0, 64*mi, 256*mi, 1*gi, 2*gi, 3*gi)
	limit := w.pick(0, 512*mi, 2*gi, 4*gi, 6*gi)
	labels := map[string]string{}
	if class != "" {
		labels[policy.LabelClass] = class
	}
	var ann map[string]string
	unified := map[string]string{}
	switch w.c.IntN(5) {
	case 0: // a tenant's annotation, possibly absurd
		ann = map[string]string{policy.AnnotationRequest: []string{"9223372036854771712", "7Ei", "100Mi"}[w.c.IntN(3)]}
	default: // kubelet's MemoryQoS
		if request > 0 {
			unified["memory.min"] = itoa(request)
		}
	}
	facts := node.Container{
		ID:          id,
		Pod:         policy.Pod{Namespace: "ns", Name: "pod-" + p.uid, UID: p.uid, Labels: labels, Annotations: ann, CgroupParent: p.parent},
		Ctr:         policy.Container{Name: id, Limit: limit, Unified: unified},
		CgroupsPath: p.parent + "/" + id,
		CreatedAt:   int64(w.next),
	}
	w.steps = append(w.steps, fmt.Sprintf("create %s in %s class %q request %d limit %d annotations %v", id, p.parent, class, request, limit, ann))
	d, err := w.n.Create(facts)
	if err != nil {
		return // the container fails alone
	}
	w.n.Start(facts)
	c := &propCtr{id: id, pod: p.uid, parent: p.parent, facts: facts}
	if d != nil {
		c.request = d.Request
	}
	w.live[id] = c
	w.order = append(w.order, id)
}

func (w *world) some() *propCtr {
	if len(w.order) == 0 {
		return nil
	}
	return w.live[w.order[w.c.IntN(len(w.order))]]
}

func (w *world) update() {
	c := w.some()
	if c == nil {
		return
	}
	request := w.pick(32*mi, 128*mi, 512*mi, 2*gi)
	f := c.facts
	f.Ctr.Unified = map[string]string{"memory.min": itoa(request)}
	w.steps = append(w.steps, fmt.Sprintf("update %s request %d", c.id, request))
	if d, err := w.n.Update(f); err == nil {
		if d != nil {
			c.request = d.Request
		}
		c.facts = f
	}
	w.n.PostUpdate(f)
}

func (w *world) remove() {
	c := w.some()
	if c == nil {
		return
	}
	w.steps = append(w.steps, "remove "+c.id)
	w.n.Remove(c.facts)
	delete(w.live, c.id)
	w.order = slices.DeleteFunc(w.order, func(id string) bool { return id == c.id })
}

// restart replaces the core as a plugin restart does, keeping the state
// file or losing it, and lets the runtime's Synchronize list what runs.
func (w *world) restart() {
	keep := w.c.IntN(3) > 0
	w.steps = append(w.steps, fmt.Sprintf("restart (state kept: %v)", keep))
	if !keep {
		w.lostState = true
		w.stateFile = filepath.Join(w.stateDir, fmt.Sprintf("state-%d.json", w.next))
	}
	w.start()
	var list []node.Container
	for _, id := range w.order {
		c := w.live[id]
		f := c.facts
		// What the runtime holds: the annotation the plugin stamped.
		f.Ctr.Annotations = map[string]string{policy.AnnotationRecordedRequest: itoa(c.request)}
		list = append(list, f)
	}
	if _, err := w.n.Resync(list); err != nil {
		w.fail("resync: %v", err)
	}
}

// foreign writes an ancestor file as kubelet or another agent would.
func (w *world) foreign() {
	rel := w.ancestors()[w.c.IntN(len(w.ancestors()))]
	file := []string{"memory.min", "memory.low"}[w.c.IntN(2)]
	cur, ok := w.read(rel, file)
	if !ok {
		return
	}
	v := int64(0)
	if w.c.IntN(2) == 0 {
		v = min(cur+int64(1+w.c.IntN(128))*4096*256, propMemTotal)
	}
	w.steps = append(w.steps, fmt.Sprintf("someone writes %s/%s = %d (was %d)", rel, file, v, cur))
	if err := os.WriteFile(filepath.Join(w.root, rel, file), []byte(itoa(v)+"\n"), 0o644); err != nil {
		w.t.Fatal(err)
	}
	w.baseline[rel+"/"+file] = v
}

// vanish removes a pod cgroup with no live container, as kubelet does.
func (w *world) vanish() {
	p := propPods[w.c.IntN(len(propPods))]
	for _, c := range w.live {
		if c.parent == p.parent {
			return
		}
	}
	w.steps = append(w.steps, "pod cgroup vanishes: "+p.parent)
	if err := os.RemoveAll(filepath.Join(w.root, p.parent)); err != nil {
		w.t.Fatal(err)
	}
	delete(w.baseline, p.parent+"/memory.min")
	delete(w.baseline, p.parent+"/memory.low")
}

// check repairs as the next reconcile does, then checks the invariants.
func (w *world) check() {
	w.n.RepairAncestors(time.Now())
	cfg := w.config()
	sumMin, sumLow := map[string]int64{}, map[string]int64{}
	var totalMin, totalLow int64
	for _, c := range w.n.MetricsSource().Containers() {
		pc := w.live[c.ID]
		if pc == nil {
			w.fail("the core manages %s, which is gone", c.ID)
		}
		totalMin += c.Min
		totalLow += c.Low
		for a := pc.parent; a != "/"; a = filepath.Dir(a) {
			sumMin[a] += c.Min
			sumLow[a] += c.Low
		}
	}
	if lim := int64(cfg.NodeProtectionFraction * float64(propMemTotal)); totalMin > lim {
		w.fail("memory.min promised %d above the cap %d", totalMin, lim)
	}
	if lim := int64(cfg.NodeLowProtectionFraction * float64(propMemTotal)); totalLow > lim {
		w.fail("memory.low promised %d above the cap %d", totalLow, lim)
	}
	for _, rel := range w.ancestors() {
		for file, sum := range map[string]int64{"memory.min": sumMin[rel], "memory.low": sumLow[rel]} {
			v, ok := w.read(rel, file)
			if !ok {
				continue
			}
			if v < 0 || v > propMemTotal {
				w.fail("%s/%s = %d: outside 0..MemTotal", rel, file, v)
			}
			if want := max(w.baseline[rel+"/"+file], sum); v < want {
				w.fail("%s/%s = %d after repair; want at least %d (baseline %d, promised below %d)", rel, file, v, want, w.baseline[rel+"/"+file], sum)
			}
		}
	}
}

// drain removes every container and checks that every ancestor is back at
// its baseline.
func (w *world) drain() {
	for len(w.order) > 0 {
		c := w.live[w.order[0]]
		w.steps = append(w.steps, "remove "+c.id)
		w.n.Remove(c.facts)
		delete(w.live, c.id)
		w.order = w.order[1:]
	}
	w.check()
	if w.lostState {
		return
	}
	for _, rel := range w.ancestors() {
		for _, file := range []string{"memory.min", "memory.low"} {
			if v, ok := w.read(rel, file); ok && v != w.baseline[rel+"/"+file] {
				w.fail("%s/%s = %d once every container is gone; want its baseline %d", rel, file, v, w.baseline[rel+"/"+file])
			}
		}
	}
}

// play runs one sequence of up to maxSteps steps.
func play(t testing.TB, c chooser, dir string, maxSteps int) {
	w := newWorld(t, c, dir)
	for range 1 + c.IntN(maxSteps) {
		w.step()
		w.check()
	}
	w.drain()
}

// shmDir is a temporary directory on tmpfs when there is one: the sequences
// write thousands of small files.
func shmDir(t testing.TB) string {
	dir, err := os.MkdirTemp("/dev/shm", "memqos-prop-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	return dir
}

func TestLedgerProperties(t *testing.T) {
	seed := *propSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	n := *propSequences
	if testing.Short() {
		n = min(n, 500)
	}
	const workers = 2
	for wkr := range workers {
		t.Run(fmt.Sprintf("worker%d", wkr), func(t *testing.T) {
			t.Parallel()
			base := shmDir(t)
			for i := wkr; i < n; i += workers {
				dir := filepath.Join(base, strconv.Itoa(i))
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				r := rand.New(rand.NewPCG(seed, uint64(i)))
				sub := &seqT{TB: t, seed: seed, seq: i}
				play(sub, r, dir, 24)
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	t.Logf("%d sequences, seed %d", n, seed)
}

// seqT names the seed and sequence in a failure, so it can be replayed
// with -property.seed.
type seqT struct {
	testing.TB
	seed uint64
	seq  int
}

func (s *seqT) Fatalf(format string, args ...any) {
	s.Helper()
	s.TB.Fatalf("sequence %d of seed %d (replay: -property.seed=%d): %s", s.seq, s.seed, s.seed, fmt.Sprintf(format, args...))
}

// FuzzLedgerSequences plays the same sequences with the fuzzer choosing.
func FuzzLedgerSequences(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{10, 0, 3, 1, 2, 60, 1, 80, 0, 1, 99, 3, 70, 1, 2, 0, 0, 50})
	f.Fuzz(func(t *testing.T, b []byte) {
		play(t, &bytesChooser{b: b}, shmDir(t), 32)
	})
}
