package node

import (
	"maps"
	"runtime/debug"
	"sync/atomic"
)

// After a mass removal (a node drained, a big job gone) Go maps keep the
// size they had, and the runtime gives the freed heap back to the OS only
// slowly; the plugin's RSS would stay near its peak. On a node that held
// at least releaseMin containers since it was last empty, each time the
// containers the core tracks fall to half of their peak since the last
// release (by at least releaseStep), and once more when none is left, it
// makes its per-container maps anew (the ledger and the reconciler do the
// same with theirs) and releases the memory, off the event path.

// releaseMin is the smallest peak worth a release.
const releaseMin = 512

// releaseStep is the smallest fall worth a release before the last one.
const releaseStep = 256

// shrinkWatch tracks the peak number of containers since the last release.
type shrinkWatch struct {
	peak int
	// big tells that the node held releaseMin containers since it was
	// last empty.
	big bool
	// releasing is set while a release runs; again asks it to run once
	// more when it is done (maps were made anew meanwhile).
	releasing, again atomic.Bool
	// release frees memory; debug.FreeOSMemory unless a test sets it.
	release func()
}

// noteCount is told the number of tracked containers after each change.
// Callers hold n.mu.
func (n *Node) noteCount(count int) {
	w := &n.shrink
	if count > w.peak {
		w.peak = count
		w.big = w.big || count >= releaseMin
		return
	}
	fell := count <= w.peak/2 && (w.peak-count >= releaseStep || count == 0)
	if !w.big || !fell {
		return
	}
	w.peak = count
	w.big = count > 0
	// Made anew at their size: maps.Clone would keep the capacity of the
	// peak (Go maps never shrink).
	n.containers, n.requests = maps.Collect(maps.All(n.containers)), maps.Collect(maps.All(n.requests))
	n.entries, n.promises = maps.Collect(maps.All(n.entries)), maps.Collect(maps.All(n.promises))
	w.again.Store(true)
	if !w.releasing.CompareAndSwap(false, true) {
		return // the release under way runs again
	}
	release := w.release
	if release == nil {
		release = debug.FreeOSMemory
	}
	go func() {
		for w.again.Swap(false) {
			release()
		}
		w.releasing.Store(false)
		// A request that came between the last Swap and the Store is
		// served by the next fall; the maps are already small.
	}()
}
