package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"nri-memqos/pkg/protection"
)

// Fighting: a file reset by someone else more than fightResets times within
// fightWindow is reported, at most once per fightReport.
const (
	fightResets = 3
	fightWindow = 10 * time.Minute
	fightReport = time.Hour
)

// repairs counts the ancestor values written back, per cgroup, and tells
// when another agent keeps resetting one file.
type repairs struct {
	mu       sync.Mutex
	byPath   map[string]uint64
	resets   map[string][]time.Time // per "path/file", within fightWindow
	reported map[string]time.Time
	logged   map[string]bool
}

func newRepairs() *repairs {
	return &repairs{byPath: map[string]uint64{}, resets: map[string][]time.Time{},
		reported: map[string]time.Time{}, logged: map[string]bool{}}
}

// AncestorRepairs returns how many times the plugin wrote back an ancestor
// value someone else had lowered below its target, per cgroup path.
func (n *Node) AncestorRepairs() map[string]uint64 {
	n.repairs.mu.Lock()
	defer n.repairs.mu.Unlock()
	out := make(map[string]uint64, len(n.repairs.byPath))
	for p, c := range n.repairs.byPath {
		out[p] = c
	}
	return out
}

// RepairAncestors checks every ancestor the ledger holds and writes back
// max(baseline, sum promised below) where someone else lowered it (cgroup
// v2). The ledger locks one ancestor at a time, and the node's lock is not
// held across the I/O, so events are not kept waiting.
func (n *Node) RepairAncestors(now time.Time) {
	defer n.repairing.End(n.repairing.Begin("ancestor repair"))
	n.mu.Lock()
	fs := n.fs
	n.mu.Unlock()
	if fs == nil || fs.Version != 2 {
		return
	}
	changes, err := n.ledger.Repair(fs)
	if err != nil {
		n.log.Warnf("ancestor repair: %v", err)
	}
	if len(changes) == 0 {
		return
	}
	for _, c := range changes {
		l := n.log.WithFields(logrus.Fields{"cgroup": c.Path, "file": c.File, "found": c.From, "restored": c.To})
		if !c.Repair {
			l.Debug("ancestor protection")
			continue
		}
		n.repairs.note(l, c, now)
	}
}

func (r *repairs) note(l *logrus.Entry, c protection.Change, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byPath[c.Path]++
	k := c.Path + "/" + c.File
	if !r.logged[k] {
		r.logged[k] = true
		l.Warn("ancestor protection repaired: someone else lowered a value the plugin set; further repairs of it are counted, not logged")
	}
	times := append(r.resets[k], now)
	for len(times) > 0 && now.Sub(times[0]) > fightWindow {
		times = times[1:]
	}
	r.resets[k] = times
	if len(times) > fightResets && now.Sub(r.reported[k]) >= fightReport {
		r.reported[k] = now
		l.WithField("resets", len(times)).Warn(fmt.Sprintf(
			"another agent keeps resetting %s (%d times in %v): kubelet's MemoryQoS (feature gate MemoryQoS) rewrites QoS-level memory.min and memory.low every minute; "+
				"set memoryReservationPolicy: TieredReservation in the kubelet configuration, or turn the MemoryQoS gate off, to stop it", k, len(times), fightWindow))
	}
}

// RepairInProgress returns the oldest ancestor work in progress (a repair,
// or a pass of the ancestor writer) and since when, for the liveness
// check; ok is false when none runs. It takes none of the node's locks.
func (n *Node) RepairInProgress() (what string, since time.Time, ok bool) {
	return n.repairing.Oldest()
}

// runRepairs checks the ancestors every reconciler.ancestorInterval (with
// ancestorInterval 0, every driftInterval) while the reconciler is enabled,
// until ctx ends.
func (n *Node) runRepairs(ctx context.Context) {
	interval := n.ancestorInterval()
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if d := n.ancestorInterval(); d > 0 {
				n.RepairAncestors(now)
				if d != interval {
					interval = d
					t.Reset(d)
				}
			}
		}
	}
}

// ancestorInterval is how often the ancestors are checked: the configured
// ancestorInterval, else the driftInterval; 0 when the reconciler is
// disabled.
func (n *Node) ancestorInterval() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cfg == nil || !n.cfg.Reconciler.Enabled {
		return 0
	}
	if d := n.cfg.Reconciler.AncestorInterval.Duration; d > 0 {
		return d
	}
	return n.cfg.Reconciler.DriftInterval.Duration
}
