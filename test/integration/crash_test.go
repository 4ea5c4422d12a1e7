package integration

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"maps"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	"github.com/fsnotify/fsnotify"
	"google.golang.org/protobuf/proto"

	"nri-memqos/test/internal/cgtest"
	"nri-memqos/test/internal/logbuf"
	"nri-memqos/test/internal/nritest"
	"nri-memqos/test/internal/proc"
)

// Replaying or scaling TestCrashBurst: go test -count=1 -run TestCrash -v
// ./test/integration/ -crash.seed=N (or MEMQOS_CRASH_SEED=N) replays the
// operations, kill points and kill modes of a run (not the exact instants,
// which are the machine's); MEMQOS_CRASH_LOGS=<dir> keeps every plugin's
// whole log there on failure.
var (
	crashSeed  = flag.Int64("crash.seed", 0, "TestCrashBurst: seed of the run (0: MEMQOS_CRASH_SEED, else the clock)")
	crashOps   = flag.Int("crash.ops", 2000, "TestCrashBurst: container creations, resizes and removals in the burst")
	crashKills = flag.Int("crash.kills", 24, "TestCrashBurst: plugin kills during the burst")
)

const (
	// crashLimit is every container's memory limit; requests are whole MiB
	// from 1Mi to crashMaxK Mi, far below it.
	crashLimit = limit1Gi
	crashMaxK  = 16
	// Containers alive at once, kept between these by the burst.
	crashMinLive = 8
	crashMaxLive = 40
	// crashSettle bounds how long ancestor files may take to reach what the
	// model expects: the plugin's own writes, or at worst the reconciler's
	// ancestor repair (every 2s by default).
	crashSettle = 5 * time.Second
)

// TestCrashBurst: nothing is lost by going fast. A seeded burst of
// container creations (CreateContainer, PostCreateContainer,
// StartContainer), in-place resizes (UpdateContainer, PostUpdateContainer,
// with a new request from kubelet) and removals (StopContainer,
// RemoveContainer) in pods of every class runs through the real NRI runtime
// side, and the plugin is killed (SIGKILL) at random moments of it: between
// events, after a random delay while events are in flight, or at the very
// moment it writes an ancestor file. Events the runtime relays while the
// plugin is dead go without it, as containerd's do. The plugin is started
// again on the same -state-dir and synchronizes; then
//
//   - every managed container's Synchronize update holds the values of the
//     request the plugin last resolved (so resized requests survive: the
//     runtime's view alone, the creation annotation, holds the old one);
//   - every ancestor's memory.min and memory.low is max(baseline, sum of
//     the protection promised below it), where the baseline is the value
//     "kubelet" wrote there before the plugin ever ran.
//
// At the end all containers are removed: every ancestor file must be back at
// exactly its baseline, which only happens when the plugin still recognizes
// every value it wrote, across all the kills, as its own.
//
// The fake cgroup tree holds plain files, which a write truncates first
// (real cgroup files are written atomically): a kill lands only where no
// ancestor file is caught truncated (see crashRun.kill).
func TestCrashBurst(t *testing.T) {
	began := time.Now()
	c := newCrashRun(t)
	t.Logf("seed %d (replay: go test -count=1 -run TestCrash -v ./test/integration/ -crash.seed=%d)", c.seed, c.seed)

	points := c.killPoints(*crashOps, *crashKills)
	next := 0
	for c.ops < *crashOps {
		if next < len(points) && c.ops >= points[next] {
			next++
			c.killAndRestart()
			continue
		}
		c.op()
		if c.ops%100 == 0 {
			c.quietCheck(fmt.Sprintf("after operation %d", c.ops))
		}
	}
	for ; next < len(points); next++ {
		c.killAndRestart()
	}
	// The last kill, then the final checks on the plugin that follows.
	c.killAndRestart()
	if c.kills < *crashKills {
		c.failf("only %d kills, want at least %d", c.kills, *crashKills)
	}

	// killAndRestart checked the requests (the Synchronize updates) and
	// the ancestors after the last restart. Now every container goes:
	// every ancestor file must come back to exactly its baseline.
	live := len(c.live)
	for len(c.live) > 0 {
		c.remove(0)
	}
	c.checkAncestors(fmt.Sprintf("after removing the %d containers left (plugin #%d)", live, len(c.procs)), crashSettle)
	// Nothing of the plugin's is left in its state either: one more kill
	// and restart changes nothing.
	c.stats["kill idle"]++
	c.kill(c.p)
	c.kills++
	ev := c.restart()
	if len(ev.Updates) != 0 {
		c.failf("Synchronize with no containers returned %d updates", len(ev.Updates))
	}
	c.checkAncestors(fmt.Sprintf("after a restart with no containers (plugin #%d)", len(c.procs)), crashSettle)

	s := c.stats
	t.Logf("seed %d: %d operations (%d creations, %d resizes, %d removals; %d while the plugin was down), "+
		"%d kills (%d between events, %d with events in flight, %d at an ancestor write), %d restarts, "+
		"%d ancestor checks, %d requests the plugin may have missed resolved at Synchronize, in %v",
		c.seed, c.ops, s["create"], s["resize"], s["remove"], s["while down"],
		c.kills, s["kill idle"], s["kill in flight"], s["kill at write"], len(c.procs)-1,
		s["ancestor checks"], s["ambiguous resolved"], time.Since(began).Round(time.Millisecond))
}

// crashPod is one pod of the run: its class ("" not opted in) and the
// ancestors of its containers' cgroups, relative to the root.
type crashPod struct {
	pod       *api.PodSandbox
	class     string
	rel       string
	ancestors []string
}

// crashCtr is the model of one container the runtime knows.
type crashCtr struct {
	id  string
	pod *crashPod
	// kubelet is the request kubelet expresses now (its memory.min).
	kubelet int64
	// req is the request the plugin resolved; alts are others it may have
	// resolved instead (a resize it may have missed, or resolved without
	// answering before it died), until a Synchronize tells.
	req  int64
	alts []int64
}

type ancFile struct{ rel, file string }

// crashProc is one plugin process of the run.
type crashProc struct {
	*proc.Process
	n      int
	log    *logbuf.Buffer
	killed atomic.Bool
}

// crashRun is the state of TestCrashBurst: the env, the model of what the
// runtime holds, and the plugin processes.
type crashRun struct {
	t    *testing.T
	e    *env
	seed int64
	rng  *rand.Rand
	cfg  string
	maxK int

	pods     []*crashPod
	dirs     []string // every ancestor cgroup, relative, sorted
	baseline map[ancFile]int64
	ctrs     map[string]*crashCtr
	live     []string

	p     *crashProc
	procs []*crashProc
	// armed is killed by the watcher at the next ancestor write.
	armed atomic.Pointer[crashProc]
	// consumed counts the synchronizations taken from the runtime; drops
	// the plugins the runtime had dropped by the last one.
	consumed int
	drops    int
	nextID   int
	ops      int
	kills    int
	// opTime is a running average of one operation's duration.
	opTime time.Duration
	stats  map[string]int
}

func newCrashRun(t *testing.T) *crashRun {
	seed := *crashSeed
	if seed == 0 {
		if s := os.Getenv("MEMQOS_CRASH_SEED"); s != "" {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				t.Fatalf("MEMQOS_CRASH_SEED=%q: not an integer", s)
			}
			seed = v
		}
	}
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	e := newEnv(t)
	c := &crashRun{
		t: t, e: e, seed: seed, rng: rand.New(rand.NewSource(seed)),
		baseline: map[ancFile]int64{}, ctrs: map[string]*crashCtr{},
		stats: map[string]int{}, opTime: time.Millisecond,
	}
	// Keep the sums far below the node caps (nodeProtectionFraction of
	// MemTotal) on small machines too.
	c.maxK = int(min(crashMaxK, max(1, cgtest.Meminfo(t, "MemTotal")/4/(crashMaxLive+8)/mi)))

	pods := []struct{ name, qos, class string }{
		{"ls-a", "burstable", "latency-sensitive"},
		{"ls-b", "burstable", "latency-sensitive"},
		{"bu-a", "burstable", "burstable"},
		{"bu-b", "burstable", "burstable"},
		{"be-a", "burstable", "best-effort"},
		{"plain", "burstable", ""},
		{"bu-c", "besteffort", "burstable"},
		{"ls-c", "besteffort", "latency-sensitive"},
		{"ls-g", "guaranteed", "latency-sensitive"},
		{"bu-g", "guaranteed", "burstable"},
	}
	dirs := map[string]bool{}
	for i, p := range pods {
		uid := fmt.Sprintf("c0ffee00-%04d-4000-8000-%012d", i, i)
		parent := "/kubepods/" + p.qos + "/pod" + uid
		if p.qos == "guaranteed" {
			parent = "/kubepods/pod" + uid
		}
		labels := map[string]string{"app": p.name}
		if p.class != "" {
			labels[labelClass] = p.class
		}
		cp := &crashPod{
			pod: &api.PodSandbox{
				Id: "sandbox-" + p.name, Name: p.name, Uid: uid, Namespace: testNamespace,
				Labels: labels, Linux: &api.LinuxPodSandbox{CgroupParent: parent},
			},
			class: p.class,
			rel:   parent,
		}
		for d := parent; d != "/"; d = filepath.Dir(d) {
			cp.ancestors = append([]string{d}, cp.ancestors...)
			dirs[d] = true
		}
		c.pods = append(c.pods, cp)
	}
	c.dirs = slices.Sorted(maps.Keys(dirs))
	for _, d := range c.dirs {
		cgtest.ZeroProtection(t, filepath.Join(e.cgRoot, d))
	}
	// kubelet's values, there before the plugin ever ran: the sums below
	// go above and below them during the burst.
	podRel := func(name string) string {
		for _, p := range c.pods {
			if p.pod.Name == name {
				return p.rel
			}
		}
		panic(name)
	}
	for f, v := range map[ancFile]int64{
		{"/kubepods", "memory.min"}:            40 * mi,
		{"/kubepods", "memory.low"}:            24 * mi,
		{"/kubepods/burstable", "memory.low"}:  16 * mi,
		{"/kubepods/besteffort", "memory.min"}: 6 * mi,
		{podRel("ls-a"), "memory.min"}:         5 * mi,
		{podRel("bu-a"), "memory.low"}:         7 * mi,
		{podRel("bu-g"), "memory.low"}:         3 * mi,
	} {
		c.baseline[f] = v
		cgtest.Write(t, filepath.Join(e.cgRoot, f.rel, f.file), cgtest.Itoa(v)+"\n")
	}

	e.mustStartNRI()
	c.cfg = e.writeConfig("memqos.yaml", 2, "")
	c.watch()
	t.Cleanup(c.cleanup)
	c.restart()
	for _, p := range c.pods {
		e.runPod(p.pod)
	}
	c.checkAncestors("before the burst", crashSettle)
	return c
}

// failf fails the test at once, naming the seed and the kills so far.
func (c *crashRun) failf(format string, args ...any) {
	c.t.Helper()
	c.t.Fatalf("%s\n[seed %d, %d kills, plugin #%d, operation %d; replay: go test -count=1 -run TestCrash -v ./test/integration/ -crash.seed=%d]",
		fmt.Sprintf(format, args...), c.seed, c.kills, len(c.procs), c.ops, c.seed)
}

// cleanup stops the plugins left and, when the test failed, shows the end
// of each plugin's log: the killed ones end where they were killed.
func (c *crashRun) cleanup() {
	for _, p := range c.procs {
		p.Stop(3 * time.Second)
	}
	if !c.t.Failed() {
		return
	}
	if dir := os.Getenv("MEMQOS_CRASH_LOGS"); dir != "" {
		for _, p := range c.procs {
			path := filepath.Join(dir, fmt.Sprintf("plugin-%02d.log", p.n))
			if err := os.WriteFile(path, []byte(p.log.String()), 0o644); err != nil {
				c.t.Log(err)
			}
		}
		c.t.Logf("full plugin logs in %s", dir)
	}
	for i, p := range c.procs {
		lines := 12
		if i >= len(c.procs)-2 {
			lines = 80
		}
		how := fmt.Sprintf("exited: %v", p.Err())
		if p.killed.Load() {
			how = "killed by the test"
		}
		c.t.Logf("plugin #%d (pid %d, %s), last %d lines of its log:\n%s", p.n, p.Pid(), how, lines, tail(p.log.String(), lines))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// killPoints picks n distinct operation counts of the burst at which to
// kill the plugin.
func (c *crashRun) killPoints(ops, n int) []int {
	span := max(ops-20, n)
	points := c.rng.Perm(span)[:n]
	for i := range points {
		points[i] += 10
	}
	slices.Sort(points)
	return points
}

//
// The plugin: start, synchronize, kill.
//

func (c *crashRun) startPlugin() *crashProc {
	c.t.Helper()
	cmd := exec.Command(pluginBin, "-socket", c.e.paths.Socket, "-config", c.cfg, "-log-level", "debug",
		"-state-dir", c.e.stateDir(), "-metrics-address", "")
	log := &logbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	pr, err := proc.Start(cmd)
	if err != nil {
		c.failf("starting the plugin: %v", err)
	}
	p := &crashProc{Process: pr, n: len(c.procs) + 1, log: log}
	c.procs = append(c.procs, p)
	return p
}

// restart starts a plugin process on the same state dir, waits until it
// synchronized, checks what the synchronization returned against the
// model (the requests resolved) and has the runtime carry it out.
func (c *crashRun) restart() nritest.SyncEvent {
	c.t.Helper()
	// Synchronizations nobody waited for (a reconnection after a lost
	// connection) go first.
	for c.consumed < c.e.nri.Syncs() {
		if _, err := c.e.nri.WaitSync(nil, 2*time.Second); err != nil {
			c.failf("the runtime counted %d synchronizations, delivered %d: %v", c.e.nri.Syncs(), c.consumed, err)
		}
		c.consumed++
	}
	p := c.startPlugin()
	c.p = p
	const timeout = 10 * time.Second
	deadline := time.Now().Add(timeout)
	var failed error
	for {
		ev, err := c.e.nri.WaitSync(p.Done(), time.Until(deadline))
		switch {
		case err != nil:
			c.failf("plugin #%d did not synchronize within %v (%v; process: %v; last failed synchronization: %v)",
				p.n, timeout, err, p.Err(), failed)
		case ev.Err != nil:
			// A lost connection's, or this plugin's, which then
			// reconnects and synchronizes again.
			c.consumed++
			failed = ev.Err
			continue
		}
		c.consumed++
		c.checkSync(ev, p)
		c.drops = c.dropped()
		return ev
	}
}

// checkSync checks a synchronization's updates: one per managed container,
// holding the values of the request the plugin resolved last (for a
// container whose resize the plugin may have missed, one of the requests
// it may have resolved, which the model takes from here on). The runtime
// then carries the updates out.
func (c *crashRun) checkSync(ev nritest.SyncEvent, p *crashProc) {
	c.t.Helper()
	where := fmt.Sprintf("Synchronize of plugin #%d (after %d kills)", p.n, c.kills)
	if ev.Ctrs != len(c.ctrs) {
		c.failf("%s: the runtime listed %d containers, the model holds %d", where, ev.Ctrs, len(c.ctrs))
	}
	byID := map[string]*api.ContainerUpdate{}
	for _, u := range ev.Updates {
		id := u.GetContainerId()
		if _, dup := byID[id]; dup {
			c.failf("%s: two updates for container %s", where, id)
		}
		byID[id] = u
		if c.ctrs[id] == nil {
			c.failf("%s: update for container %s, which the runtime does not list", where, id)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.ctrs)) {
		ct := c.ctrs[id]
		u, ok := byID[id]
		if ct.pod.class == "" {
			if ok {
				c.failf("%s: update %v for container %s of pod %s, which is not opted in", where, u, id, ct.pod.pod.Name)
			}
			continue
		}
		if !ok {
			c.failf("%s: no update for container %s (pod %s, class %s, request %d)", where, id, ct.pod.pod.Name, ct.pod.class, ct.req)
		}
		got := u.GetLinux().GetResources().GetUnified()
		cands := append([]int64{ct.req}, ct.alts...)
		found := false
		for _, r := range cands {
			if maps.Equal(got, crashUnified(ct.pod.class, r)) {
				if len(ct.alts) > 0 {
					c.stats["ambiguous resolved"]++
				}
				ct.req, ct.alts, found = r, nil, true
				break
			}
		}
		if !found {
			var wants []string
			for _, r := range cands {
				wants = append(wants, fmt.Sprintf("%s (request %d)", fmtMap(crashUnified(ct.pod.class, r)), r))
			}
			c.failf("%s: the update of container %s (pod %s, class %s) has unified %s, want %s: the request the plugin resolved did not survive",
				where, id, ct.pod.pod.Name, ct.pod.class, fmtMap(got), strings.Join(wants, " or "))
		}
		if !c.e.store.ApplyUpdate(u) {
			c.failf("%s: update for unknown container %s", where, id)
		}
	}
}

// kill kills a plugin with SIGKILL, once. The fake tree's files are plain
// files, which a write truncates first: a plugin killed between the
// truncation and the write would leave an empty file, which a real cgroup
// file never is (its writes are atomic). So the plugin is stopped first
// (SIGSTOP) and killed only when no ancestor file is caught empty, else
// it is let go on for a moment and stopped again.
func (c *crashRun) kill(p *crashProc) {
	if !p.killed.CompareAndSwap(false, true) {
		<-p.Done()
		return
	}
	pid := p.Pid()
	for try := 0; try < 100; try++ {
		if syscall.Kill(pid, syscall.SIGSTOP) != nil || !waitStopped(pid, p.Done()) {
			break
		}
		if !c.torn() {
			break
		}
		_ = syscall.Kill(pid, syscall.SIGCONT)
		time.Sleep(time.Duration(50+10*try) * time.Microsecond)
	}
	_ = p.Cmd.Process.Kill()
	<-p.Done()
}

// waitStopped waits until every thread of pid is stopped; false when the
// process ended first.
func waitStopped(pid int, done <-chan struct{}) bool {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return false
		default:
		}
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return false
		}
		all := true
		for _, task := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
			if err != nil {
				continue
			}
			i := bytes.LastIndexByte(b, ')')
			if i < 0 || i+2 >= len(b) {
				continue
			}
			switch b[i+2] {
			case 'T', 't':
			case 'Z', 'X':
				return false
			default:
				all = false
			}
		}
		if all {
			return true
		}
		time.Sleep(20 * time.Microsecond)
	}
	return true
}

// torn tells whether an ancestor file is empty: caught between the
// truncation and the write.
func (c *crashRun) torn() bool {
	for _, d := range c.dirs {
		for _, f := range []string{"memory.min", "memory.low"} {
			b, err := os.ReadFile(filepath.Join(c.e.cgRoot, d, f))
			if err == nil && len(bytes.TrimSpace(b)) == 0 {
				return true
			}
		}
	}
	return false
}

// watch kills the armed plugin at the first write to an ancestor's
// memory.min or memory.low.
func (c *crashRun) watch() {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		c.t.Fatal(err)
	}
	for _, d := range c.dirs {
		if err := w.Add(filepath.Join(c.e.cgRoot, d)); err != nil {
			c.t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if b := filepath.Base(ev.Name); !ev.Has(fsnotify.Write) || (b != "memory.min" && b != "memory.low") {
					continue
				}
				if p := c.armed.Swap(nil); p != nil {
					c.kill(p)
				}
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
			}
		}
	}()
	c.t.Cleanup(func() {
		_ = w.Close()
		<-done
	})
}

// killAndRestart kills the plugin in one of three ways, goes on without it
// for a few operations, starts it again and checks the ancestors.
func (c *crashRun) killAndRestart() {
	c.t.Helper()
	p := c.p
	switch mode := c.rng.Intn(5); {
	case mode == 0:
		c.stats["kill idle"]++
		c.kill(p)
	case mode <= 2:
		// After a random delay within about one operation, with
		// operations in flight.
		c.stats["kill in flight"]++
		delay := time.Duration(c.rng.Int63n(int64(c.opTime) + 1))
		go func() {
			time.Sleep(delay)
			c.kill(p)
		}()
		c.opsUntilDead(p)
	default:
		// At the plugin's next ancestor write.
		c.stats["kill at write"]++
		c.armed.Store(p)
		c.opsUntilDead(p)
	}
	<-p.Done()
	c.kills++
	for range c.rng.Intn(5) {
		c.op()
	}
	c.restart()
	c.checkAncestors(fmt.Sprintf("after restart #%d (plugin #%d)", c.kills, len(c.procs)), crashSettle)
}

// opsUntilDead runs operations until p is being killed, by the timer or
// by the watcher (the operation then in flight is interrupted); after 60
// operations without an ancestor write it is killed here.
func (c *crashRun) opsUntilDead(p *crashProc) {
	c.t.Helper()
	for n := 0; !p.killed.Load(); n++ {
		if n == 60 && c.armed.CompareAndSwap(p, nil) {
			c.stats["kill at write"]--
			c.stats["kill idle"]++
			c.kill(p)
			return
		}
		c.op()
	}
}

// alive tells whether the current plugin is up and not being killed: an
// event that fails then is a failure of the plugin.
func (c *crashRun) alive() bool { return !c.p.killed.Load() && !c.p.Exited() }

//
// Operations, as the runtime relays them.
//

func rpc() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), requestDeadline)
}

// op runs one random operation, keeping the live containers between
// crashMinLive and crashMaxLive.
func (c *crashRun) op() {
	c.t.Helper()
	start := time.Now()
	if !c.alive() {
		c.stats["while down"]++
	}
	n, r := len(c.live), c.rng.Float64()
	switch {
	case n < crashMinLive || (n < crashMaxLive && r < 0.4):
		c.create()
	case r < 0.75:
		c.remove(c.rng.Intn(n))
	default:
		c.resize(c.rng.Intn(n))
	}
	c.ops++
	if c.alive() {
		c.opTime = (7*c.opTime + time.Since(start)) / 8
	}
}

// request is a random request: whole MiB, leaving out those whose
// memory.high sits exactly on a page boundary (k = 4 mod 5 with a 1Gi
// limit), where float rounding could go either way.
func (c *crashRun) request() int64 {
	for {
		if k := 1 + c.rng.Intn(c.maxK); k%5 != 4 {
			return int64(k) * mi
		}
	}
}

func (c *crashRun) create() {
	c.t.Helper()
	c.stats["create"]++
	cp := c.pods[c.rng.Intn(len(c.pods))]
	c.nextID++
	id := fmt.Sprintf("ctr-%04d", c.nextID)
	r := c.request()
	dir := filepath.Join(c.e.cgRoot, cp.rel, id)
	cgtest.Write(c.t, filepath.Join(dir, "memory.max"), "max\n")
	kubelet := map[string]string{"cpu.weight": "79", "memory.min": cgtest.Itoa(r)}
	ctr := newContainer(cp.pod, id, id, crashLimit, kubelet)

	ctx, cancel := rpc()
	defer cancel()
	alive := c.alive()
	rsp, err := c.e.nri.CreateContainer(ctx, &adaptation.CreateContainerRequest{Pod: clonePod(cp.pod), Container: cloneCtr(ctr)})
	if err != nil {
		if alive && c.alive() {
			c.failf("CreateContainer %s (pod %s): %v", id, cp.pod.Name, err)
		}
		// The runtime did not create it.
		c.stats["create failed"]++
		_ = os.RemoveAll(dir)
		return
	}
	created := cloneCtr(ctr)
	nritest.Adjust(created, rsp.GetAdjust())
	c.e.store.AddCreated(created)
	c.ctrs[id] = &crashCtr{id: id, pod: cp, kubelet: r, req: r}
	c.live = append(c.live, id)

	pod, cur := c.e.lookup(id)
	if err := c.e.nri.PostCreateContainer(ctx, &adaptation.PostCreateContainerRequest{Pod: pod, Container: cur}); err != nil && c.alive() {
		c.failf("PostCreateContainer %s: %v", id, err)
	}
	if err := c.e.nri.StartContainer(ctx, &adaptation.StartContainerRequest{Pod: pod, Container: cur}); err != nil {
		if c.alive() {
			c.failf("StartContainer %s: %v", id, err)
		}
		return // stays created
	}
	c.e.store.SetState(id, api.ContainerState_CONTAINER_RUNNING)
}

// remove stops and removes the i-th live container; the runtime forgets it
// whatever the plugin answers.
func (c *crashRun) remove(i int) {
	c.t.Helper()
	c.stats["remove"]++
	id := c.live[i]
	c.live[i] = c.live[len(c.live)-1]
	c.live = c.live[:len(c.live)-1]
	ct := c.ctrs[id]

	ctx, cancel := rpc()
	defer cancel()
	pod, cur := c.e.lookup(id)
	if _, err := c.e.nri.StopContainer(ctx, &adaptation.StopContainerRequest{Pod: pod, Container: cur}); err != nil && c.alive() {
		c.failf("StopContainer %s: %v", id, err)
	}
	c.e.store.SetState(id, api.ContainerState_CONTAINER_STOPPED)
	pod, cur = c.e.lookup(id)
	if err := c.e.nri.RemoveContainer(ctx, &adaptation.RemoveContainerRequest{Pod: pod, Container: cur}); err != nil && c.alive() {
		c.failf("RemoveContainer %s: %v", id, err)
	}
	c.e.store.RemoveContainer(id)
	delete(c.ctrs, id)
	_ = os.RemoveAll(filepath.Join(c.e.cgRoot, ct.pod.rel, id))
}

// resize resizes the i-th live container in place: kubelet's new request
// in its unified memory.min, the limit unchanged. The request the plugin
// resolves is certain only when its values come back in the update.
func (c *crashRun) resize(i int) {
	c.t.Helper()
	c.stats["resize"]++
	ct := c.ctrs[c.live[i]]
	r := c.request()
	for try := 0; r == ct.kubelet && try < 5; try++ {
		r = c.request()
	}
	res := &api.LinuxResources{
		Memory:  &api.LinuxMemory{Limit: api.Int64(crashLimit)},
		Unified: map[string]string{"cpu.weight": "79", "memory.min": cgtest.Itoa(r)},
	}
	ctx, cancel := rpc()
	defer cancel()
	alive := c.alive()
	pod, cur := c.e.lookup(ct.id)
	up, err := c.e.nri.UpdateContainer(ctx, &adaptation.UpdateContainerRequest{Pod: pod, Container: cur, LinuxResources: proto.Clone(res).(*api.LinuxResources)})
	if err != nil {
		if alive && c.alive() {
			c.failf("UpdateContainer %s: %v", ct.id, err)
		}
		// The runtime failed the update, but the plugin may have resolved
		// the new request before it died.
		ct.alts = append(ct.alts, r)
		return
	}
	// The runtime carries out kubelet's request with the plugins' changes.
	c.e.store.ApplyUpdate(&api.ContainerUpdate{ContainerId: ct.id, Linux: &api.LinuxContainerUpdate{Resources: res}})
	var u *api.ContainerUpdate
	for _, x := range up.GetUpdate() {
		if x != nil && x.GetContainerId() == ct.id {
			u = x
		}
	}
	if u != nil {
		c.e.store.ApplyUpdate(u)
	}
	ct.kubelet = r
	switch {
	case ct.pod.class == "":
		ct.req = r
	case u != nil && containsAll(u.GetLinux().GetResources().GetUnified(), crashUnified(ct.pod.class, r)):
		ct.req, ct.alts = r, nil
	default:
		ct.alts = append(ct.alts, r)
	}
	pod, cur = c.e.lookup(ct.id)
	if err := c.e.nri.PostUpdateContainer(ctx, &adaptation.PostUpdateContainerRequest{Pod: pod, Container: cur}); err != nil && c.alive() {
		c.failf("PostUpdateContainer %s: %v", ct.id, err)
	}
}

func containsAll(got, want map[string]string) bool {
	for k, v := range want {
		if w, ok := got[k]; !ok || w != v {
			return false
		}
	}
	return true
}

//
// What should hold.
//

// crashUnified is what the plugin sets for a container of class with
// request r and limit crashLimit (the built-in classes, see harness_test.go).
func crashUnified(class string, r int64) map[string]string {
	switch class {
	case "latency-sensitive":
		return map[string]string{"memory.min": cgtest.Itoa(r), "memory.swap.max": "0"}
	case "burstable":
		return map[string]string{"memory.low": cgtest.Itoa(r), "memory.high": cgtest.Itoa(crashHigh(r, 0.9))}
	case "best-effort":
		return map[string]string{"memory.high": cgtest.Itoa(crashHigh(r, 0.8)), "memory.oom.group": "1"}
	}
	return nil
}

// crashHigh is floor((r + factor*(limit-r))/page)*page.
func crashHigh(r int64, factor float64) int64 {
	page := int64(os.Getpagesize())
	h := int64(math.Floor(float64(r) + float64(factor*float64(crashLimit-r))))
	return h - h%page
}

// promised is the memory.min and memory.low a container's ancestors owe it.
func (ct *crashCtr) promised() (min, low int64) {
	switch ct.pod.class {
	case "latency-sensitive":
		return ct.req, 0
	case "burstable":
		return 0, ct.req
	}
	return 0, 0
}

// expected is, per ancestor file, max(baseline, sum promised below).
func (c *crashRun) expected() (want, sums map[ancFile]int64) {
	sums = map[ancFile]int64{}
	for _, ct := range c.ctrs {
		pmin, plow := ct.promised()
		for _, a := range ct.pod.ancestors {
			sums[ancFile{a, "memory.min"}] += pmin
			sums[ancFile{a, "memory.low"}] += plow
		}
	}
	want = map[ancFile]int64{}
	for _, d := range c.dirs {
		for _, f := range []string{"memory.min", "memory.low"} {
			k := ancFile{d, f}
			want[k] = max(c.baseline[k], sums[k])
		}
	}
	return want, sums
}

// checkAncestors waits up to timeout for every ancestor file to hold
// max(baseline, sum promised below), and fails naming each file that does
// not.
func (c *crashRun) checkAncestors(where string, timeout time.Duration) {
	c.t.Helper()
	c.stats["ancestor checks"]++
	want, sums := c.expected()
	deadline := time.Now().Add(timeout)
	for {
		var bad []string
		for _, k := range slices.SortedFunc(maps.Keys(want), func(a, b ancFile) int {
			return strings.Compare(a.rel+"/"+a.file, b.rel+"/"+b.file)
		}) {
			path := filepath.Join(c.e.cgRoot, k.rel, k.file)
			b, err := os.ReadFile(path)
			got := strings.TrimSpace(string(b))
			if err != nil {
				got = err.Error()
			}
			if got != cgtest.Itoa(want[k]) {
				bad = append(bad, fmt.Sprintf("  %s = %q, want %d (baseline %d, promised below %d)", path, got, want[k], c.baseline[k], sums[k]))
			}
		}
		if len(bad) == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.failf("%s: %d ancestor files are not max(baseline, sum promised below) after %v:\n%s",
				where, len(bad), timeout, strings.Join(bad, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dropped counts the plugins the runtime dropped: killed, or too slow to
// answer (the runtime's plugin request timeout).
func (c *crashRun) dropped() int { return len(c.e.runtimeLog.LinesWith("closing plugin")) }

// quietCheck checks the ancestors while the plugin runs, when the model
// knows every request for sure and the runtime kept the plugin since it
// synchronized (a plugin too slow to answer on a loaded machine is dropped
// and comes back by itself: events went without it meanwhile).
func (c *crashRun) quietCheck(where string) {
	c.t.Helper()
	if !c.alive() || c.e.nri.Syncs() != c.consumed || c.dropped() != c.drops {
		return
	}
	for _, ct := range c.ctrs {
		if len(ct.alts) > 0 {
			return
		}
	}
	c.checkAncestors(fmt.Sprintf("%s (plugin #%d)", where, len(c.procs)), crashSettle)
}
