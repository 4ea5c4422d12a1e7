package reconcile

import (
	"time"

	"nri-memqos/pkg/health"
)

// What a tick in progress is called in /healthz's answer.
const tickWork = "reconciler tick"

// ticks returns r's ticks in progress.
func (r *Reconciler) ticks() *health.InFlight { return &r.inflight }

// beginTick marks a tick in progress, endTick its end; Tick starts with
//
//	defer r.endTick(r.beginTick())
//
// so that a tick stuck anywhere, on the plugin's lock in its source or on
// a cgroup write, shows in TickInProgress.
func (r *Reconciler) beginTick() uint64 { return r.ticks().Begin(tickWork) }

func (r *Reconciler) endTick(token uint64) { r.ticks().End(token) }

// TickInProgress returns when the oldest tick still running started (wall
// clock), for the liveness check; ok is false between ticks. It takes none
// of the reconciler's locks.
func (r *Reconciler) TickInProgress() (what string, since time.Time, ok bool) {
	return r.ticks().Oldest()
}
