package integration

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	"github.com/sirupsen/logrus"
	"google.golang.org/protobuf/proto"

	"nri-memqos/test/internal/cgtest"
	"nri-memqos/test/internal/logbuf"
	"nri-memqos/test/internal/nritest"
	"nri-memqos/test/internal/proc"
)

// Values the tests use, and the expected numbers computed by hand from the
// formulas of the built-in classes (page size 4096):
//
//	latency-sensitive: memory.min = 1.0*request, memory.swap.max = 0
//	burstable:         memory.low = 1.0*request,
//	                   memory.high = floor((request + 0.9*(limit-request))/4096)*4096
//	best-effort:       memory.high = floor((request + 0.8*(limit-request))/4096)*4096,
//	                   memory.oom.group = 1
const (
	mi = int64(1) << 20

	request256Mi = 256 * mi  // 268435456
	limit512Mi   = 512 * mi  // 536870912
	limit1Gi     = 1024 * mi // 1073741824

	// burstable, request 256Mi, limit 512Mi:
	// 268435456 + 0.9*268435456 = 510027366.4 -> 510027366 -> 124518 pages.
	burstableHigh512Mi = 124518 * 4096 // 510025728
	// burstable, request 256Mi, limit 1Gi:
	// 268435456 + 0.9*805306368 = 993211187.2 -> 993211187 -> 242483 pages.
	burstableHigh1Gi = 242483 * 4096 // 993210368
	// best-effort, request 0, limit 512Mi:
	// 0.8*536870912 = 429496729.6 -> 429496729 -> 104857 pages.
	bestEffortHigh512Mi = 104857 * 4096 // 429494272

	labelClass      = "memqos.nri.io/class"
	annRequest      = "memqos.nri.io/memory-request"
	annResolved     = "memqos.nri.io/resolved-request"
	testNamespace   = "team-a"
	waitTimeout     = 5 * time.Second
	requestDeadline = 10 * time.Second

	// v1 defaults as the kernel and kubelet leave them.
	v1Unlimited         = "9223372036854771712"
	v1SoftLimitDefault  = v1Unlimited
	v1SwappinessDefault = "60"
)

// env is the world of one test: a short temporary directory holding the NRI
// socket, plugin and config dirs and the fake cgroup tree; the runtime's
// pods and containers, which outlive adaptation restarts; the running
// adaptation.
type env struct {
	t          *testing.T
	dir        string
	paths      nritest.Paths
	cgRoot     string
	runtimeLog *logbuf.Buffer

	store   *nritest.Store
	nri     *nritest.Runtime
	plugins int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	// Unix socket paths are limited to ~108 bytes: keep it short.
	dir, err := os.MkdirTemp("/tmp", "nri")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	paths, err := nritest.Layout(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		t:          t,
		dir:        dir,
		paths:      paths,
		cgRoot:     filepath.Join(dir, "cg"),
		runtimeLog: &logbuf.Buffer{},
		store:      nritest.NewStore(),
	}
	if err := os.MkdirAll(e.cgRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	logrus.SetOutput(e.runtimeLog)
	logrus.SetLevel(logrus.InfoLevel)
	logrus.SetFormatter(&logrus.TextFormatter{DisableQuote: true})
	t.Cleanup(func() {
		e.stopNRI()
		if t.Failed() {
			t.Logf("runtime (adaptation) log:\n%s", e.runtimeLog)
		}
	})
	return e
}

// writeConfig writes a plugin configuration file for the fake cgroup tree.
func (e *env) writeConfig(name string, version int, extra string) string {
	e.t.Helper()
	path := filepath.Join(e.dir, name)
	text := fmt.Sprintf("cgroupVersion: %d\ncgroupRoot: %s\n%s", version, e.cgRoot, extra)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// startNRI creates and starts a new adaptation on the env's socket.
func (e *env) startNRI() error {
	e.t.Helper()
	r, err := nritest.Start(e.paths, e.store)
	if err != nil {
		return err
	}
	e.nri = r
	return nil
}

func (e *env) mustStartNRI() {
	e.t.Helper()
	if err := e.startNRI(); err != nil {
		e.t.Fatalf("starting the NRI adaptation: %v", err)
	}
}

func (e *env) stopNRI() {
	if e.nri != nil {
		e.nri.Stop()
		e.nri = nil
	}
}

// preSync returns the syncFn call Start() made for pre-registered plugins.
func (e *env) preSync() nritest.SyncEvent {
	e.t.Helper()
	ev, ok := e.nri.PreSync()
	if !ok {
		e.t.Fatal("Start() did not call syncFn for pre-registered plugins")
	}
	return ev
}

// waitSync waits until an external plugin has synchronized with the current
// adaptation (not counting the syncFn call of Start) and is registered. p,
// when not nil, is the plugin process expected to do so: its exit fails the
// test at once.
func (e *env) waitSync(p *pluginProc) nritest.SyncEvent {
	e.t.Helper()
	var exited <-chan struct{}
	if p != nil {
		exited = p.Done()
	}
	ev, err := e.nri.WaitSync(exited, waitTimeout)
	switch {
	case errors.Is(err, nritest.ErrExited):
		e.t.Fatalf("plugin exited before synchronizing: %v", p.Err())
	case errors.Is(err, nritest.ErrTimeout):
		e.t.Fatalf("no plugin synchronized within %v", waitTimeout)
	case ev.Err != nil:
		e.t.Fatalf("plugin synchronization failed: %v", ev.Err)
	}
	return ev
}

// dropConnections shuts down every connection the adaptation accepted on
// the socket, as the death of the runtime process would: Adaptation.Stop()
// closes the listener but leaves the connections of external plugins open.
func (e *env) dropConnections() int {
	e.t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, ent := range entries {
		fd, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		sa, err := syscall.Getsockname(fd)
		if err != nil {
			continue
		}
		if ua, ok := sa.(*syscall.SockaddrUnix); ok && ua.Name == e.paths.Socket {
			if err := syscall.Shutdown(fd, syscall.SHUT_RDWR); err == nil {
				n++
			}
		}
	}
	return n
}

// pluginProc is a plugin process started by the test, with its output.
type pluginProc struct {
	*proc.Process
	log *logbuf.Buffer
}

// stateDir is where the env's plugins keep their state across restarts
// (never the default /run/nri-memqos of the host).
func (e *env) stateDir() string { return filepath.Join(e.dir, "state") }

// startPlugin starts the plugin binary as an external plugin.
func (e *env) startPlugin(config string, extra ...string) *pluginProc {
	e.t.Helper()
	args := append([]string{"-socket", e.paths.Socket, "-config", config, "-log-level", "debug", "-state-dir", e.stateDir()}, extra...)
	cmd := exec.Command(pluginBin, args...)
	log := &logbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	pr, err := proc.Start(cmd)
	if err != nil {
		e.t.Fatalf("starting the plugin: %v", err)
	}
	p := &pluginProc{Process: pr, log: log}
	e.plugins++
	n := e.plugins
	e.t.Cleanup(func() {
		// Gracefully, killing it if it does not stop.
		p.Stop(3 * time.Second)
		if e.t.Failed() {
			e.t.Logf("plugin #%d (pid %d, %v) log:\n%s", n, p.Pid(), p.Err(), p.log)
		}
	})
	return p
}

//
// Pods and containers.
//

// newPod returns a Burstable pod of the cgroupfs driver
// (cgroup parent /kubepods/burstable/pod<uid>), or of the systemd driver
// (kubepods-burstable-pod<uid_with_underscores>.slice).
func newPod(name, uid string, systemd bool, labels, annotations map[string]string) *api.PodSandbox {
	parent := "/kubepods/burstable/pod" + uid
	if systemd {
		parent = "kubepods-burstable-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice"
	}
	return &api.PodSandbox{
		Id:          "sandbox-" + name,
		Name:        name,
		Uid:         uid,
		Namespace:   testNamespace,
		Labels:      labels,
		Annotations: annotations,
		Linux:       &api.LinuxPodSandbox{CgroupParent: parent},
	}
}

// newContainer returns a container of pod with a memory limit (0: none) and
// kubelet's unified map.
func newContainer(pod *api.PodSandbox, name, id string, limit int64, unified map[string]string) *api.Container {
	parent := pod.GetLinux().GetCgroupParent()
	path := parent + "/" + id
	if strings.HasSuffix(parent, ".slice") {
		path = parent + ":cri-containerd:" + id
	}
	res := &api.LinuxResources{Unified: maps.Clone(unified)}
	if limit > 0 {
		res.Memory = &api.LinuxMemory{Limit: api.Int64(limit)}
	}
	return &api.Container{
		Id:           id,
		PodSandboxId: pod.GetId(),
		Name:         name,
		State:        api.ContainerState_CONTAINER_UNKNOWN,
		Linux:        &api.LinuxContainer{CgroupsPath: path, Resources: res},
	}
}

func clonePod(p *api.PodSandbox) *api.PodSandbox { return proto.Clone(p).(*api.PodSandbox) }
func cloneCtr(c *api.Container) *api.Container   { return proto.Clone(c).(*api.Container) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), requestDeadline)
	t.Cleanup(cancel)
	return c
}

func (e *env) runPod(pod *api.PodSandbox) {
	e.t.Helper()
	if err := e.nri.RunPod(ctx(e.t), clonePod(pod)); err != nil {
		e.t.Fatalf("RunPodSandbox %s: %v", pod.Name, err)
	}
}

// create relays CreateContainer; on success the runtime records the
// container as the adjustment left it (annotations, unified, limit).
func (e *env) create(pod *api.PodSandbox, ctr *api.Container) (*adaptation.CreateContainerResponse, error) {
	e.t.Helper()
	rsp, err := e.nri.CreateContainer(ctx(e.t), &adaptation.CreateContainerRequest{Pod: clonePod(pod), Container: cloneCtr(ctr)})
	if err != nil {
		return nil, err
	}
	c := cloneCtr(ctr)
	nritest.Adjust(c, rsp.GetAdjust())
	e.store.AddCreated(c)
	return rsp, nil
}

func (e *env) mustCreate(pod *api.PodSandbox, ctr *api.Container) *adaptation.CreateContainerResponse {
	e.t.Helper()
	rsp, err := e.create(pod, ctr)
	if err != nil {
		e.t.Fatalf("CreateContainer %s/%s: %v", pod.Name, ctr.Name, err)
	}
	return rsp
}

// lookup returns the runtime's pod and container for a container id.
func (e *env) lookup(id string) (*api.PodSandbox, *api.Container) {
	e.t.Helper()
	pod, c, ok := e.store.Lookup(id)
	if !ok {
		e.t.Fatalf("unknown container %s", id)
	}
	return pod, c
}

func (e *env) start(id string) {
	e.t.Helper()
	pod, c := e.lookup(id)
	if err := e.nri.StartContainer(ctx(e.t), &adaptation.StartContainerRequest{Pod: pod, Container: c}); err != nil {
		e.t.Fatalf("StartContainer %s: %v", id, err)
	}
	e.store.SetState(id, api.ContainerState_CONTAINER_RUNNING)
}

func (e *env) stop(id string) {
	e.t.Helper()
	pod, c := e.lookup(id)
	if _, err := e.nri.StopContainer(ctx(e.t), &adaptation.StopContainerRequest{Pod: pod, Container: c}); err != nil {
		e.t.Fatalf("StopContainer %s: %v", id, err)
	}
	e.store.SetState(id, api.ContainerState_CONTAINER_STOPPED)
}

func (e *env) remove(id string) {
	e.t.Helper()
	pod, c := e.lookup(id)
	if err := e.nri.RemoveContainer(ctx(e.t), &adaptation.RemoveContainerRequest{Pod: pod, Container: c}); err != nil {
		e.t.Fatalf("RemoveContainer %s: %v", id, err)
	}
	e.store.RemoveContainer(id)
}

//
// The fake cgroup tree.
//

// v2Tree lays out <root>/kubepods/burstable/pod<uid>/<id>/ with memory.min
// and memory.low holding "0\n" at each ancestor level (shared levels are
// left alone when they exist already). It returns the pod directory.
func (e *env) v2Tree(uid, id string) string {
	e.t.Helper()
	levels := []string{"kubepods", "kubepods/burstable", "kubepods/burstable/pod" + uid}
	for _, l := range levels {
		cgtest.ZeroProtection(e.t, filepath.Join(e.cgRoot, l))
	}
	podDir := filepath.Join(e.cgRoot, levels[2])
	// The container's own files are the runtime's business (unified).
	cgtest.Write(e.t, filepath.Join(podDir, id, "memory.max"), "max\n")
	return podDir
}

// v1Tree lays out the memory directory of a container on cgroup v1 at
// <root>/memory/<rel> with the kernel's defaults and kubelet's limit.
func (e *env) v1Tree(rel string, limit int64) string {
	e.t.Helper()
	dir := filepath.Join(e.cgRoot, "memory", rel)
	cgtest.Write(e.t, filepath.Join(dir, "memory.soft_limit_in_bytes"), v1SoftLimitDefault+"\n")
	cgtest.Write(e.t, filepath.Join(dir, "memory.swappiness"), v1SwappinessDefault+"\n")
	cgtest.Write(e.t, filepath.Join(dir, "memory.limit_in_bytes"), cgtest.Itoa(limit)+"\n")
	cgtest.Write(e.t, filepath.Join(dir, "memory.memsw.limit_in_bytes"), v1Unlimited+"\n")
	return dir
}

// ancestors are the three v2 ancestor directories of a pod's container.
func (e *env) ancestors(uid string) map[string]string {
	return map[string]string{
		"kubepods":           filepath.Join(e.cgRoot, "kubepods"),
		"kubepods/burstable": filepath.Join(e.cgRoot, "kubepods", "burstable"),
		"pod":                filepath.Join(e.cgRoot, "kubepods", "burstable", "pod"+uid),
	}
}

// checkFiles asserts the content of files: want maps path to value. The
// plugin writes ancestors in the background after the event (before the
// next StartContainer returns): the files get a few seconds to settle.
func checkFiles(t *testing.T, want map[string]string) {
	t.Helper()
	cgtest.EventuallyFiles(t, "", want, 5*time.Second)
}

// checkMap asserts a string map exactly.
func checkMap(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !maps.Equal(got, want) {
		t.Errorf("%s:\n got  %s\n want %s", what, fmtMap(got), fmtMap(want))
	}
}

func fmtMap(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func union(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// checkNoAdjustment asserts that a CreateContainer response carries nothing
// from any plugin.
func checkNoAdjustment(t *testing.T, rsp *adaptation.CreateContainerResponse) {
	t.Helper()
	if n := len(rsp.GetUpdate()); n != 0 {
		t.Errorf("response has %d container updates, want none", n)
	}
	adj := rsp.GetAdjust()
	if adj == nil {
		return
	}
	if a := adj.GetAnnotations(); len(a) != 0 {
		t.Errorf("adjustment has annotations %s, want none", fmtMap(a))
	}
	res := adj.GetLinux().GetResources()
	if u := res.GetUnified(); len(u) != 0 {
		t.Errorf("adjustment has unified %s, want none", fmtMap(u))
	}
	if m := res.GetMemory(); m.GetLimit() != nil || m.GetSwap() != nil || m.GetReservation() != nil || m.GetSwappiness() != nil {
		t.Errorf("adjustment has memory %v, want none", m)
	}
}
