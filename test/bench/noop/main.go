// Command noop is an NRI plugin that adjusts and updates nothing. The
// hook-cost benchmark (test/bench/hook) uses it as the baseline of what any
// external plugin costs: the ttrpc round trip from the runtime to a plugin
// process and back. It subscribes to the same container events as
// nri-memqos (creation, post-creation, start, update, post-update, stop,
// removal), so that each of them costs the baseline the same round trip.
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

// plugin implements nri-memqos' container events and does nothing in them.
type plugin struct{}

var (
	_ stub.CreateContainerInterface     = plugin{}
	_ stub.PostCreateContainerInterface = plugin{}
	_ stub.StartContainerInterface      = plugin{}
	_ stub.UpdateContainerInterface     = plugin{}
	_ stub.PostUpdateContainerInterface = plugin{}
	_ stub.StopContainerInterface       = plugin{}
	_ stub.RemoveContainerInterface     = plugin{}
)

// CreateContainer adjusts nothing.
func (plugin) CreateContainer(context.Context, *api.PodSandbox, *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	return nil, nil, nil
}

// PostCreateContainer does nothing.
func (plugin) PostCreateContainer(context.Context, *api.PodSandbox, *api.Container) error {
	return nil
}

// StartContainer does nothing.
func (plugin) StartContainer(context.Context, *api.PodSandbox, *api.Container) error {
	return nil
}

// UpdateContainer updates nothing.
func (plugin) UpdateContainer(context.Context, *api.PodSandbox, *api.Container, *api.LinuxResources) ([]*api.ContainerUpdate, error) {
	return nil, nil
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
	)
	flag.Parse()

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	s, err := stub.New(plugin{}, stub.WithSocketPath(*socket), stub.WithPluginName(*name), stub.WithPluginIdx(*idx))
	if err != nil {
		fmt.Fprintf(os.Stderr, "noop: %v\n", err)
		os.Exit(1)
	}
	if err := s.Run(ctx); err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "noop: %v\n", err)
		os.Exit(1)
	}
}
