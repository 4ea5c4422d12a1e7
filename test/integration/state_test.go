package integration

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"

	"nri-memqos/pkg/state"
	"nri-memqos/test/internal/cgtest"
)

// stateFileName is the file the plugin keeps under -state-dir.
const stateFileName = "ancestors.json"

// readState reads the plugin's state under -state-dir (snapshot and
// journals) as `nri-memqos cleanup` does; raw is it as JSON, for messages.
func (e *env) readState() (st *state.State, raw string) {
	e.t.Helper()
	path := filepath.Join(e.stateDir(), stateFileName)
	st, err := state.Read(path)
	if err != nil {
		e.t.Fatalf("plugin state: %v", err)
	}
	b, _ := json.Marshal(st)
	return st, string(b)
}

// forgetPod makes the runtime forget a pod and its containers without
// telling any plugin (they were removed while the plugin was down), and
// removes the pod's cgroup directory as kubelet and the runtime would.
func (e *env) forgetPod(pod *api.PodSandbox, podDir string) {
	e.t.Helper()
	e.store.RemovePod(pod.GetId())
	// Fake cgroup directories hold regular files: rmdir needs them gone
	// first (the kernel removes a real cgroup's files with it).
	if err := os.RemoveAll(podDir); err != nil {
		e.t.Fatal(err)
	}
	if _, err := os.Stat(podDir); !os.IsNotExist(err) {
		e.t.Fatalf("pod cgroup %s still there: %v", podDir, err)
	}
}

// recordUpdate applies a container update the runtime carried out to its
// view of the container (the unified map and the memory limit), as the
// runtime's next synchronization will report it.
func (e *env) recordUpdate(u *api.ContainerUpdate) {
	e.t.Helper()
	if !e.store.ApplyUpdate(u) {
		e.t.Fatalf("update for unknown container %s", u.GetContainerId())
	}
}

// TestRemovedWhilePluginDown removes a latency-sensitive container, its pod
// and the pod's cgroup while the plugin is down. The restarted plugin (same
// -state-dir) knows from its state file that it raised the kubepods and
// QoS-class levels itself: its synchronization must lower them back to what
// the containers still running need, also when no running container lives
// below them any more ("alone"). Values kubelet wrote there, which the
// plugin never wrote, stay untouched, and a surviving container keeps its
// protection ("with survivor").
func TestRemovedWhilePluginDown(t *testing.T) {
	for _, survivor := range []bool{false, true} {
		name := "alone"
		if survivor {
			name = "with survivor"
		}
		t.Run(name, func(t *testing.T) { testRemovedWhilePluginDown(t, survivor) })
	}
}

func testRemovedWhilePluginDown(t *testing.T, survivor bool) {
	const kubeletLow = "1073741824" // 1Gi, above any sum of this test
	e := newEnv(t)
	a := e.ancestors("d1b2c3d4-0001-4000-8000-000000000001")
	kubepods, burstable := a["kubepods"], a["kubepods/burstable"]
	// kubelet's own values, in the tree before the plugin ever ran.
	cgtest.Write(t, filepath.Join(kubepods, "memory.low"), kubeletLow+"\n")
	cgtest.Write(t, filepath.Join(burstable, "memory.low"), kubeletLow+"\n")

	e.mustStartNRI()
	cfg := e.writeConfig("memqos.yaml", 2, "")
	p1 := e.startPlugin(cfg)
	e.waitSync(p1)

	gone := workload{
		name: "gone", uid: "d1b2c3d4-0001-4000-8000-000000000001", id: "ctr-gone",
		labels: map[string]string{labelClass: "latency-sensitive"}, annotations: map[string]string{annRequest: "256Mi"},
		kubelet: kubeletUnified,
		want:    map[string]string{"memory.min": "268435456", "memory.swap.max": "0"},
	}
	stays := workload{
		name: "stays", uid: "d1b2c3d4-0002-4000-8000-000000000002", id: "ctr-stays",
		labels: map[string]string{labelClass: "burstable"}, annotations: map[string]string{annRequest: "256Mi"},
		kubelet: kubeletUnified,
		want:    map[string]string{"memory.low": "268435456", "memory.high": cgtest.Itoa(burstableHigh512Mi)},
	}
	e.deploy(t, gone)
	goneDir := e.ancestors(gone.uid)["pod"]
	staysDir := e.ancestors(stays.uid)["pod"]
	if survivor {
		e.deploy(t, stays)
	}

	// kubepods and kubepods/burstable: memory.min raised for "gone",
	// memory.low kubelet's (above the 256Mi of "stays": not written).
	want := map[string]string{
		filepath.Join(kubepods, "memory.min"):  "268435456",
		filepath.Join(burstable, "memory.min"): "268435456",
		filepath.Join(goneDir, "memory.min"):   "268435456",
		filepath.Join(goneDir, "memory.low"):   "0",
		filepath.Join(kubepods, "memory.low"):  kubeletLow,
		filepath.Join(burstable, "memory.low"): kubeletLow,
	}
	if survivor {
		want[filepath.Join(staysDir, "memory.low")] = "268435456"
		want[filepath.Join(staysDir, "memory.min")] = "0"
	}
	checkFiles(t, want)
	st, raw := e.readState()
	if _, ok := st.Requests[gone.id]; !ok {
		t.Errorf("state file does not hold the request of %s before the kill:\n%s", gone.id, raw)
	}
	for _, v := range st.Ancestors {
		if v.File == "memory.low" && (v.Path == "/kubepods" || v.Path == "/kubepods/burstable") {
			t.Errorf("state file claims kubelet's %s/memory.low=%d as the plugin's:\n%s", v.Path, v.Value, raw)
		}
	}

	p1.Kill()
	pod, _ := e.lookup(gone.id)
	e.forgetPod(pod, goneDir)

	p2 := e.startPlugin(cfg)
	ev := e.waitSync(p2)
	wantPods := 0
	var running []workload
	if survivor {
		wantPods = 1
		running = append(running, stays)
	}
	if ev.Pods != wantPods || ev.Ctrs != wantPods {
		t.Errorf("synchronization delivered %d pods and %d containers, want %d and %d", ev.Pods, ev.Ctrs, wantPods, wantPods)
	}
	checkSyncUpdates(t, ev.Updates, running...)

	// What "gone" needed is withdrawn; kubelet's values and what "stays"
	// needs are kept.
	want = map[string]string{
		filepath.Join(kubepods, "memory.min"):  "0",
		filepath.Join(burstable, "memory.min"): "0",
		filepath.Join(kubepods, "memory.low"):  kubeletLow,
		filepath.Join(burstable, "memory.low"): kubeletLow,
	}
	if survivor {
		want[filepath.Join(staysDir, "memory.low")] = "268435456"
		want[filepath.Join(staysDir, "memory.min")] = "0"
	}
	checkFiles(t, want)
	if _, err := os.Stat(goneDir); !os.IsNotExist(err) {
		t.Errorf("the synchronization recreated the removed pod's cgroup %s (%v)", goneDir, err)
	}
	st, raw = e.readState()
	if _, ok := st.Requests[gone.id]; ok {
		t.Errorf("state file still holds the request of the removed container %s:\n%s", gone.id, raw)
	}
	if survivor {
		if got, ok := st.Requests[stays.id]; !ok || got != request256Mi {
			t.Errorf("state file request of %s = %d (present %v), want %d:\n%s", stays.id, got, ok, request256Mi, raw)
		}
	}
	for _, v := range st.Ancestors {
		if (v.Path == "/kubepods" || v.Path == "/kubepods/burstable") && v.File == "memory.min" {
			t.Errorf("state file still claims %s/%s=%d after it was lowered:\n%s", v.Path, v.File, v.Value, raw)
		}
	}
	if p2.Exited() {
		t.Fatalf("restarted plugin exited: %v", p2.Err())
	}

	if !survivor {
		return
	}
	// The restarted plugin serves events: removing "stays" withdraws its
	// protection from its pod; kubelet's values still stay.
	e.remove(stays.id)
	checkFiles(t, map[string]string{
		filepath.Join(staysDir, "memory.low"):  "0",
		filepath.Join(kubepods, "memory.low"):  kubeletLow,
		filepath.Join(burstable, "memory.low"): kubeletLow,
		filepath.Join(kubepods, "memory.min"):  "0",
		filepath.Join(burstable, "memory.min"): "0",
	})
}

// TestResizeRequestSurvivesRestart resizes a burstable container in place
// with a new memory request from kubelet (its unified memory.min), then
// restarts the plugin: the synchronization must keep the resized request,
// saved in the state file, instead of reverting to the request stamped on
// the container at creation.
func TestResizeRequestSurvivesRestart(t *testing.T) {
	// burstable, request 512Mi, limit 1Gi:
	// floor((512Mi + 0.9*(1Gi-512Mi))/4096)*4096
	// = floor((536870912 + 483183820.8)/4096)*4096
	// = floor(1020054732.8/4096)*4096 = 249036*4096
	const burstableHigh512MiOf1Gi = 1020051456
	const request512Mi = 512 * mi // 536870912

	e := newEnv(t)
	e.mustStartNRI()
	cfg := e.writeConfig("memqos.yaml", 2, "")
	p1 := e.startPlugin(cfg)
	e.waitSync(p1)

	uid, id := "e1b2c3d4-0001-4000-8000-000000000001", "ctr-resize-request"
	e.v2Tree(uid, id)
	// No request annotation: the request is kubelet's memory.min.
	pod := newPod("resize-request", uid, false, map[string]string{labelClass: "burstable"}, nil)
	e.runPod(pod)
	kubelet := map[string]string{"cpu.weight": "79", "memory.min": "268435456"}
	rsp := e.mustCreate(pod, newContainer(pod, "app", id, limit512Mi, kubelet))
	checkMap(t, "unified keys of the creation adjustment", rsp.GetAdjust().GetLinux().GetResources().GetUnified(),
		map[string]string{"memory.low": "268435456", "memory.high": cgtest.Itoa(burstableHigh512Mi)})
	checkMap(t, "annotations of the creation adjustment", rsp.GetAdjust().GetAnnotations(), map[string]string{annResolved: "268435456"})
	e.start(id)
	checkFiles(t, e.ancestorFiles(uid, "0", "268435456", "0", "268435456"))

	// kubelet resizes: limit 1Gi, request 512Mi (its memory.min).
	pod, ctr := e.lookup(id)
	resize := &api.LinuxResources{
		Memory:  &api.LinuxMemory{Limit: api.Int64(limit1Gi)},
		Unified: map[string]string{"cpu.weight": "79", "memory.min": cgtest.Itoa(request512Mi)},
	}
	up, err := e.nri.UpdateContainer(ctx(t), &adaptation.UpdateContainerRequest{Pod: pod, Container: ctr, LinuxResources: resize})
	if err != nil {
		t.Fatalf("UpdateContainer: %v", err)
	}
	if len(up.GetUpdate()) != 1 || up.GetUpdate()[0] == nil {
		t.Fatalf("UpdateContainer returned %v, want one update (the resized container)", up.GetUpdate())
	}
	u := up.GetUpdate()[0]
	if u.GetContainerId() != id {
		t.Errorf("update is for container %q, want %q", u.GetContainerId(), id)
	}
	res := u.GetLinux().GetResources()
	checkMap(t, "unified of the resize update", res.GetUnified(), map[string]string{
		"cpu.weight":  "79",
		"memory.min":  "536870912",
		"memory.low":  "536870912",
		"memory.high": cgtest.Itoa(burstableHigh512MiOf1Gi),
	})
	if l := res.GetMemory().GetLimit(); l == nil || l.GetValue() != limit1Gi {
		t.Errorf("memory limit of the resize update = %v, want %d", l, limit1Gi)
	}
	if err := e.nri.PostUpdateContainer(ctx(t), &adaptation.PostUpdateContainerRequest{Pod: pod, Container: ctr}); err != nil {
		t.Fatalf("PostUpdateContainer: %v", err)
	}
	e.recordUpdate(u)
	checkFiles(t, e.ancestorFiles(uid, "0", "536870912", "0", "536870912"))

	st, raw := e.readState()
	if !strings.Contains(raw, id) {
		t.Errorf("state file does not mention container %s:\n%s", id, raw)
	}
	if got, ok := st.Requests[id]; !ok || got != request512Mi {
		t.Errorf("state file request of %s = %d (present %v), want the resized %d:\n%s", id, got, ok, request512Mi, raw)
	}

	p1.Kill()

	// What the runtime reports now: the creation annotation, and the
	// unified map holding kubelet's memory.min next to the plugin's own
	// values.
	_, c := e.lookup(id)
	if got := c.GetAnnotations()[annResolved]; got != "268435456" {
		t.Fatalf("runtime's container has %s=%q, want 268435456 stamped at creation", annResolved, got)
	}
	checkMap(t, "runtime's unified map of the container", c.GetLinux().GetResources().GetUnified(), map[string]string{
		"cpu.weight":  "79",
		"memory.min":  "536870912",
		"memory.low":  "536870912",
		"memory.high": cgtest.Itoa(burstableHigh512MiOf1Gi),
	})
	if l := c.GetLinux().GetResources().GetMemory().GetLimit(); l == nil || l.GetValue() != limit1Gi {
		t.Fatalf("runtime's container memory limit = %v, want %d", l, limit1Gi)
	}

	p2 := e.startPlugin(cfg)
	ev := e.waitSync(p2)
	checkSyncUpdates(t, ev.Updates, workload{
		name: "resize-request", id: id,
		want: map[string]string{"memory.low": "536870912", "memory.high": cgtest.Itoa(burstableHigh512MiOf1Gi)},
	})
	checkFiles(t, e.ancestorFiles(uid, "0", "536870912", "0", "536870912"))
	st, raw = e.readState()
	if got, ok := st.Requests[id]; !ok || got != request512Mi {
		t.Errorf("state file request of %s after the restart = %d (present %v), want %d:\n%s", id, got, ok, request512Mi, raw)
	}
}

// TestNoStateDir runs the plugin with -state-dir "": it serves containers
// as usual and writes no state file anywhere.
func TestNoStateDir(t *testing.T) {
	began := time.Now()
	const defaultState = "/run/nri-memqos/" + stateFileName
	var defaultBefore os.FileInfo
	if fi, err := os.Stat(defaultState); err == nil {
		defaultBefore = fi
	}

	// The harness passes -state-dir <test dir>/state first; the later
	// flag wins.
	e, p := startExternal(t, 2, "", "-state-dir", "")
	ls := workload{
		name: "ls", uid: "f1b2c3d4-0001-4000-8000-000000000001", id: "ctr-ls",
		labels: map[string]string{labelClass: "latency-sensitive"}, annotations: map[string]string{annRequest: "256Mi"},
		kubelet: kubeletUnified,
		want:    map[string]string{"memory.min": "268435456", "memory.swap.max": "0"},
	}
	bu := workload{
		name: "bu", uid: "f1b2c3d4-0002-4000-8000-000000000002", id: "ctr-bu",
		labels: map[string]string{labelClass: "burstable"}, annotations: map[string]string{annRequest: "256Mi"},
		kubelet: kubeletUnified,
		want:    map[string]string{"memory.low": "268435456", "memory.high": cgtest.Itoa(burstableHigh512Mi)},
	}
	e.deploy(t, ls)
	e.deploy(t, bu)
	checkFiles(t, e.ancestorFiles(ls.uid, "268435456", "0", "268435456", "268435456"))
	checkFiles(t, e.ancestorFiles(bu.uid, "0", "268435456", "268435456", "268435456"))
	e.remove(ls.id)
	checkFiles(t, e.ancestorFiles(bu.uid, "0", "268435456", "0", "268435456"))
	if p.Exited() {
		t.Fatalf("plugin exited: %v", p.Err())
	}

	if _, err := os.Stat(e.stateDir()); !os.IsNotExist(err) {
		t.Errorf("-state-dir \"\": the plugin created %s (%v)", e.stateDir(), err)
	}
	err := filepath.WalkDir(e.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name := d.Name(); name == stateFileName || strings.HasPrefix(name, ".state-") {
			t.Errorf("-state-dir \"\": the plugin wrote %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The plugin runs in the test's working directory.
	if _, err := os.Stat(stateFileName); err == nil {
		t.Errorf("-state-dir \"\": the plugin wrote %s in its working directory", stateFileName)
	}
	// Nor the default /run/nri-memqos.
	if fi, err := os.Stat(defaultState); err == nil {
		if defaultBefore == nil || fi.ModTime().After(began) {
			t.Errorf("-state-dir \"\": the plugin wrote the default %s", defaultState)
		}
	}
}
