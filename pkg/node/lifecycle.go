package node

import (
	"sync"
	"time"
)

// createdGrace is how long a container may stay created but not started
// and still show in the per-container metrics. containerd sends no
// StopContainer when a task fails to start (NewTask), so such a container
// stays known until kubelet removes it, next to its successor of the same
// name: past this it is a leftover, not a container about to start.
const createdGrace = time.Minute

// pending are the containers the core saw created (NRI CreateContainer)
// and not yet started (NRI StartContainer), with when it saw them created.
// Containers it learned of otherwise (Synchronize) are taken as started.
type pending struct {
	// now is the clock; nil means time.Now.
	now func() time.Time

	mu    sync.Mutex
	since map[string]time.Time
}

func (n *Node) pending() *pending { return n.pend }

// noteCreated records that container id was created and has not started.
// Create calls it once the container is tracked, holding n.mu.
func (n *Node) noteCreated(id string) {
	p := n.pending()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.since[id] = p.clock()
	// Containers removed before they started (Remove does not tell us):
	// drop them once they outnumber the containers tracked.
	if len(p.since) > 2*len(n.containers)+64 {
		p.pruneLocked(n.containers)
	}
}

// noteStarted records that container id started. Start calls it, holding
// n.mu, whatever the cgroup version.
func (n *Node) noteStarted(id string) {
	p := n.pending()
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.since, id)
}

// leftovers returns the tracked containers created more than createdGrace
// ago that never started, and forgets the pending containers no longer
// tracked. Callers hold n.mu.
func (n *Node) leftovers() map[string]bool {
	p := n.pending()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pruneLocked(n.containers)
	var out map[string]bool
	now := p.clock()
	for id, since := range p.since {
		if now.Sub(since) > createdGrace {
			if out == nil {
				out = map[string]bool{}
			}
			out[id] = true
		}
	}
	return out
}

// pruneLocked forgets the containers not in tracked. Callers hold p.mu.
func (p *pending) pruneLocked(tracked map[string]*tracked) {
	for id := range p.since {
		if _, ok := tracked[id]; !ok {
			delete(p.since, id)
		}
	}
}

func (p *pending) clock() time.Time {
	if p.now != nil {
		return p.now()
	}
	return time.Now()
}
