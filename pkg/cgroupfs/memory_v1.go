package cgroupfs

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// v1Unlimited is how cgroup v1 shows an unlimited (-1) limit on 4 KiB pages.
const v1Unlimited = 9223372036854771712

// ApplyV1 writes values (file name → value; -1 is unlimited) into the
// container's cgroup v1 memory directory, in a fixed order (soft limit,
// swappiness, memsw limit), and returns the files it changed. It accepts
// V1SoftLimit, V1Swappiness and V1MemSwLimit. memory.memsw.limit_in_bytes
// exists only when the kernel accounts swap (swapaccount=1); without it the
// swap value is skipped. A vanished cgroup returns an error that IsGone
// recognises.
func (f *FS) ApplyV1(rel string, values map[string]int64) ([]string, error) {
	if f.Version != 1 {
		return nil, fmt.Errorf("ApplyV1 on a cgroup v%d mount", f.Version)
	}
	for file := range values {
		if !slices.Contains(v1Order, file) {
			return nil, fmt.Errorf("ApplyV1: %q is not a file it writes; allowed: %s", file, strings.Join(v1Order, ", "))
		}
	}
	var changed []string
	var errs []error
	for _, file := range v1Order {
		val, ok := values[file]
		if !ok || (file == V1MemSwLimit && !f.Exists(rel, file)) {
			continue
		}
		if cur, err := f.ReadInt(rel, file); err == nil && (cur == val || (val < 0 && cur >= v1Unlimited)) {
			continue // the kernel shows "unlimited" (-1) as the largest page-aligned value
		}
		ok, err := f.Write(rel, file, strconv.FormatInt(val, 10))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			changed = append(changed, file)
		}
	}
	return changed, errors.Join(errs...)
}
