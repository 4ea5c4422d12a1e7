package node

import (
	"time"

	"nri-memqos/pkg/metrics/view"
	"nri-memqos/pkg/reconcile"
)

// targets lists the containers the reconciler looks after: those that
// started. Between NRI CreateContainer and StartContainer runc makes the
// container's cgroup and only then writes its resources (the plugin's
// values among them): a container read in that gap holds the kernel's
// defaults by design, and must not be "repaired".
func (n *Node) targets() []reconcile.Target {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pend.mu.Lock()
	defer n.pend.mu.Unlock()
	out := make([]reconcile.Target, 0, len(n.containers))
	for id, t := range n.containers {
		if _, created := n.pend.since[id]; created {
			continue
		}
		out = append(out, reconcile.Target{
			ID: id, Namespace: t.pod.Namespace, Pod: t.pod.Name, Container: t.ctr.Name,
			Rel: t.rel, Decision: t.decision,
		})
	}
	return out
}

// MetricsSource gives the metrics the core's values at scrape time.
func (n *Node) MetricsSource() view.Source { return metricsView{n} }

type metricsView struct{ n *Node }

// Containers lists the managed containers, less those created more than a
// minute ago that never started (see createdGrace): a leftover of a failed
// start and its successor have the same namespace, pod and container name.
func (v metricsView) Containers() []view.Container {
	v.n.mu.Lock()
	defer v.n.mu.Unlock()
	leftovers := v.n.leftovers()
	out := make([]view.Container, 0, len(v.n.containers))
	for id, t := range v.n.containers {
		if leftovers[id] {
			continue
		}
		c := view.Container{
			ID: id, Namespace: t.pod.Namespace, Pod: t.pod.Name, Container: t.ctr.Name, Class: t.decision.Class,
			Min: t.decision.ProtectedMin(), Low: t.decision.ProtectedLow(),
		}
		if t.decision.High != nil {
			c.High = *t.decision.High
		}
		out = append(out, c)
	}
	return out
}

func (v metricsView) Reconciler() map[string]reconcile.Stats {
	if r := v.n.Reconciler(); r != nil {
		return r.Stats()
	}
	return nil
}

func (v metricsView) Node() view.Node {
	v.n.mu.Lock()
	defer v.n.mu.Unlock()
	m := view.Node{PromisedMin: v.n.ledger.TotalMin(""), PromisedLow: v.n.ledger.TotalLow(""),
		AncestorRepairs: v.n.AncestorRepairs()}
	if v.n.store != nil {
		m.StateBytesWritten = v.n.store.BytesWritten()
	}
	if v.n.cfg != nil {
		m.CapMin = int64(v.n.cfg.NodeProtectionFraction * float64(v.n.host.MemTotal))
		m.CapLow = int64(v.n.cfg.NodeLowProtectionFraction * float64(v.n.host.MemTotal))
	}
	return m
}

// ReconcilerTick returns what TickInProgress of the reconciler returns (a
// tick in progress and since when), for the liveness check; nothing before
// the first configuration. It does not take n.mu, which a stuck event may
// hold: n.reconciler is set once, before configured is closed, and never
// again.
func (n *Node) ReconcilerTick() (what string, since time.Time, ok bool) {
	select {
	case <-n.configured:
	default:
		return "", time.Time{}, false
	}
	return n.reconciler.TickInProgress()
}
