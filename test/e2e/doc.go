// Package e2e proves on real runtimes what lands in real cgroup files: a real
// containerd with runc, started by the tests, with nri-memqos as an external
// or pre-registered NRI plugin. On the host it runs on the cgroup version the
// host has (v1 on the project's machines); TestCgroupV2VM boots a Debian
// kernel under qemu and runs the same scenarios there on cgroup v2.
//
// Run it with `make e2e`, which builds the pinned runtime binaries
// (test/tools) and installs the Debian packages it needs.
package e2e
