package cgroupfs

import (
	"errors"
	"fmt"
	"strconv"

	"nri-memqos/pkg/policy"
)

// cgroup v1 memory controller files written by the plugin.
const (
	V1SoftLimit  = "memory.soft_limit_in_bytes"
	V1Swappiness = "memory.swappiness"
	V1MemSwLimit = "memory.memsw.limit_in_bytes"
	V1Limit      = "memory.limit_in_bytes"
)

// v1Unlimited is how cgroup v1 shows an unlimited (-1) limit on 4 KiB pages.
const v1Unlimited = 9223372036854771712

// ApplyV1 writes the v1 values into the container's memory cgroup and returns
// the files it changed. memory.memsw.limit_in_bytes exists only when the
// kernel accounts swap (swapaccount=1); without it the swap value is skipped.
// A vanished cgroup returns an error that IsGone recognises.
func (f *FS) ApplyV1(rel string, v policy.V1Values) ([]string, error) {
	if f.Version != 1 {
		return nil, fmt.Errorf("ApplyV1 on a cgroup v%d mount", f.Version)
	}
	var changed []string
	var errs []error
	write := func(file string, val *int64) {
		if val == nil {
			return
		}
		if cur, err := f.ReadInt(rel, file); err == nil && (cur == *val || (*val < 0 && cur >= v1Unlimited)) {
			return // the kernel shows "unlimited" (-1) as the largest page-aligned value
		}
		ok, err := f.Write(rel, file, strconv.FormatInt(*val, 10))
		if err != nil {
			errs = append(errs, err)
			return
		}
		if ok {
			changed = append(changed, file)
		}
	}
	write(V1SoftLimit, v.SoftLimit)
	write(V1Swappiness, v.Swappiness)
	if v.MemSwLimit != nil && f.Exists(rel, V1MemSwLimit) {
		write(V1MemSwLimit, v.MemSwLimit)
	}
	return changed, errors.Join(errs...)
}
