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
