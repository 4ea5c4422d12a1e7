package main

import (
	"time"

	"nri-memqos/pkg/metrics"
	"nri-memqos/pkg/reconcile"
)

// metricsSource gives the metrics package the plugin's values at scrape time.
type metricsSource struct{ p *plugin }

var _ metrics.Source = metricsSource{}

func (s metricsSource) Containers() []metrics.Container {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	out := make([]metrics.Container, 0, len(s.p.containers))
	for id, t := range s.p.containers {
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

func (s metricsSource) Reconciler() map[string]reconcile.Stats {
	s.p.mu.Lock()
	r := s.p.reconciler
	s.p.mu.Unlock()
	if r == nil {
		return nil
	}
	return r.Stats()
}

func (s metricsSource) Node() metrics.Node {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	n := metrics.Node{PromisedMin: s.p.ledger.TotalMin("")}
	if s.p.cfg != nil {
		n.CapMin = int64(s.p.cfg.NodeProtectionFraction * float64(s.p.node.memTotal))
	}
	return n
}

// observe records how long an NRI event took; use as
// defer p.observe("CreateContainer", time.Now()).
func (p *plugin) observe(event string, start time.Time) {
	if p.metrics != nil {
		p.metrics.ObserveEvent(event, time.Since(start))
	}
}
