//go:build tools

// Package tools pins the real runtime binaries the end-to-end suite builds
// from the Go module proxy: containerd, its runc shim, ctr, runc and crictl,
// and the CNI plugins the real node's pod network uses (ptp, host-local,
// loopback; containerd already depends on that module).
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
	_ "github.com/containernetworking/plugins/plugins/ipam/host-local"
	_ "github.com/containernetworking/plugins/plugins/main/loopback"
	_ "github.com/containernetworking/plugins/plugins/main/ptp"
	_ "github.com/opencontainers/runc"
	_ "sigs.k8s.io/cri-tools/cmd/crictl"
)
