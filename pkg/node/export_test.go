package node

import "time"

// SetLifecycleClock sets the clock the core uses to tell a container left
// created from one about to start.
func (n *Node) SetLifecycleClock(now func() time.Time) {
	p := n.pending()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.now = now
}

// AncestorCheckInterval is how often the ancestors are checked.
func (n *Node) AncestorCheckInterval() time.Duration { return n.ancestorInterval() }

// PauseAncestorWriter keeps the ancestor writer from its next pass until
// resume is called.
func (n *Node) PauseAncestorWriter() (resume func()) {
	n.effects.hold.Lock()
	return n.effects.hold.Unlock
}

// AncestorWriterRunning tells whether Run's ancestor writer took over.
func (n *Node) AncestorWriterRunning() bool {
	n.effects.mu.Lock()
	defer n.effects.mu.Unlock()
	return n.effects.running
}

// SetMemoryRelease replaces what the core calls to give memory back after
// a mass removal.
func (n *Node) SetMemoryRelease(f func()) { n.shrink.release = f }

// HeapNow is the live heap after a full collection (memory tests).
var HeapNow = heapNow
