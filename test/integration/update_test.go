package integration

import (
	"testing"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"

	"nri-memqos/test/internal/cgtest"
)

// TestUpdateContainerResize resizes a running burstable container in place
// (limit 512Mi -> 1Gi): memory.high must follow the new limit exactly, the
// protection stays, kubelet's keys in the update request are kept.
func TestUpdateContainerResize(t *testing.T) {
	e, _ := startExternal(t, 2, "")
	uid, id := "2b3c4d5e-6f70-4a1b-9c2d-3e4f5a6b7c8d", "ctr-resize"
	e.v2Tree(uid, id)
	pod := newPod("resize", uid, false, map[string]string{labelClass: "burstable"}, map[string]string{annRequest: "256Mi"})
	e.runPod(pod)
	rsp := e.mustCreate(pod, newContainer(pod, "app", id, limit512Mi, kubeletUnified))
	checkMap(t, "unified keys of the creation adjustment", rsp.GetAdjust().GetLinux().GetResources().GetUnified(),
		map[string]string{"memory.low": "268435456", "memory.high": cgtest.Itoa(burstableHigh512Mi)})
	e.start(id)

	// kubelet's resize: the CRI resources it sends carry its own unified
	// keys, not the plugin's.
	pod, ctr := e.lookup(id)
	resize := &api.LinuxResources{
		Memory:  &api.LinuxMemory{Limit: api.Int64(limit1Gi)},
		Unified: map[string]string{"cpu.weight": "79", "memory.oom.group": "1"},
	}
	if burstableHigh1Gi != 993210368 {
		t.Fatal("expected value miscomputed")
	}
	up, err := e.nri.UpdateContainer(ctx(t), &adaptation.UpdateContainerRequest{Pod: pod, Container: ctr, LinuxResources: resize})
	if err != nil {
		t.Fatalf("UpdateContainer: %v", err)
	}
	if n := len(up.GetUpdate()); n != 1 {
		t.Fatalf("UpdateContainer returned %d updates, want 1 (the resized container): %v", n, up.GetUpdate())
	}
	u := up.GetUpdate()[0]
	if u == nil {
		t.Fatal("UpdateContainer returned no update for the resized container: the plugin did not answer")
	}
	if u.GetContainerId() != id {
		t.Errorf("update is for container %q, want %q", u.GetContainerId(), id)
	}
	res := u.GetLinux().GetResources()
	checkMap(t, "unified of the resize update", res.GetUnified(), map[string]string{
		"cpu.weight":       "79",
		"memory.oom.group": "1",
		"memory.low":       "268435456",
		"memory.high":      "993210368",
	})
	if l := res.GetMemory().GetLimit(); l == nil || l.GetValue() != limit1Gi {
		t.Errorf("memory limit of the resize update = %v, want %d", l, limit1Gi)
	}

	if err := e.nri.PostUpdateContainer(ctx(t), &adaptation.PostUpdateContainerRequest{Pod: pod, Container: ctr}); err != nil {
		t.Fatalf("PostUpdateContainer: %v", err)
	}
	checkFiles(t, e.ancestorFiles(uid, "0", "268435456", "0", "268435456"))

	// Shrinking back gives the creation values again.
	resize.Memory.Limit = api.Int64(limit512Mi)
	up, err = e.nri.UpdateContainer(ctx(t), &adaptation.UpdateContainerRequest{Pod: pod, Container: ctr, LinuxResources: resize})
	if err != nil {
		t.Fatalf("UpdateContainer (shrink): %v", err)
	}
	if len(up.GetUpdate()) != 1 || up.GetUpdate()[0] == nil {
		t.Fatalf("UpdateContainer (shrink) returned %v, want one update", up.GetUpdate())
	}
	if got := up.GetUpdate()[0].GetLinux().GetResources().GetUnified()["memory.high"]; got != cgtest.Itoa(burstableHigh512Mi) {
		t.Errorf("memory.high after shrinking to 512Mi = %q, want %d", got, burstableHigh512Mi)
	}
}
