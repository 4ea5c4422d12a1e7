package policy

import (
	"math"
	"strconv"

	"nri-memqos/pkg/cgroupfs"
)

// UnifiedV2 returns the keys to merge into the container's unified map on
// cgroup v2. Keys the decision does not set are absent, so the runtime's
// (kubelet's) values for them stay. cgroup v2 has no swappiness: a class that
// asks for swappiness 0 without a swap setting gets memory.swap.max=0.
func (d *Decision) UnifiedV2() map[string]string {
	u := map[string]string{}
	if d.Min != nil {
		u[cgroupfs.FileMin] = strconv.FormatInt(*d.Min, 10)
	}
	if d.Low != nil {
		u[cgroupfs.FileLow] = strconv.FormatInt(*d.Low, 10)
	}
	if d.High != nil {
		u[cgroupfs.FileHigh] = strconv.FormatInt(*d.High, 10)
	}
	switch {
	case d.Swap != nil && d.Swap.Max:
		u[cgroupfs.FileSwapMax] = "max"
	case d.Swap != nil:
		u[cgroupfs.FileSwapMax] = strconv.FormatInt(d.Swap.Bytes, 10)
	case d.Swappiness != nil && *d.Swappiness == 0:
		u[cgroupfs.FileSwapMax] = "0"
	}
	if d.OOMGroup {
		u[cgroupfs.FileOOMGroup] = "1"
	}
	return u
}

// V1Values are what the plugin writes into a container's cgroup v1 memory
// directory itself, because NRI's spec generator drops swappiness and
// reservation at creation. Nil means "leave alone".
type V1Values struct {
	// SoftLimit (memory.soft_limit_in_bytes) is the protected request: the
	// larger of memory.min and memory.low, 0 when the class protects
	// nothing. The kernel's global reclaim takes first from cgroups above
	// their soft limit, so unprotected (best-effort) containers go first and
	// protected ones only above their request; containers the plugin does
	// not manage keep the unlimited default.
	SoftLimit *int64
	// Swappiness (memory.swappiness).
	Swappiness *int64
	// MemSwLimit (memory.memsw.limit_in_bytes) = limit + swap; -1 unlimited.
	// Only when the container has a limit; written only where the kernel
	// accounts swap.
	MemSwLimit *int64
}

// Files returns the values by cgroup v1 file name, as cgroupfs.ApplyV1
// takes them; nil values are absent.
func (v V1Values) Files() map[string]int64 {
	m := make(map[string]int64, 3)
	for file, val := range map[string]*int64{
		cgroupfs.V1SoftLimit: v.SoftLimit, cgroupfs.V1Swappiness: v.Swappiness, cgroupfs.V1MemSwLimit: v.MemSwLimit,
	} {
		if val != nil {
			m[file] = *val
		}
	}
	return m
}

// V1At returns the values for cgroup v1 with limit, the limit in force read
// from the cgroup, in place of the one the decision was made with (0: as
// decided): memory.memsw.limit_in_bytes is the limit in force plus the swap
// allowance, so that a stale limit neither fails the write (memsw below the
// limit) nor grants swap a class is meant not to have.
func (d *Decision) V1At(limit int64) V1Values {
	if limit <= 0 || limit == d.Limit {
		return d.V1()
	}
	at := *d
	at.Limit = limit
	return at.V1()
}

// V1 returns the values for cgroup v1. memory.high, memory.oom.group and
// memory.min have no v1 file; protection becomes the soft limit.
func (d *Decision) V1() V1Values {
	v := V1Values{SoftLimit: ptr(max(d.ProtectedMin(), d.ProtectedLow()))}
	v.Swappiness = d.Swappiness
	if d.Swap != nil && d.Limit > 0 {
		if d.Swap.Max {
			v.MemSwLimit = ptr(int64(-1))
		} else if d.Swap.Bytes > math.MaxInt64-d.Limit {
			v.MemSwLimit = ptr(int64(-1)) // beyond what the kernel can count: unlimited
		} else {
			v.MemSwLimit = ptr(d.Limit + d.Swap.Bytes)
		}
	}
	return v
}
