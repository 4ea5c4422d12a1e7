package main

import (
	"context"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"

	"nri-memqos/pkg/health"
)

// The handlers the stub sees on watched: the same as the plugin's.
var (
	_ stub.ConfigureInterface           = watched{}
	_ stub.SynchronizeInterface         = watched{}
	_ stub.CreateContainerInterface     = watched{}
	_ stub.PostCreateContainerInterface = watched{}
	_ stub.StartContainerInterface      = watched{}
	_ stub.UpdateContainerInterface     = watched{}
	_ stub.PostUpdateContainerInterface = watched{}
	_ stub.StopContainerInterface       = watched{}
	_ stub.RemoveContainerInterface     = watched{}
)

// watched is the plugin as the NRI stub sees it: each handler marks its
// event in progress for the liveness check (/healthz fails when one has
// not finished for longer than -liveness-timeout, a plugin wedged on its
// lock), then runs the plugin's. TestWatchedCoversEveryHandler keeps the
// two method sets equal.
type watched struct {
	*plugin
	events *health.InFlight
}

func (w watched) begin(event string) uint64 { return w.events.Begin("NRI event " + event) }

func (w watched) Configure(ctx context.Context, cfg, runtime, version string) (stub.EventMask, error) {
	defer w.events.End(w.begin("Configure"))
	return w.plugin.Configure(ctx, cfg, runtime, version)
}

func (w watched) Synchronize(ctx context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	defer w.events.End(w.begin("Synchronize"))
	return w.plugin.Synchronize(ctx, pods, ctrs)
}

func (w watched) CreateContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	defer w.events.End(w.begin("CreateContainer"))
	return w.plugin.CreateContainer(ctx, pod, ctr)
}

func (w watched) PostCreateContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	defer w.events.End(w.begin("PostCreateContainer"))
	return w.plugin.PostCreateContainer(ctx, pod, ctr)
}

func (w watched) StartContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	defer w.events.End(w.begin("StartContainer"))
	return w.plugin.StartContainer(ctx, pod, ctr)
}

func (w watched) UpdateContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container, res *api.LinuxResources) ([]*api.ContainerUpdate, error) {
	defer w.events.End(w.begin("UpdateContainer"))
	return w.plugin.UpdateContainer(ctx, pod, ctr, res)
}

func (w watched) PostUpdateContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	defer w.events.End(w.begin("PostUpdateContainer"))
	return w.plugin.PostUpdateContainer(ctx, pod, ctr)
}

func (w watched) StopContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) ([]*api.ContainerUpdate, error) {
	defer w.events.End(w.begin("StopContainer"))
	return w.plugin.StopContainer(ctx, pod, ctr)
}

func (w watched) RemoveContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	defer w.events.End(w.begin("RemoveContainer"))
	return w.plugin.RemoveContainer(ctx, pod, ctr)
}
