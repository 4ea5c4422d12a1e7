package nritest

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
)

func ctr(id, pod string) *api.Container {
	return &api.Container{Id: id, PodSandboxId: pod, Linux: &api.LinuxContainer{Resources: &api.LinuxResources{}}}
}

func TestStore(t *testing.T) {
	s := NewStore()
	s.AddPod(&api.PodSandbox{Id: "p1"})
	s.AddPod(&api.PodSandbox{Id: "p2"})
	for _, id := range []string{"c", "a", "b"} {
		s.AddCreated(ctr(id, "p1"))
	}
	s.AddCreated(ctr("d", "p2"))
	s.SetState("a", api.ContainerState_CONTAINER_RUNNING)

	pods, ctrs := s.Snapshot()
	if len(pods) != 2 {
		t.Errorf("Snapshot has %d pods, want 2", len(pods))
	}
	var order []string
	for _, c := range ctrs {
		order = append(order, c.Id)
	}
	if got, want := order, []string{"c", "a", "b", "d"}; !slices.Equal(got, want) {
		t.Errorf("Snapshot containers %v, want creation order %v", got, want)
	}
	if ctrs[0].CreatedAt != 1 || ctrs[0].State != api.ContainerState_CONTAINER_CREATED || ctrs[1].State != api.ContainerState_CONTAINER_RUNNING {
		t.Errorf("c: CreatedAt %d state %v, a: state %v; want 1 CREATED, RUNNING", ctrs[0].CreatedAt, ctrs[0].State, ctrs[1].State)
	}
	ctrs[0].Id = "changed"
	if _, c, ok := s.Lookup("c"); !ok || c.Id != "c" {
		t.Errorf("Lookup(c) = %v, %v after changing the snapshot: want the store's own copy", c, ok)
	}

	s.RemovePod("p1")
	if _, ctrs := s.Snapshot(); len(ctrs) != 1 || ctrs[0].Id != "d" {
		t.Errorf("after RemovePod(p1) the store has %v, want only d", ctrs)
	}
	s.RemoveContainer("d")
	if pods, ctrs := s.Snapshot(); len(pods) != 1 || len(ctrs) != 0 {
		t.Errorf("after RemoveContainer(d): %d pods, %d containers; want 1, 0", len(pods), len(ctrs))
	}
}

func TestAdjustAndUpdate(t *testing.T) {
	c := ctr("c", "p")
	c.Linux.Resources.Unified = map[string]string{"cpu.weight": "79"}
	adj := &api.ContainerAdjustment{}
	adj.AddAnnotation("memqos.nri.io/resolved-request", "268435456")
	adj.RemoveAnnotation("gone")
	adj.SetLinuxMemoryLimit(536870912)
	adj.AddLinuxUnified("memory.min", "268435456")
	Adjust(c, adj)
	if got := c.Annotations; len(got) != 1 || got["memqos.nri.io/resolved-request"] != "268435456" {
		t.Errorf("annotations %v, want only the resolved request", got)
	}
	if got := c.Linux.Resources.Unified; len(got) != 2 || got["cpu.weight"] != "79" || got["memory.min"] != "268435456" {
		t.Errorf("unified %v, want cpu.weight=79 memory.min=268435456", got)
	}
	if l := c.Linux.Resources.Memory.GetLimit().GetValue(); l != 536870912 {
		t.Errorf("limit %d, want 536870912", l)
	}

	s := NewStore()
	s.AddCreated(c)
	u := &api.ContainerUpdate{ContainerId: "c"}
	u.SetLinuxMemoryLimit(1073741824)
	u.AddLinuxUnified("memory.low", "536870912")
	if !s.ApplyUpdate(u) {
		t.Fatal("ApplyUpdate(c) = false")
	}
	_, got, _ := s.Lookup("c")
	if l := got.Linux.Resources.Memory.GetLimit().GetValue(); l != 1073741824 || got.Linux.Resources.Unified["memory.low"] != "536870912" {
		t.Errorf("after the update: limit %d, unified %v; want 1073741824 and memory.low=536870912", l, got.Linux.Resources.Unified)
	}
	if s.ApplyUpdate(&api.ContainerUpdate{ContainerId: "unknown"}) {
		t.Error("ApplyUpdate(unknown) = true")
	}
}

func TestRuntimeWithoutPlugins(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "nrit")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	paths, err := Layout(dir)
	if err != nil {
		t.Fatal(err)
	}
	store := NewStore()
	r, err := Start(paths, store)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	if ev, ok := r.PreSync(); !ok || ev.Pods != 0 || ev.Ctrs != 0 || ev.Err != nil {
		t.Errorf("PreSync() = %+v, %v; want an empty synchronization", ev, ok)
	}
	if _, ok := r.PreSync(); ok {
		t.Error("a second PreSync() found another synchronization")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.RunPod(ctx, &api.PodSandbox{Id: "p", Name: "p", Uid: "u"}); err != nil {
		t.Fatal(err)
	}
	if pods, _ := store.Snapshot(); len(pods) != 1 || pods[0].Id != "p" {
		t.Errorf("store pods %v after RunPod, want p", pods)
	}
	if _, err := r.WaitSync(nil, 50*time.Millisecond); err != ErrTimeout {
		t.Errorf("WaitSync without a plugin = %v, want ErrTimeout", err)
	}
	exited := make(chan struct{})
	close(exited)
	if _, err := r.WaitSync(exited, time.Second); err != ErrExited {
		t.Errorf("WaitSync with the plugin gone = %v, want ErrExited", err)
	}
	if n := r.Syncs(); n != 0 {
		t.Errorf("Syncs() = %d, want 0", n)
	}
}
