// Package state keeps what the plugin must remember across its own restarts
// in one JSON file, written atomically: the ancestor cgroup values it wrote
// with their baselines, the memory request it resolved per container, and
// per container the values it set and what to give back on cleanup. Keep
// the file on a tmpfs such as /run: cgroups and containers do not survive a
// reboot either.
package state
