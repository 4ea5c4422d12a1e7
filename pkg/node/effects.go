package node

import (
	"context"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/protection"
)

// Ancestor writes leave the event path: an event changes the ledger's sums
// and returns; one writer goroutine (started by Run) brings the ancestors
// to them, coalescing what several events asked for. Ordering kept:
//
//   - A container's ancestors are raised before it starts: Start waits
//     (at most startWait) until the writer has done every raise asked for
//     before it. Between CreateContainer and StartContainer a container
//     charges next to nothing, so protection that arrives there arrives in
//     time. Raises gather for raiseDelay (5 ms) so that a pass does not
//     compete with the reply of the event that asked for it; a waiting
//     Start cuts that short.
//   - Lowerings (a container stopped, removed or shrunk) wait up to
//     lowerDelay for more, or for the next raise, and go in one pass:
//     churn lowers the shared ancestors (kubepods, the QoS level) once per
//     pass, not once per event. Lowering late only keeps protection a
//     little longer.
//   - Per ancestor, raises go outermost first and lowerings innermost
//     first (the ledger), and a later event's request for the same path
//     is served by the same or a later pass, computed from the sums in
//     force then.
//   - The ledger journals each value before it writes it (ledgerJournal).
//
// Without the writer (Run not called: tests, explain) events write their
// ancestors themselves, as before.

// lowerDelay is how long lowerings gather before the writer makes them;
// raiseDelay the same for raises, unless a StartContainer waits for them.
const (
	lowerDelay = 100 * time.Millisecond
	raiseDelay = 5 * time.Millisecond
)

// startWait bounds how long Start waits for the ancestor writer: a stuck
// cgroup write delays a container's start by at most this, never blocks it.
const startWait = 2 * time.Second

// effects is the queue of the ancestor writer.
type effects struct {
	mu   sync.Mutex
	cond *sync.Cond
	// pending maps each ancestor path asked for to the mode it was asked
	// in: Full wins over RaiseOnly.
	pending map[string]protection.Mode
	// asked counts the requests queued, done those carried out; raises
	// the raise requests among them, raised those carried out.
	asked, done     uint64
	raises, raised  uint64
	running         bool
	wake, raiseWake chan struct{}
	// hurry is signalled by a StartContainer waiting for raises.
	hurry chan struct{}
	// hold is taken by the writer around each pass (tests pause it).
	hold sync.RWMutex
}

func newEffects() *effects {
	e := &effects{pending: map[string]protection.Mode{}, wake: make(chan struct{}, 1), raiseWake: make(chan struct{}, 1),
		hurry: make(chan struct{}, 1)}
	e.cond = sync.NewCond(&e.mu)
	return e
}

// ancestorsLater has the writer bring paths to the ledger's sums, or does
// it at once without a writer. Callers hold n.mu.
func (n *Node) ancestorsLater(l *logrus.Entry, paths []string, mode protection.Mode) {
	e := n.effects
	e.mu.Lock()
	if !e.running {
		e.mu.Unlock()
		n.applyAncestors(l, n.fs, paths, mode)
		return
	}
	for _, p := range paths {
		if m, ok := e.pending[p]; !ok || mode > m {
			e.pending[p] = mode
		}
	}
	e.asked++
	if mode == protection.RaiseOnly {
		e.raises++
	}
	e.mu.Unlock()
	signal(e.wake)
	if mode == protection.RaiseOnly {
		signal(e.raiseWake)
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// waitAncestors waits until the writer carried out every raise asked of
// it so far, at most timeout. It must not be called holding n.mu.
func (n *Node) waitAncestors(timeout time.Duration) bool {
	e := n.effects
	e.mu.Lock()
	defer e.mu.Unlock()
	target := e.raises
	if !e.running || e.raised >= target {
		return true
	}
	signal(e.hurry)
	expired := false
	t := time.AfterFunc(timeout, func() {
		e.mu.Lock()
		expired = true
		e.cond.Broadcast()
		e.mu.Unlock()
	})
	defer t.Stop()
	for e.running && e.raised < target && !expired {
		e.cond.Wait()
	}
	return e.raised >= target || !e.running
}

// runAncestorWriter is the writer: it runs until ctx ends, then leaves
// the events to write their ancestors themselves again.
func (n *Node) runAncestorWriter(ctx context.Context, fs *cgroupfs.FS) {
	e := n.effects
	e.mu.Lock()
	e.running = true
	e.mu.Unlock()
	log := n.log.WithField("event", "ancestors")
	for {
		select {
		case <-ctx.Done():
		case <-e.wake:
		}
		e.gather(ctx)
		e.mu.Lock()
		batch, upto, raisesUpto := e.pending, e.asked, e.raises
		e.pending = map[string]protection.Mode{}
		for _, c := range []chan struct{}{e.raiseWake, e.hurry} {
			select {
			case <-c: // this pass serves it
			default:
			}
		}
		stop := ctx.Err() != nil
		if stop {
			e.running = false
		}
		e.mu.Unlock()
		e.hold.RLock()
		tok := n.repairing.Begin("ancestor writer pass")
		var raise, full []string
		for p, m := range batch {
			if m == protection.Full {
				full = append(full, p)
			} else {
				raise = append(raise, p)
			}
		}
		if len(raise) > 0 {
			n.applyAncestors(log, fs, raise, protection.RaiseOnly)
		}
		if len(full) > 0 {
			n.applyAncestors(log, fs, full, protection.Full)
		}
		n.repairing.End(tok)
		e.hold.RUnlock()
		e.mu.Lock()
		e.done, e.raised = upto, raisesUpto
		e.cond.Broadcast()
		e.mu.Unlock()
		if stop {
			return
		}
	}
}

// gather lets requests gather before a pass: lowerings for lowerDelay,
// raises for raiseDelay (so a pass does not compete with the reply of the
// event that asked for it), either cut short by a StartContainer waiting
// (hurry).
func (e *effects) gather(ctx context.Context) {
	wait := lowerDelay
	if e.raisePending() {
		wait = raiseDelay
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.hurry:
			return
		case <-t.C:
			return
		case <-e.raiseWake:
			if wait > raiseDelay {
				wait = raiseDelay
				t.Reset(raiseDelay)
			}
		}
	}
}

// raisePending tells whether a raise waits for the writer.
func (e *effects) raisePending() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.raised < e.raises
}
