package node

import (
	"nri-memqos/pkg/metrics"
	"nri-memqos/pkg/reconcile"
)

// targets lists the containers the reconciler looks after.
func (n *Node) targets() []reconcile.Target {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]reconcile.Target, 0, len(n.containers))
	for id, t := range n.containers {
		out = append(out, reconcile.Target{
			ID: id, Namespace: t.pod.Namespace, Pod: t.pod.Name, Container: t.ctr.Name,
			Rel: t.rel, Decision: t.decision,
		})
	}
	return out
}

// MetricsSource gives the metrics the core's values at scrape time.
func (n *Node) MetricsSource() metrics.Source { return metricsView{n} }

type metricsView struct{ n *Node }

func (v metricsView) Containers() []metrics.Container {
	v.n.mu.Lock()
	defer v.n.mu.Unlock()
	out := make([]metrics.Container, 0, len(v.n.containers))
	for id, t := range v.n.containers {
		c := metrics.Container{
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

func (v metricsView) Node() metrics.Node {
	v.n.mu.Lock()
	defer v.n.mu.Unlock()
	m := metrics.Node{PromisedMin: v.n.ledger.TotalMin("")}
	if v.n.cfg != nil {
		m.CapMin = int64(v.n.cfg.NodeProtectionFraction * float64(v.n.host.MemTotal))
	}
	return m
}
