// Package protection keeps what the plugin promised to each container
// (memory.min and memory.low) and propagates the sums to every ancestor
// cgroup on cgroup v2, because the kernel grants a child no more protection
// than each of its ancestors grants (effective protection).
package protection
