//go:build tools

// Package kube pins the Kubernetes node and control plane the end-to-end
// suite builds from the Go module proxy: kubelet, kube-apiserver,
// kube-controller-manager, kube-scheduler and kubectl (etcd is pinned in
// ./etcd). It is a module of its own so that
// Kubernetes is built with exactly the dependency versions its go.mod pins
// and test/tools' containerd, runc and crictl keep theirs: in test/tools,
// minimal version selection would move 10 of the modules containerd and
// crictl are built from (k8s.io/cri-api, client-go and apimachinery, grpc
// middleware among them) and 40 of Kubernetes' (OpenTelemetry,
// golang.org/x/..., opencontainers/cgroups).
package kube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
