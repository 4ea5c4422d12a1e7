package metrics

import (
	"fmt"
	"net/http"
	"time"
)

// Work reports the oldest unfinished piece of one kind of work: what it
// is and since when; ok is false when none is in progress.
// health.InFlight's Oldest is one.
type Work func() (what string, since time.Time, ok bool)

// Liveness tells /healthz when the plugin counts as stuck.
type Liveness struct {
	// Bound is the longest a piece of work may stay unfinished; 0 (or
	// less) means /healthz never fails.
	Bound time.Duration
	// Work lists the kinds of work watched: NRI events, reconciler ticks.
	Work []Work
	// Now is the clock the work's start times are compared with; nil
	// means time.Now.
	Now func() time.Time
}

// SetLiveness installs what /healthz checks. Without it /healthz only tells
// that the process serves HTTP.
func (m *Metrics) SetLiveness(l Liveness) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.live = l
}

// HealthHandler serves /healthz and /readyz only, no data: for a listener
// the kubelet's probes reach from the node.
//
// /healthz answers 200 "ok", or 503 with one line naming the piece of work
// (an NRI event, a reconciler tick) that has not finished for longer than
// the liveness bound: a plugin wedged on its lock is restarted. /readyz
// answers 200 once the plugin is registered with the runtime and
// synchronized, 503 while it is not.
//
// Neither takes any lock the plugin's events or its reconciler hold.
func (m *Metrics) HealthHandler() http.Handler {
	mux := http.NewServeMux()
	m.health(mux)
	return mux
}

func (m *Metrics) health(mux *http.ServeMux) {
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if reason := m.stuck(); reason != "" {
			http.Error(w, reason, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !m.ready.Load() {
			http.Error(w, "not registered with the runtime", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok\n")
	})
}

// stuck names the work unfinished for longest, when that is longer than the
// bound; "" when there is none.
func (m *Metrics) stuck() string {
	m.mu.Lock()
	l := m.live
	now := m.clock()
	m.mu.Unlock()
	if l.Bound <= 0 {
		return ""
	}
	var worst string
	var longest time.Duration
	for _, w := range l.Work {
		what, since, ok := w()
		if !ok {
			continue
		}
		if d := now.Sub(since); d > l.Bound && d > longest {
			worst, longest = what, d
		}
	}
	if worst == "" {
		return ""
	}
	return fmt.Sprintf("stuck: %s unfinished for %s (liveness bound %s)", worst, longest.Round(time.Second), l.Bound)
}

// clock is the liveness clock. Callers hold m.mu.
func (m *Metrics) clock() time.Time {
	if m.live.Now != nil {
		return m.live.Now()
	}
	return time.Now()
}
