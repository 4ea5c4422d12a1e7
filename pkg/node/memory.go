package node

import (
	"maps"
	"runtime/debug"
	"sync/atomic"
)

// After a mass removal (a node drained, a big job gone) Go maps keep the
// size they had, and the runtime gives the freed heap back to the OS only
// slowly; the plugin's RSS would stay near its peak. Once the containers
// the core tracks fell below half of their peak since the last release,
// with a peak of at least releaseMin, it makes its per-container maps anew
// (the ledger and the reconciler do the same with theirs) and releases the
// memory, off the event path.

// releaseMin is the smallest peak worth a release.
const releaseMin = 512

// shrinkWatch tracks the peak number of containers since the last release.
type shrinkWatch struct {
	peak      int
	releasing atomic.Bool
	// release frees memory; debug.FreeOSMemory unless a test sets it.
	release func()
}

// noteCount is told the number of tracked containers after each change.
// Callers hold n.mu.
func (n *Node) noteCount(count int) {
	w := &n.shrink
	if count > w.peak {
		w.peak = count
		return
	}
	if w.peak < releaseMin || count > w.peak/2 || !w.releasing.CompareAndSwap(false, true) {
		return
	}
	w.peak = count
	n.containers, n.requests, n.entries = maps.Clone(n.containers), maps.Clone(n.requests), maps.Clone(n.entries)
	release := w.release
	if release == nil {
		release = debug.FreeOSMemory
	}
	go func() {
		defer w.releasing.Store(false)
		release()
	}()
}
