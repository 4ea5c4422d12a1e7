package main

import (
	"context"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	"github.com/sirupsen/logrus"

	"nri-memqos/pkg/metrics"
	"nri-memqos/pkg/node"
)

// The handlers this plugin relies on. The stub finds handlers by reflection
// and silently ignores one whose signature drifted: these assertions make
// such a drift a compile error.
var (
	_ stub.ConfigureInterface           = (*plugin)(nil)
	_ stub.SynchronizeInterface         = (*plugin)(nil)
	_ stub.CreateContainerInterface     = (*plugin)(nil)
	_ stub.PostCreateContainerInterface = (*plugin)(nil)
	_ stub.StartContainerInterface      = (*plugin)(nil)
	_ stub.UpdateContainerInterface     = (*plugin)(nil)
	_ stub.PostUpdateContainerInterface = (*plugin)(nil)
	_ stub.StopContainerInterface       = (*plugin)(nil)
	_ stub.RemoveContainerInterface     = (*plugin)(nil)
)

// plugin is the NRI adapter: it translates NRI objects into the core's
// facts and the core's decisions into adjustments and updates. Everything
// that outlives one runtime connection lives in the core.
type plugin struct {
	log     *logrus.Logger
	core    *node.Node
	metrics *metrics.Metrics
}

// Configure installs the configuration the runtime hands to pre-registered
// plugins (from its conf.d); without one, the -config file or the defaults.
func (p *plugin) Configure(_ context.Context, cfg, runtime, version string) (stub.EventMask, error) {
	defer p.observe("Configure", time.Now())
	p.log.WithFields(logrus.Fields{"runtime": runtime, "version": version}).Info("connected to runtime")
	return 0, p.core.Configure(cfg)
}

// Synchronize rebuilds the core from what runs and returns the values every
// managed container should hold.
func (p *plugin) Synchronize(_ context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	defer p.observe("Synchronize", time.Now())
	decided, err := p.core.Resync(resyncFacts(pods, ctrs))
	if err != nil {
		return nil, err
	}
	updates := containerUpdates(decided, p.unified)
	if p.metrics != nil {
		p.metrics.SetReady(true)
	}
	return updates, nil
}

// CreateContainer decides the container's memory QoS and returns it as an
// adjustment. A bad label or annotation fails this container only.
func (p *plugin) CreateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	defer p.observe("CreateContainer", time.Now())
	d, err := p.core.Create(facts(pod, ctr, nil))
	if err != nil || d == nil {
		return nil, nil, err
	}
	return creationAdjustment(d, p.unified), nil, nil
}

// PostCreateContainer writes the cgroup v1 values when the container's
// cgroup exists already: CRI-O creates it at creation, containerd only at
// start (then nothing happens here).
func (p *plugin) PostCreateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	defer p.observe("PostCreateContainer", time.Now())
	p.core.PostCreate(facts(pod, ctr, nil))
	return nil
}

// StartContainer writes the cgroup v1 values: the container's cgroup exists
// from here on (values PostCreateContainer wrote are not written again).
func (p *plugin) StartContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	defer p.observe("StartContainer", time.Now())
	p.core.Start(facts(pod, ctr, nil))
	return nil
}

// UpdateContainer recomputes for an in-place resize and returns the new
// values.
func (p *plugin) UpdateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container, res *api.LinuxResources) ([]*api.ContainerUpdate, error) {
	defer p.observe("UpdateContainer", time.Now())
	d, err := p.core.Update(facts(pod, ctr, res))
	if err != nil || d == nil {
		return nil, err
	}
	if u := containerUpdate(ctr.GetId(), d, p.unified); u != nil {
		return []*api.ContainerUpdate{u}, nil
	}
	return nil, nil
}

// PostUpdateContainer lowers ancestors after a shrink and rewrites the v1
// values the runtime's update may have reset.
func (p *plugin) PostUpdateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	defer p.observe("PostUpdateContainer", time.Now())
	p.core.PostUpdate(facts(pod, ctr, nil))
	return nil
}

// StopContainer withdraws the container's protection from its ancestors.
func (p *plugin) StopContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) ([]*api.ContainerUpdate, error) {
	defer p.observe("StopContainer", time.Now())
	p.core.Remove(facts(pod, ctr, nil))
	return nil, nil
}

// RemoveContainer forgets the container.
func (p *plugin) RemoveContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	defer p.observe("RemoveContainer", time.Now())
	p.core.Remove(facts(pod, ctr, nil))
	return nil
}

// observe records how long an NRI event took; use as
// defer p.observe("CreateContainer", time.Now()).
func (p *plugin) observe(event string, start time.Time) {
	if p.metrics != nil {
		p.metrics.ObserveEvent(event, time.Since(start))
	}
}
