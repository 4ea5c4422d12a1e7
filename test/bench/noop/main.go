// Command noop is an NRI plugin that subscribes to CreateContainer only and
// adjusts nothing. The hook-cost benchmark (test/bench/hook) uses it as the
// baseline of what any external plugin costs: the ttrpc round trip from the
// runtime to a plugin process and back.
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

// plugin implements CreateContainer only.
type plugin struct{}

var _ stub.CreateContainerInterface = plugin{}

// CreateContainer adjusts nothing.
func (plugin) CreateContainer(context.Context, *api.PodSandbox, *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	return nil, nil, nil
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
