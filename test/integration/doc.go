// Package integration holds the in-process integration tests of nri-memqos.
//
// The tests build the real plugin binary once, run a real NRI runtime
// adaptation (github.com/containerd/nri/pkg/adaptation) inside the test
// process, and connect the plugin to it either as an external plugin (over a
// unix socket) or as a pre-registered plugin launched by the adaptation. The
// plugin writes into a fake cgroup tree laid out in a temporary directory.
// No root privileges and no real cgroups are needed.
package integration
