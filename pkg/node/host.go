package node

import (
	"errors"
	"fmt"
	"os"

	"github.com/prometheus/procfs"

	"nri-memqos/pkg/cgroupfs"
)

// Host is what the node offers, read once at start.
type Host struct {
	// MemTotal is node memory in bytes (/proc/meminfo MemTotal).
	MemTotal int64
	// PageSize in bytes.
	PageSize int64
}

// ReadHost reads node memory and page size.
func ReadHost() (Host, error) {
	_, total, err := readMeminfo(false)
	if err != nil {
		return Host{}, err
	}
	return Host{MemTotal: total, PageSize: int64(os.Getpagesize())}, nil
}

// ReadMeminfo reads MemAvailable and MemTotal, for the reconciler.
func ReadMeminfo() (avail, total int64, err error) { return readMeminfo(true) }

func readMeminfo(needAvail bool) (avail, total int64, err error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0, 0, fmt.Errorf("procfs: %w", err)
	}
	mi, err := fs.Meminfo()
	if err != nil {
		return 0, 0, fmt.Errorf("failed to read /proc/meminfo: %w", err)
	}
	if mi.MemTotalBytes == nil {
		return 0, 0, errors.New("/proc/meminfo has no MemTotal")
	}
	if needAvail {
		if mi.MemAvailableBytes == nil {
			return 0, 0, errors.New("/proc/meminfo has no MemAvailable or MemTotal")
		}
		avail = int64(*mi.MemAvailableBytes)
	}
	return avail, int64(*mi.MemTotalBytes), nil
}

// ReadNodePSI reads the node's memory pressure (/proc/pressure/memory,
// Linux 4.20+ with PSI on).
func ReadNodePSI() (cgroupfs.PSI, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return cgroupfs.PSI{}, fmt.Errorf("procfs: %w", err)
	}
	st, err := fs.PSIStatsForResource("memory")
	if err != nil {
		return cgroupfs.PSI{}, err
	}
	var p cgroupfs.PSI
	if st.Some != nil {
		p.SomeAvg10, p.SomeTotal = st.Some.Avg10, st.Some.Total
	}
	if st.Full != nil {
		p.FullAvg10, p.FullTotal = st.Full.Avg10, st.Full.Total
	}
	return p, nil
}
