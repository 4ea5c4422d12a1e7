package metrics_test

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"nri-memqos/pkg/metrics"
	"nri-memqos/pkg/reconcile"
)

// fakeSource serves fixed values.
type fakeSource struct {
	containers []metrics.Container
	stats      map[string]reconcile.Stats
	node       metrics.Node
}

func (f *fakeSource) Containers() []metrics.Container        { return f.containers }
func (f *fakeSource) Reconciler() map[string]reconcile.Stats { return f.stats }
func (f *fakeSource) Node() metrics.Node                     { return f.node }

// get serves one request through h and returns status and body.
func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, err := io.ReadAll(rec.Result().Body)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Code, string(b)
}

// scrape reads /metrics through h and parses it; it fails the test on
// anything but 200.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, h, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: HTTP %d: %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics: %v\n%s", err, body)
	}
	return fams
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// series returns the label sets of family nri_memqos_<fam>.
func series(fams map[string]*dto.MetricFamily, fam string) []map[string]string {
	var out []map[string]string
	for _, m := range fams["nri_memqos_"+fam].GetMetric() {
		out = append(out, labelsOf(m))
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	}
	return m.GetUntyped().GetValue()
}

// find returns the value of the series of nri_memqos_<fam> whose labels
// include want.
func find(fams map[string]*dto.MetricFamily, fam string, want map[string]string) (float64, bool) {
	for _, m := range fams["nri_memqos_"+fam].GetMetric() {
		ls := labelsOf(m)
		match := true
		for k, v := range want {
			match = match && ls[k] == v
		}
		if match {
			return value(m), true
		}
	}
	return 0, false
}

func stats(usage int64) reconcile.Stats {
	return reconcile.Stats{Usage: usage, Reclaimed: map[reconcile.Reason]int64{}}
}

// TestScrapeSameNameContainers is the regression test for a 500 on
// /metrics: a container left CREATED (containerd sends no StopContainer
// when NewTask fails) and its running successor have the same namespace,
// pod and container name. Both scrape, told apart by container_id.
func TestScrapeSameNameContainers(t *testing.T) {
	const old, successor = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	src := &fakeSource{
		containers: []metrics.Container{
			{ID: old, Namespace: "ns", Pod: "web-0", Container: "app", Class: "burstable", Low: 256 << 20},
			{ID: successor, Namespace: "ns", Pod: "web-0", Container: "app", Class: "burstable", Low: 256 << 20},
		},
		stats: map[string]reconcile.Stats{old: stats(1 << 20), successor: stats(100 << 20)},
	}
	h := metrics.New(src).Handler()
	fams := scrape(t, h)
	for _, c := range []struct {
		id    string
		usage float64
	}{{old, 1 << 20}, {successor, 100 << 20}} {
		want := map[string]string{"namespace": "ns", "pod": "web-0", "container": "app", "class": "burstable", "container_id": c.id[:12]}
		if v, ok := find(fams, "container_memory_usage_bytes", want); !ok || v != c.usage {
			t.Errorf("container_memory_usage_bytes%v = %v (found %v), want %v; have %v", want, v, ok, c.usage,
				series(fams, "container_memory_usage_bytes"))
		}
		if _, ok := find(fams, "container_memory_low_bytes", want); !ok {
			t.Errorf("no container_memory_low_bytes%v", want)
		}
	}
	if v, ok := find(fams, "scrape_errors_total", nil); !ok || v != 0 {
		t.Errorf("scrape_errors_total = %v (found %v), want 0", v, ok)
	}
}

// TestScrapeSkipsBadSeries: a series that cannot be exposed (the same
// container twice, a label that is not UTF-8) is skipped and counted; the
// scrape still succeeds with every other series.
func TestScrapeSkipsBadSeries(t *testing.T) {
	good := metrics.Container{ID: "aaaaaaaaaaaaaaaa", Namespace: "ns", Pod: "p", Container: "app", Class: "burstable", Min: 1}
	src := &fakeSource{
		containers: []metrics.Container{
			good,
			good, // a source bug: the same container twice
			{ID: "bbbbbbbbbbbbbbbb", Namespace: "ns", Pod: "bad\xff", Container: "app", Class: "burstable", Min: 2},
			{ID: "cccccccccccccccc", Namespace: "ns", Pod: "q", Container: "app", Class: "burstable", Min: 3},
		},
	}
	h := metrics.New(src).Handler()
	fams := scrape(t, h)
	if got := len(series(fams, "container_memory_min_bytes")); got != 2 {
		t.Errorf("%d container_memory_min_bytes series, want 2 (the good and the last): %v", got, series(fams, "container_memory_min_bytes"))
	}
	for _, pod := range []string{"p", "q"} {
		if _, ok := find(fams, "container_memory_min_bytes", map[string]string{"pod": pod}); !ok {
			t.Errorf("no container_memory_min_bytes for pod %s", pod)
		}
	}
	// Per scrape: min and low of the duplicate, min and low of the bad
	// label: 4 series skipped.
	if v, _ := find(fams, "scrape_errors_total", nil); v != 4 {
		t.Errorf("scrape_errors_total = %v after one scrape, want 4", v)
	}
	fams = scrape(t, h)
	if v, _ := find(fams, "scrape_errors_total", nil); v != 8 {
		t.Errorf("scrape_errors_total = %v after two scrapes, want 8", v)
	}
}

// logs collects what the metrics log.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) Warnf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logs) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

// TestScrapeSkipsLoggedRarely: skipped series are logged once, then not
// again for ten minutes.
func TestScrapeSkipsLoggedRarely(t *testing.T) {
	good := metrics.Container{ID: "aaaaaaaaaaaaaaaa", Namespace: "ns", Pod: "p", Container: "app", Class: "burstable"}
	m := metrics.New(&fakeSource{containers: []metrics.Container{good, good}})
	now := time.Unix(1_000_000, 0)
	m.SetLiveness(metrics.Liveness{Now: func() time.Time { return now }})
	l := &logs{}
	m.SetLogger(l)
	h := m.Handler()
	scrape(t, h)
	scrape(t, h)
	if l.count() != 1 {
		t.Fatalf("%d log lines after two scrapes, want 1: %q", l.count(), l.lines)
	}
	for _, want := range []string{"2 series", "nri_memqos_container_memory_min_bytes", "scrape_errors_total"} {
		if !strings.Contains(l.lines[0], want) {
			t.Errorf("log %q does not contain %q", l.lines[0], want)
		}
	}
	now = now.Add(10 * time.Minute)
	scrape(t, h)
	if l.count() != 2 {
		t.Errorf("%d log lines ten minutes later, want 2", l.count())
	}
}

// TestScrapeGzip: a scraper that accepts gzip gets the same families,
// compressed; scrapes after it (the writers are pooled), gzip'ed or not,
// each get a whole body of their own.
func TestScrapeGzip(t *testing.T) {
	src := &fakeSource{containers: []metrics.Container{{ID: "aaaaaaaaaaaaaaaa", Namespace: "ns", Pod: "p", Container: "app", Class: "burstable", Min: 7}},
		stats: map[string]reconcile.Stats{"aaaaaaaaaaaaaaaa": stats(5)}}
	h := metrics.New(src).Handler()
	for i, gz := range []bool{true, false, true, true} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if gz {
			req.Header.Set("Accept-Encoding", "deflate, gzip;q=0.9")
		}
		h.ServeHTTP(rec, req)
		want := map[bool]string{true: "gzip", false: ""}[gz]
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Encoding") != want {
			t.Fatalf("scrape %d: HTTP %d, Content-Encoding %q; want 200 %q", i, rec.Code, rec.Header().Get("Content-Encoding"), want)
		}
		var body io.Reader = rec.Body
		if gz {
			zr, err := gzip.NewReader(rec.Body)
			if err != nil {
				t.Fatal(err)
			}
			body = zr
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(body)
		if err != nil {
			t.Fatalf("scrape %d: %v", i, err)
		}
		if v, ok := find(fams, "container_memory_usage_bytes", map[string]string{"pod": "p"}); !ok || v != 5 {
			t.Errorf("scrape %d: usage = %v (found %v), want 5", i, v, ok)
		}
		if _, ok := fams["go_goroutines"]; !ok {
			t.Errorf("scrape %d: the registry's families (go_goroutines) are missing", i)
		}
	}
}

// BenchmarkScrape serves /metrics for 10 000 containers with stats: the
// per-container families are written line by line, not built as metrics.
func BenchmarkScrape(b *testing.B) {
	src := &fakeSource{stats: map[string]reconcile.Stats{}}
	for i := range 10000 {
		id := fmt.Sprintf("%064x", i)
		src.containers = append(src.containers, metrics.Container{ID: id, Namespace: "team-a", Pod: fmt.Sprintf("web-%d", i/10),
			Container: fmt.Sprintf("app-%d", i%10), Class: "burstable", Low: 256 << 20, High: 400 << 20})
		src.stats[id] = stats(100 << 20)
	}
	h := metrics.New(src).Handler()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	b.ReportAllocs()
	for range b.N {
		// The body goes nowhere, as to a scraper's socket: what is
		// allocated is the handler's, not a recorder's buffer.
		w := &countingWriter{header: http.Header{}}
		h.ServeHTTP(w, req)
		if w.code != 0 && w.code != http.StatusOK || w.n < 10000*1000 {
			b.Fatalf("status %d, %d bytes", w.code, w.n)
		}
	}
}

// countingWriter is a ResponseWriter that counts the body and keeps none.
type countingWriter struct {
	header http.Header
	code   int
	n      int
}

func (w *countingWriter) Header() http.Header  { return w.header }
func (w *countingWriter) WriteHeader(code int) { w.code = code }
func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}

// TestScrapeCanonicalLines: every per-container line is written as the
// client library writes it (labels sorted by name, values as it formats
// them), so a scrape reads the same as before the series were streamed and
// tools that match lines keep working.
func TestScrapeCanonicalLines(t *testing.T) {
	id := "fc988c9bc93e7733d88ecfbbc2ab9e618ddad328b376dafe3fffe4ccad8d9c9d"
	src := &fakeSource{
		containers: []metrics.Container{{ID: id, Namespace: "e2e", Pod: "served", Container: "app", Class: "latency-sensitive",
			Min: 268435456, High: 400 << 20}, {ID: "x", Namespace: "odd\"ns\\", Pod: "p\nq", Container: "c", Class: "burstable"}},
		stats: map[string]reconcile.Stats{id: {Usage: 5, Reclaimed: map[reconcile.Reason]int64{reconcile.ReasonWatermark: 7}}},
	}
	_, body := get(t, metrics.New(src).Handler(), "/metrics")
	want := `nri_memqos_container_memory_min_bytes{class="latency-sensitive",container="app",container_id="fc988c9bc93e",namespace="e2e",pod="served"} 2.68435456e+08`
	if !strings.Contains(body, want+"\n") {
		t.Errorf("/metrics lacks %s", want)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var canon strings.Builder
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "nri_memqos_container_") {
			if _, err := expfmt.MetricFamilyToText(&canon, f); err != nil {
				t.Fatal(err)
			}
		}
	}
	n := 0
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "nri_memqos_container_") {
			continue
		}
		n++
		if !strings.Contains(canon.String(), line+"\n") {
			t.Errorf("line %q is not as the client library writes it", line)
		}
	}
	// Both containers' min and low (4), the first one's memory.high and
	// usage, reclaimed by 4 reasons, guard raises and restores, tier
	// throttles, OOM kills, 3 throttle events and drift repairs.
	if want := 4 + 2 + 4 + 2 + 1 + 1 + 3 + 1; n != want {
		t.Errorf("%d per-container lines; want %d", n, want)
	}
}
