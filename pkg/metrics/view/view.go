// Package view holds what the core shows the metrics at scrape time: the
// managed containers, the node's protection and the reconciler's counts.
// It is apart from package metrics so that the core depends on these types,
// not on the Prometheus client.
package view

import "nri-memqos/pkg/reconcile"

// Container is what the plugin decided for one container.
type Container struct {
	ID, Namespace, Pod, Container, Class string
	// Min and Low are the protection promised (bytes); High the policy's
	// memory.high (0: none).
	Min, Low, High int64
}

// Node is the node-wide protection state.
type Node struct {
	// PromisedMin is the memory.min promised to all containers together;
	// CapMin the most that may be promised (nodeProtectionFraction × MemTotal).
	PromisedMin, CapMin int64
	// PromisedLow and CapLow are the same for memory.low
	// (nodeLowProtectionFraction).
	PromisedLow, CapLow int64
	// AncestorRepairs counts, per ancestor cgroup, the values someone else
	// lowered below what the plugin promised and the plugin wrote back.
	AncestorRepairs map[string]uint64
	// StateBytesWritten counts the bytes written to the state file and its
	// journals since the plugin started.
	StateBytesWritten uint64
}

// Source gives the metrics their values at scrape time.
type Source interface {
	Containers() []Container
	Reconciler() map[string]reconcile.Stats
	Node() Node
}
