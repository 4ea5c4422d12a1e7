// Package config holds the nri-memqos configuration: the QoS classes, how
// pods pick them, and the node-wide guardrails. It parses and validates; it
// performs no cgroup I/O.
package config
