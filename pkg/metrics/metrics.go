package metrics

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"

	"nri-memqos/pkg/metrics/view"
)

const namespace = "nri_memqos"

// What the core shows the metrics is defined in package view, which the
// core imports without the Prometheus client (a short-lived OCI hook links
// the core, not the exporter).
type (
	// Container is what the plugin decided for one container.
	Container = view.Container
	// Node is the node-wide protection state.
	Node = view.Node
	// Source gives the metrics their values at scrape time.
	Source = view.Source
)

// Logger receives the metrics' own complaints (series skipped, the
// registry's errors); *logrus.Logger is one.
type Logger interface {
	Warnf(format string, args ...any)
}

// Metrics holds the registry and the plugin's own health.
type Metrics struct {
	reg    *prometheus.Registry
	src    Source
	events *prometheus.HistogramVec
	// handlerErrors counts scrapes served in part
	// (promhttp_metric_handler_errors_total, by cause).
	handlerErrors *prometheus.CounterVec
	ready         atomic.Bool
	// skipped counts the series a scrape left out (scrape_errors_total).
	skipped atomic.Uint64

	mu     sync.Mutex
	log    Logger
	logged time.Time // when skipped series were last logged
	live   Liveness
}

// IDLength is how much of a container ID the container_id label keeps, as
// crictl and kubectl's container statuses abbreviate it.
const IDLength = 12

var (
	labels = []string{"namespace", "pod", "container", "container_id", "class"}

	descPromised        = prometheus.NewDesc(namespace+"_node_protection_promised_bytes", "memory.min promised to all containers on the node.", nil, nil)
	descPromiseCap      = prometheus.NewDesc(namespace+"_node_protection_cap_bytes", "The most memory.min the node may promise (nodeProtectionFraction × MemTotal).", nil, nil)
	descLowPromised     = prometheus.NewDesc(namespace+"_node_low_protection_promised_bytes", "memory.low promised to all containers on the node.", nil, nil)
	descLowCap          = prometheus.NewDesc(namespace+"_node_low_protection_cap_bytes", "The most memory.low the node may promise (nodeLowProtectionFraction × MemTotal).", nil, nil)
	descAncestorRepairs = nodeDesc("ancestor_repairs_total",
		"Ancestor memory.min/memory.low values someone else lowered below what the plugin promised, written back, per cgroup.", "path")
	descStateBytes = prometheus.NewDesc(namespace+"_state_bytes_written_total", "Bytes the plugin wrote to its state file and journals since it started: one small record per event, and a snapshot when the journal outgrows the last one.", nil, nil)
	descSkipped    = prometheus.NewDesc(namespace+"_scrape_errors_total", "Series left out of scrapes because they could not be exposed (a duplicate label set, a label value that is not UTF-8); the scrape goes on without them.", nil, nil)
)

// names are the per-container families' names, for log lines.
var names = map[*prometheus.Desc]string{}

// nodeDesc is a node-wide family with its own labels.
func nodeDesc(name, help string, labels ...string) *prometheus.Desc {
	d := prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
	names[d] = namespace + "_" + name
	return d
}

// New builds the metrics over src.
func New(src Source) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		src: src,
		handlerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promhttp_metric_handler_errors_total",
			Help: "Scrapes of /metrics served in part: an error while gathering or encoding the registry's families.",
		}, []string{"cause"}),
		events: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "event_duration_seconds",
			Help:      "Time the plugin spent handling each NRI event.",
			Buckets:   []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .1},
		}, []string{"event"}),
	}
	m.reg.MustRegister(m.events, m.handlerErrors, &collector{m: m, src: src}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// SetLogger makes the metrics log what they leave out of a scrape (at most
// once every ten minutes); without one they only count it.
func (m *Metrics) SetLogger(l Logger) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.log = l
}

// ObserveEvent records the handling time of one NRI event.
func (m *Metrics) ObserveEvent(event string, d time.Duration) {
	m.events.WithLabelValues(event).Observe(d.Seconds())
}

// SetReady marks the plugin registered with (or disconnected from) the runtime.
func (m *Metrics) SetReady(ready bool) { m.ready.Store(ready) }

// Handler serves /metrics, /healthz and /readyz (see HealthHandler).
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.metricsHandler())
	m.health(mux)
	return mux
}

// metricsHandler serves the per-container families (written straight
// out, see containers.go) and the registry, in the text exposition format,
// gzip'ed when the scraper accepts it. A scrape never fails as a whole for
// one collector's error: what could be gathered is served, the error logged
// and counted in promhttp_metric_handler_errors_total.
func (m *Metrics) metricsHandler() http.Handler {
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", string(format))
		var out io.Writer = w
		if acceptsGzip(r) {
			w.Header().Set("Content-Encoding", "gzip")
			gz := gzipWriters.Get().(*gzip.Writer)
			gz.Reset(w)
			defer func() {
				_ = gz.Close() // the scraper went away: nothing to tell it
				gz.Reset(io.Discard)
				gzipWriters.Put(gz)
			}()
			out = gz
		}
		bw := bufWriters.Get().(*bufio.Writer)
		bw.Reset(out)
		defer func() {
			bw.Reset(io.Discard)
			bufWriters.Put(bw)
		}()
		if skipped, first := writeContainers(bw, m.src); skipped > 0 {
			m.skipped.Add(uint64(skipped))
			m.logSkipped(skipped, first)
		}
		mfs, err := m.reg.Gather()
		if err != nil {
			m.handlerErrors.WithLabelValues("gathering").Inc()
			m.warn("metrics: error gathering metrics: %v", err)
		}
		enc := expfmt.NewEncoder(bw, format)
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				m.handlerErrors.WithLabelValues("encoding").Inc()
				m.warn("metrics: error encoding %s: %v", mf.GetName(), err)
				break
			}
		}
		_ = bw.Flush() // the scraper went away: nothing to tell it
	})
}

// A gzip writer holds some 800 KB of compressor state and the body's
// buffer 64 KB: made anew for every scrape they were most of a scrape's
// garbage (and so of the heap the collector lets grow) at a few thousand
// containers. Pooled, a scraper every few seconds finds them again; the
// pool lets them go when scrapes stop.
var (
	gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(io.Discard) }}
	bufWriters  = sync.Pool{New: func() any { return bufio.NewWriterSize(io.Discard, 64<<10) }}
)

// acceptsGzip tells whether the request accepts a gzip'ed answer.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(enc, "gzip") {
			return true
		}
	}
	return false
}

// warn logs through the metrics' logger, if any.
func (m *Metrics) warn(format string, args ...any) {
	m.mu.Lock()
	l := m.log
	m.mu.Unlock()
	if l != nil {
		l.Warnf(format, args...)
	}
}

// collector reads the sources at scrape time. It skips and counts a series
// it cannot expose (scrape_errors_total) instead of failing the scrape: a
// duplicate label set (the registry would fail the whole scrape with 500)
// or a label value that is not UTF-8.
type collector struct {
	m   *Metrics
	src Source
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPromised, descPromiseCap, descLowPromised, descLowCap, descAncestorRepairs, descStateBytes, descSkipped} {
		ch <- d
	}
}

// seriesKey identifies one series of a scrape.
type seriesKey struct {
	d      *prometheus.Desc
	labels string
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	seen := map[seriesKey]bool{}
	skipped, first := 0, ""
	emit := func(d *prometheus.Desc, typ prometheus.ValueType, v float64, lv []string) {
		k := seriesKey{d, strings.Join(lv, "\xff")}
		var err error
		if seen[k] {
			err = fmt.Errorf("%s%q: the same series twice", names[d], lv)
		} else {
			var m prometheus.Metric
			if m, err = prometheus.NewConstMetric(d, typ, v, lv...); err == nil {
				seen[k] = true
				ch <- m
				return
			}
			err = fmt.Errorf("%s%q: %w", names[d], lv, err)
		}
		if skipped == 0 {
			first = err.Error()
		}
		skipped++
	}
	n := c.src.Node()
	ch <- prometheus.MustNewConstMetric(descPromised, prometheus.GaugeValue, float64(n.PromisedMin))
	ch <- prometheus.MustNewConstMetric(descPromiseCap, prometheus.GaugeValue, float64(n.CapMin))
	ch <- prometheus.MustNewConstMetric(descLowPromised, prometheus.GaugeValue, float64(n.PromisedLow))
	ch <- prometheus.MustNewConstMetric(descLowCap, prometheus.GaugeValue, float64(n.CapLow))
	for path, count := range n.AncestorRepairs {
		emit(descAncestorRepairs, prometheus.CounterValue, float64(count), []string{path})
	}
	ch <- prometheus.MustNewConstMetric(descStateBytes, prometheus.CounterValue, float64(n.StateBytesWritten))
	total := c.m.skipped.Add(uint64(skipped))
	ch <- prometheus.MustNewConstMetric(descSkipped, prometheus.CounterValue, float64(total))
	if skipped > 0 {
		c.m.logSkipped(skipped, first)
	}
}

// logSkipped logs series a scrape left out, at most once every ten
// minutes: Prometheus scrapes every few seconds.
func (m *Metrics) logSkipped(n int, first string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock()
	if m.log == nil || (!m.logged.IsZero() && now.Sub(m.logged) < 10*time.Minute) {
		return
	}
	m.logged = now
	m.log.Warnf("metrics: %d series left out of a scrape (counted in %s_scrape_errors_total; logged again in 10 minutes at the earliest), the first: %s", n, namespace, first)
}
