package metrics

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"nri-memqos/pkg/reconcile"
)

const namespace = "nri_memqos"

// Container is what the plugin decided for one container.
type Container struct {
	ID, Namespace, Pod, Container, Class string
	// Min and Low are the protection promised (bytes); High the policy's
	// memory.high (0: none).
	Min, Low, High int64
}

// Node is the node-wide protection state.
type Node struct {
	// PromisedMin is the memory.min promised to all containers together;
	// CapMin the most that may be promised (nodeProtectionFraction × MemTotal).
	PromisedMin, CapMin int64
}

// Source gives the metrics their values at scrape time.
type Source interface {
	Containers() []Container
	Reconciler() map[string]reconcile.Stats
	Node() Node
}

// Metrics holds the registry and the plugin's own health.
type Metrics struct {
	reg    *prometheus.Registry
	events *prometheus.HistogramVec
	ready  atomic.Bool
}

var (
	labels = []string{"namespace", "pod", "container", "class"}

	descMin        = desc("container_memory_min_bytes", "memory.min promised to the container.")
	descLow        = desc("container_memory_low_bytes", "memory.low promised to the container.")
	descHigh       = desc("container_memory_high_bytes", "memory.high in force (the guard may hold it above the policy's value).")
	descUsage      = desc("container_memory_usage_bytes", "memory.current (v1: memory.usage_in_bytes) at the reconciler's last tick.")
	descReclaimed  = desc("container_reclaimed_bytes_total", "Bytes the reconciler reclaimed, by reason.", "reason")
	descRaises     = desc("container_guard_raises_total", "Times the guard raised memory.high of a stalled container.")
	descRestores   = desc("container_guard_restores_total", "Times the guard stepped memory.high back.")
	descOOMKills   = desc("container_oom_kills_total", "OOM kills in the container since the plugin saw it.")
	descThrottle   = desc("container_throttle_events_total", "Memory events since the plugin saw the container: high (throttled at memory.high), max (hit memory.max), oom.", "event")
	descDrift      = desc("container_drift_repairs_total", "Values the plugin set that someone else changed and the reconciler wrote back.")
	descPromised   = prometheus.NewDesc(namespace+"_node_protection_promised_bytes", "memory.min promised to all containers on the node.", nil, nil)
	descPromiseCap = prometheus.NewDesc(namespace+"_node_protection_cap_bytes", "The most memory.min the node may promise (nodeProtectionFraction × MemTotal).", nil, nil)
)

func desc(name, help string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc(namespace+"_"+name, help, append(append([]string{}, labels...), extra...), nil)
}

// New builds the metrics over src.
func New(src Source) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		events: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "event_duration_seconds",
			Help:      "Time the plugin spent handling each NRI event.",
			Buckets:   []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .1},
		}, []string{"event"}),
	}
	m.reg.MustRegister(m.events, collector{src}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveEvent records the handling time of one NRI event.
func (m *Metrics) ObserveEvent(event string, d time.Duration) {
	m.events.WithLabelValues(event).Observe(d.Seconds())
}

// SetReady marks the plugin registered with (or disconnected from) the runtime.
func (m *Metrics) SetReady(ready bool) { m.ready.Store(ready) }

// Handler serves /metrics, /healthz (the process is alive) and /readyz
// (registered with the runtime).
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !m.ready.Load() {
			http.Error(w, "not registered with the runtime", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	return mux
}

// collector reads the sources at scrape time.
type collector struct{ src Source }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMin, descLow, descHigh, descUsage, descReclaimed, descRaises,
		descRestores, descOOMKills, descThrottle, descDrift, descPromised, descPromiseCap} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	stats := c.src.Reconciler()
	for _, ct := range c.src.Containers() {
		lv := []string{ct.Namespace, ct.Pod, ct.Container, ct.Class}
		gauge := func(d *prometheus.Desc, v int64, extra ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), append(lv, extra...)...)
		}
		counter := func(d *prometheus.Desc, v float64, extra ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, append(lv, extra...)...)
		}
		gauge(descMin, ct.Min)
		gauge(descLow, ct.Low)
		high := ct.High
		st, ok := stats[ct.ID]
		if ok && st.High > 0 {
			high = st.High
		}
		if high > 0 {
			gauge(descHigh, high)
		}
		if !ok {
			continue
		}
		gauge(descUsage, st.Usage)
		for _, r := range []reconcile.Reason{reconcile.ReasonWatermark, reconcile.ReasonNodePressure, reconcile.ReasonProactive} {
			counter(descReclaimed, float64(st.Reclaimed[r]), string(r))
		}
		counter(descRaises, float64(st.GuardRaises))
		counter(descRestores, float64(st.GuardRestores))
		counter(descOOMKills, float64(st.Events.OOMKill))
		counter(descThrottle, float64(st.Events.High), "high")
		counter(descThrottle, float64(st.Events.Max), "max")
		counter(descThrottle, float64(st.Events.OOM), "oom")
		counter(descDrift, float64(st.DriftRepairs))
	}
	n := c.src.Node()
	ch <- prometheus.MustNewConstMetric(descPromised, prometheus.GaugeValue, float64(n.PromisedMin))
	ch <- prometheus.MustNewConstMetric(descPromiseCap, prometheus.GaugeValue, float64(n.CapMin))
}
