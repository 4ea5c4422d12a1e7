package cgroupfs

// The memory controller files the plugin reads or writes: the one table of
// their names. Other packages use these constants, never the literals.

// cgroup v2 files.
const (
	FileMin      = "memory.min"
	FileLow      = "memory.low"
	FileHigh     = "memory.high"
	FileMax      = "memory.max"
	FileSwapMax  = "memory.swap.max"
	FileOOMGroup = "memory.oom.group"
	FileCurrent  = "memory.current"
	FileEvents   = "memory.events"
	FileStat     = "memory.stat"
	FilePressure = "memory.pressure"
	FileReclaim  = "memory.reclaim"
)

// cgroup v1 files.
const (
	V1SoftLimit  = "memory.soft_limit_in_bytes"
	V1Swappiness = "memory.swappiness"
	V1MemSwLimit = "memory.memsw.limit_in_bytes"
	V1Limit      = "memory.limit_in_bytes"
	V1Usage      = "memory.usage_in_bytes"
	V1OOMControl = "memory.oom_control"
	V1FailCnt    = "memory.failcnt"
)

// v1Order is the order ApplyV1 writes the files it accepts in.
var v1Order = []string{V1SoftLimit, V1Swappiness, V1MemSwLimit}
