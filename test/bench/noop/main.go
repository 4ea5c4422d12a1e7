// Command noop is an NRI plugin that does no work. The hook-cost benchmark
// (test/bench/hook) uses it as the baseline of what any external plugin
// costs: the ttrpc round trip from the runtime to a plugin process and
// back. It subscribes to the same container events as nri-memqos
// (creation, post-creation, start, update, post-update, stop, removal), so
// that each of them costs the baseline the same round trip.
//
// By default it adjusts and updates nothing. With -adjust it still does no
// work, but returns constants shaped like nri-memqos' answers: from
// CreateContainer an adjustment with the annotation
// memqos.nri.io/resolved-request and the unified keys memory.min and
// memory.swap.max, from UpdateContainer one update of the container with
// the same unified keys. That is the floor of any plugin that adjusts
// something: what the runtime side's handling of an adjustment and of an
// update costs, beyond the round trip.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
)

// The constants -adjust returns, shaped like nri-memqos' answers for a
// latency-sensitive container with a 256Mi request on cgroup v2.
const (
	annResolvedRequest = "memqos.nri.io/resolved-request"
	adjustRequest      = "268435456"
)

// adjustUnified are the unified keys -adjust sets at creation and update.
var adjustUnified = [][2]string{{"memory.min", adjustRequest}, {"memory.swap.max", "0"}}

// plugin implements nri-memqos' container events and does nothing in them;
// with adjust set, CreateContainer and UpdateContainer return constants.
type plugin struct{ adjust bool }

var (
	_ stub.CreateContainerInterface     = plugin{}
	_ stub.PostCreateContainerInterface = plugin{}
	_ stub.StartContainerInterface      = plugin{}
	_ stub.UpdateContainerInterface     = plugin{}
	_ stub.PostUpdateContainerInterface = plugin{}
	_ stub.StopContainerInterface       = plugin{}
	_ stub.RemoveContainerInterface     = plugin{}
)

// CreateContainer adjusts nothing; with -adjust it returns the constant
// adjustment (a new one each time, as a plugin that decides would).
func (p plugin) CreateContainer(context.Context, *api.PodSandbox, *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	if !p.adjust {
		return nil, nil, nil
	}
	a := &api.ContainerAdjustment{}
	a.AddAnnotation(annResolvedRequest, adjustRequest)
	for _, kv := range adjustUnified {
		a.AddLinuxUnified(kv[0], kv[1])
	}
	return a, nil, nil
}

// PostCreateContainer does nothing.
func (plugin) PostCreateContainer(context.Context, *api.PodSandbox, *api.Container) error {
	return nil
}

// StartContainer does nothing.
func (plugin) StartContainer(context.Context, *api.PodSandbox, *api.Container) error {
	return nil
}

// UpdateContainer updates nothing; with -adjust it returns one update of
// the container with the constant unified keys (not marked IgnoreFailure:
// nri-memqos does not mark its UpdateContainer updates either).
func (p plugin) UpdateContainer(_ context.Context, _ *api.PodSandbox, ctr *api.Container, _ *api.LinuxResources) ([]*api.ContainerUpdate, error) {
	if !p.adjust {
		return nil, nil
	}
	u := &api.ContainerUpdate{}
	u.SetContainerId(ctr.GetId())
	for _, kv := range adjustUnified {
		u.AddLinuxUnified(kv[0], kv[1])
	}
	return []*api.ContainerUpdate{u}, nil
}

// PostUpdateContainer does nothing.
func (plugin) PostUpdateContainer(context.Context, *api.PodSandbox, *api.Container) error {
	return nil
}

// StopContainer updates nothing.
func (plugin) StopContainer(context.Context, *api.PodSandbox, *api.Container) ([]*api.ContainerUpdate, error) {
	return nil, nil
}

// RemoveContainer does nothing.
func (plugin) RemoveContainer(context.Context, *api.PodSandbox, *api.Container) error {
	return nil
}

func main() {
	var (
		socket = flag.String("socket", api.DefaultSocketPath, "NRI socket to dial")
		name   = flag.String("name", "noop", "plugin name to register with")
		idx    = flag.String("idx", "10", "plugin index to register with")
		adjust = flag.Bool("adjust", false, "return a constant adjustment from CreateContainer and a constant update from UpdateContainer, shaped like nri-memqos'")
	)
	flag.Parse()

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	s, err := stub.New(plugin{adjust: *adjust}, stub.WithSocketPath(*socket), stub.WithPluginName(*name), stub.WithPluginIdx(*idx))
	if err != nil {
		fmt.Fprintf(os.Stderr, "noop: %v\n", err)
		os.Exit(1)
	}
	if err := s.Run(ctx); err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "noop: %v\n", err)
		os.Exit(1)
	}
}
