package node

import (
	"maps"
	"time"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/policy"
)

// probe finds out, once, which unified files the kernel offers (cgroup v2):
// a key the kernel lacks (memory.swap.max without swap accounting) would
// fail the container in runc. Until a cgroup to look in exists (kubelet has
// not made kubepods yet) every key counts as offered and each event probes
// again: for kubepods always (two stat calls), through the other children
// of the root at most every probeScanEvery. Callers hold n.mu.
func (n *Node) probe() {
	if n.probed || n.fs == nil || n.fs.Version != 2 {
		return
	}
	now := time.Now()
	scan := !now.Before(n.nextScan)
	offered, dir, ok := n.fs.ProbeUnified(cgroupfs.UnifiedFiles, scan)
	if !ok {
		if scan {
			n.nextScan = now.Add(probeScanEvery)
		}
		return
	}
	n.probed = true
	var missing []string
	for _, f := range cgroupfs.UnifiedFiles {
		if !offered[f] {
			missing = append(missing, f)
			n.log.WithField("cgroup", dir).Warnf("the kernel offers no %s: the plugin does not set it (for memory.swap.max: swap accounting is off or the kernel has no swap)", f)
		}
	}
	if len(missing) > 0 {
		n.unsupported = make(map[string]bool, len(missing))
		for _, f := range missing {
			n.unsupported[f] = true
		}
		n.reconciler.SkipFiles(missing)
	}
}

// probeScanEvery bounds how often a probe that finds no kubepods scans the
// root's children.
const probeScanEvery = time.Second

// UnifiedV2 is the decision's unified map without the keys the kernel does
// not offer: what goes into the container's creation adjustment or update.
func (n *Node) UnifiedV2(d *policy.Decision) map[string]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.offered(d)
}

// offered is UnifiedV2 for callers that hold n.mu.
func (n *Node) offered(d *policy.Decision) map[string]string {
	u := d.UnifiedV2()
	if len(n.unsupported) > 0 {
		maps.DeleteFunc(u, func(k, _ string) bool { return n.unsupported[k] })
	}
	return u
}
