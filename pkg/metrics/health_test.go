package metrics_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"nri-memqos/pkg/config"
	"nri-memqos/pkg/health"
	"nri-memqos/pkg/metrics"
	"nri-memqos/pkg/reconcile"
)

// checkHealthz asserts /healthz's status and that its body holds every
// one of words, on one line.
func checkHealthz(t *testing.T, h http.Handler, step string, code int, words ...string) {
	t.Helper()
	got, body := get(t, h, "/healthz")
	if got != code {
		t.Errorf("%s: /healthz = %d %q, want %d", step, got, body, code)
	}
	if n := strings.Count(body, "\n"); n != 1 || !strings.HasSuffix(body, "\n") {
		t.Errorf("%s: /healthz body %q is not one line", step, body)
	}
	for _, w := range words {
		if !strings.Contains(body, w) {
			t.Errorf("%s: /healthz body %q does not contain %q", step, body, w)
		}
	}
}

// TestHealthzStuckEvent: an NRI event handler that blocks (on the plugin's
// lock, say) fails /healthz once it has run longer than the bound, naming
// the event; /healthz is back to ok when it returns. /readyz is not
// affected, and neither endpoint waits for the blocked handler.
func TestHealthzStuckEvent(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }

	events := &health.InFlight{Now: clock}
	m := metrics.New(&fakeSource{})
	m.SetLiveness(metrics.Liveness{Bound: 30 * time.Second, Now: clock, Work: []metrics.Work{events.Oldest}})
	m.SetReady(true)
	for name, h := range map[string]http.Handler{"metrics listener": m.Handler(), "health listener": m.HealthHandler()} {
		t.Run(name, func(t *testing.T) {
			checkHealthz(t, h, "idle", http.StatusOK, "ok")

			// A handler stuck on a lock.
			var lock sync.Mutex
			lock.Lock()
			started, done := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(done)
				defer events.End(events.Begin("NRI event CreateContainer"))
				close(started)
				lock.Lock()
				defer lock.Unlock()
			}()
			<-started
			checkHealthz(t, h, "event running", http.StatusOK, "ok")
			advance(30 * time.Second)
			checkHealthz(t, h, "event at the bound", http.StatusOK, "ok")
			advance(15 * time.Second)
			checkHealthz(t, h, "event stuck", http.StatusServiceUnavailable, "NRI event CreateContainer", "45s", "30s")
			if code, body := get(t, h, "/readyz"); code != http.StatusOK {
				t.Errorf("/readyz with a stuck event = %d %q, want 200 (readiness is the runtime connection)", code, body)
			}
			lock.Unlock()
			<-done
			checkHealthz(t, h, "event done", http.StatusOK, "ok")
		})
	}
}

// TestHealthzStuckTick: a reconciler tick stuck in its source (which takes
// the plugin's lock) fails /healthz once it has run longer than the bound.
func TestHealthzStuckTick(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	source := func() []reconcile.Target {
		entered <- struct{}{}
		<-release
		return nil
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	r := reconcile.New(nil, 2, config.Default(), source, func() (int64, int64, error) { return 1 << 30, 1 << 30, nil }, log, 4096)

	var mu sync.Mutex
	ahead := time.Duration(0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(ahead) }
	m := metrics.New(&fakeSource{})
	m.SetLiveness(metrics.Liveness{Bound: 30 * time.Second, Now: clock, Work: []metrics.Work{r.TickInProgress}})
	h := m.HealthHandler()

	checkHealthz(t, h, "no tick", http.StatusOK, "ok")
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Tick(time.Now())
	}()
	<-entered
	checkHealthz(t, h, "tick running", http.StatusOK, "ok")
	mu.Lock()
	ahead = time.Minute
	mu.Unlock()
	checkHealthz(t, h, "tick stuck", http.StatusServiceUnavailable, "reconciler tick", "1m0s", "30s")
	close(release)
	<-done
	checkHealthz(t, h, "tick done", http.StatusOK, "ok")
}

// TestHealthzNoBound: without a bound /healthz never fails.
func TestHealthzNoBound(t *testing.T) {
	m := metrics.New(&fakeSource{})
	m.SetLiveness(metrics.Liveness{Work: []metrics.Work{func() (string, time.Time, bool) { return "x", time.Unix(0, 0), true }}})
	checkHealthz(t, m.HealthHandler(), "no bound", http.StatusOK, "ok")
}

// TestHealthHandlerServesNoData: the health listener serves no metrics.
func TestHealthHandlerServesNoData(t *testing.T) {
	m := metrics.New(&fakeSource{containers: []metrics.Container{{ID: "a", Namespace: "ns", Pod: "p", Container: "c"}}})
	if code, _ := get(t, m.HealthHandler(), "/metrics"); code != http.StatusNotFound {
		t.Errorf("health listener /metrics = %d, want 404", code)
	}
	if code, _ := get(t, m.HealthHandler(), "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before registration = %d, want 503", code)
	}
}
