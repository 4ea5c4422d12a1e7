//go:build tools

// Package etcd pins the etcd the end-to-end suite's control plane stores
// its state in. The etcd binary is the main package at the root of the
// go.etcd.io/etcd/server/v3 module (etcd's own build runs `go build` in
// server/). It is a module of its own, beside test/tools/kube, so that
// etcd and Kubernetes are each built with the dependency versions their
// own go.mod pins: in one module, minimal version selection moves 22 of
// the modules kubelet, kube-apiserver and kubectl are built from (grpc,
// OpenTelemetry, golang.org/x/..., the etcd client) and 7 of etcd's.
package etcd

import (
	_ "go.etcd.io/etcd/server/v3"
)
