package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"

	"nri-memqos/test/internal/cgtest"
)

// workload is one pod with one container created through the runtime.
type workload struct {
	name, uid, id string
	labels        map[string]string
	annotations   map[string]string
	kubelet       map[string]string
	// want is what the plugin puts in the unified map (nil: not managed).
	want map[string]string
}

func (e *env) deploy(t *testing.T, w workload) {
	t.Helper()
	e.v2Tree(w.uid, w.id)
	pod := newPod(w.name, w.uid, false, w.labels, w.annotations)
	e.runPod(pod)
	rsp := e.mustCreate(pod, newContainer(pod, "app", w.id, limit512Mi, w.kubelet))
	checkMap(t, w.name+": unified keys of the creation adjustment", rsp.GetAdjust().GetLinux().GetResources().GetUnified(), w.want)
	e.start(w.id)
}

// checkSyncUpdates asserts that the updates returned by a synchronization
// are exactly one per managed workload, holding the creation values.
func checkSyncUpdates(t *testing.T, updates []*api.ContainerUpdate, ws ...workload) {
	t.Helper()
	byID := map[string]*api.ContainerUpdate{}
	for _, u := range updates {
		if _, dup := byID[u.GetContainerId()]; dup {
			t.Errorf("two synchronization updates for container %s", u.GetContainerId())
		}
		byID[u.GetContainerId()] = u
	}
	managed := 0
	for _, w := range ws {
		u, ok := byID[w.id]
		if w.want == nil {
			if ok {
				t.Errorf("%s: synchronization update %v for a container that is not opted in", w.name, u)
			}
			continue
		}
		managed++
		if !ok {
			t.Errorf("%s: no synchronization update", w.name)
			continue
		}
		res := u.GetLinux().GetResources()
		checkMap(t, w.name+": unified of the synchronization update", res.GetUnified(), w.want)
		if l := res.GetMemory().GetLimit(); l != nil {
			t.Errorf("%s: synchronization update sets memory limit %d", w.name, l.GetValue())
		}
		if !u.GetIgnoreFailure() {
			t.Errorf("%s: synchronization update does not ignore failure", w.name)
		}
	}
	if len(updates) != managed {
		t.Errorf("synchronization returned %d updates, want %d", len(updates), managed)
	}
}

// TestPluginRestartSynchronize kills the plugin, changes the cgroup tree
// behind its back and starts it again: the runtime's synchronization hands
// it the running containers as the runtime knows them (the creation's
// resolved-request annotation, the plugin's own values in the unified map),
// and the plugin must return exactly the creation values, without drifting
// by reading its own memory.min back as the request, and rewrite the
// ancestors.
func TestPluginRestartSynchronize(t *testing.T) {
	e := newEnv(t)
	e.mustStartNRI()
	// protect-half protects half of the request: a plugin that took its own
	// memory.min for kubelet's request would halve it again.
	cfg := e.writeConfig("memqos.yaml", 2, "classes:\n  protect-half:\n    min: 0.5\n")
	p1 := e.startPlugin(cfg)
	e.waitSync(p1)

	ls := workload{
		name: "ls", uid: "a1b2c3d4-0001-4000-8000-000000000001", id: "ctr-ls",
		labels: map[string]string{labelClass: "latency-sensitive"}, annotations: map[string]string{annRequest: "256Mi"},
		kubelet: kubeletUnified,
		want:    map[string]string{"memory.min": "268435456", "memory.swap.max": "0"},
	}
	bu := workload{
		name: "bu", uid: "a1b2c3d4-0002-4000-8000-000000000002", id: "ctr-bu",
		labels: map[string]string{labelClass: "burstable"}, annotations: map[string]string{annRequest: "256Mi"},
		kubelet: kubeletUnified,
		want:    map[string]string{"memory.low": "268435456", "memory.high": cgtest.Itoa(burstableHigh512Mi)},
	}
	// The request comes from kubelet's memory.min (256Mi): memory.min = 128Mi.
	half := workload{
		name: "half", uid: "a1b2c3d4-0003-4000-8000-000000000003", id: "ctr-half",
		labels:  map[string]string{labelClass: "protect-half"},
		kubelet: map[string]string{"cpu.weight": "79", "memory.min": "268435456"},
		want:    map[string]string{"memory.min": "134217728"},
	}
	plain := workload{
		name: "plain", uid: "a1b2c3d4-0004-4000-8000-000000000004", id: "ctr-plain",
		labels: map[string]string{"app": "plain"}, kubelet: kubeletUnified,
	}
	all := []workload{ls, bu, half, plain}
	for _, w := range all {
		e.deploy(t, w)
	}

	// kubepods levels: min = 256Mi + 128Mi, low = 256Mi.
	want := map[string]string{}
	for path, v := range e.ancestorFiles(ls.uid, "268435456", "0", "402653184", "268435456") {
		want[path] = v
	}
	for path, v := range e.ancestorFiles(bu.uid, "0", "268435456", "402653184", "268435456") {
		want[path] = v
	}
	for path, v := range e.ancestorFiles(half.uid, "134217728", "0", "402653184", "268435456") {
		want[path] = v
	}
	for path, v := range e.ancestorFiles(plain.uid, "0", "0", "402653184", "268435456") {
		want[path] = v
	}
	checkFiles(t, want)

	_, c := e.lookup(half.id)
	if got := c.GetAnnotations()[annResolved]; got != "268435456" {
		t.Fatalf("runtime's container %s has %s=%q, want 268435456 stamped at creation", half.id, annResolved, got)
	}
	if got := c.GetLinux().GetResources().GetUnified()["memory.min"]; got != "134217728" {
		t.Fatalf("runtime's container %s has memory.min=%q, want the plugin's 134217728", half.id, got)
	}

	p1.Kill()
	// Behind the plugin's back: the pod's and the node level's protection
	// are reset.
	lsPod, kubepods := e.ancestors(ls.uid)["pod"], e.ancestors(ls.uid)["kubepods"]
	cgtest.Write(t, filepath.Join(lsPod, "memory.min"), "0\n")
	cgtest.Write(t, filepath.Join(kubepods, "memory.low"), "0\n")

	p2 := e.startPlugin(cfg)
	ev := e.waitSync(p2)
	if ev.Pods != 4 || ev.Ctrs != 4 {
		t.Errorf("synchronization delivered %d pods and %d containers, want 4 and 4", ev.Pods, ev.Ctrs)
	}
	checkSyncUpdates(t, ev.Updates, all...)
	checkFiles(t, want)

	// The restarted plugin serves events, and still knows the ancestor
	// values its previous incarnation wrote (saved under -state-dir):
	// removing the latency-sensitive container withdraws its protection
	// from the pod and from the levels the restart did not rewrite.
	e.remove(ls.id)
	checkFiles(t, map[string]string{
		filepath.Join(lsPod, "memory.min"):                 "0",
		filepath.Join(lsPod, "memory.low"):                 "0",
		filepath.Join(kubepods, "memory.min"):              "134217728",
		filepath.Join(kubepods, "burstable", "memory.min"): "134217728",
		filepath.Join(kubepods, "memory.low"):              "268435456",
	})
	if _, err := os.Stat(filepath.Join(e.stateDir(), "ancestors.json")); err != nil {
		t.Errorf("plugin saved no state in -state-dir: %v", err)
	}
}

// TestRuntimeRestartReconnect stops the adaptation and starts a new one on
// the same socket; the plugin process, not restarted, must reconnect by
// itself, synchronize, and serve the next CreateContainer.
func TestRuntimeRestartReconnect(t *testing.T) {
	e, p := startExternal(t, 2, "", "-reconnect-max", "500ms")
	ls := workload{
		name: "ls", uid: "b1b2c3d4-0001-4000-8000-000000000001", id: "ctr-ls",
		labels: map[string]string{labelClass: "latency-sensitive"}, annotations: map[string]string{annRequest: "256Mi"},
		kubelet: kubeletUnified,
		want:    map[string]string{"memory.min": "268435456", "memory.swap.max": "0"},
	}
	e.deploy(t, ls)
	checkFiles(t, e.ancestorFiles(ls.uid, "268435456", "0", "268435456", "0"))

	// The runtime goes away: its listener and its connections.
	e.stopNRI()
	if n := e.dropConnections(); n == 0 {
		t.Fatal("found no plugin connection of the stopped adaptation to drop")
	}
	e.mustStartNRI()
	began := time.Now()
	ev := e.waitSync(p)
	t.Logf("plugin reconnected and synchronized %v after the runtime restart", time.Since(began).Round(time.Millisecond))
	if ev.Ctrs != 1 {
		t.Errorf("synchronization delivered %d containers, want 1", ev.Ctrs)
	}
	checkSyncUpdates(t, ev.Updates, ls)
	if p.Exited() {
		t.Fatalf("plugin process exited: %v", p.Err())
	}
	if !strings.Contains(p.log.String(), "reconnecting") {
		t.Errorf("plugin log does not tell it reconnected")
	}

	bu := workload{
		name: "bu", uid: "b1b2c3d4-0002-4000-8000-000000000002", id: "ctr-bu",
		labels: map[string]string{labelClass: "burstable"}, annotations: map[string]string{annRequest: "256Mi"},
		kubelet: kubeletUnified,
		want:    map[string]string{"memory.low": "268435456", "memory.high": cgtest.Itoa(burstableHigh512Mi)},
	}
	e.deploy(t, bu)
	checkFiles(t, e.ancestorFiles(ls.uid, "268435456", "0", "268435456", "268435456"))
	checkFiles(t, e.ancestorFiles(bu.uid, "0", "268435456", "268435456", "268435456"))
}
