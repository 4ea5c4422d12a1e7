package reconcile

import (
	"github.com/sirupsen/logrus"

	"nri-memqos/pkg/cgroupfs"
)

// A steady tick reads memory.current of every container, and memory.events
// of about eventsPerTick of them, as long as each container's is still read
// at least every maxEventsPeriod ticks: with n containers, each container's
// memory.events is read every eventsPeriod(n) = ceil(n / eventsPerTick)
// ticks, 1 to maxEventsPeriod, at a phase of its own (a hash of its ID) so
// that every tick reads about n / eventsPeriod(n) of them. Reading both files
// of every container costs twice as much: at 1 000 containers this is what
// brings a steady tick to about 1% of a core at a 1 s interval
// (BenchmarkTick). Up to 100 containers every tick reads every memory.events,
// as before; beyond, OOM kills are counted and logged, and the event counters
// move, up to eventsPeriod − 1 ticks late (9 s at the default 1 s interval; a
// change in the number of containers can stretch one wait once). A
// container's first tick always reads them, to take the baseline.
const (
	eventsPerTick   = 100
	maxEventsPeriod = 10
)

func eventsPeriod(n int) uint64 {
	return uint64(min(max((n+eventsPerTick-1)/eventsPerTick, 1), maxEventsPeriod))
}

// countEvents adds new memory events and logs each OOM kill once.
func (r *Reconciler) countEvents(t Target, s *state, usage int64) {
	ev, err := r.cg.ReadEvents(t.Rel)
	if err != nil {
		r.note(t, "read events", err)
		return
	}
	if !s.eventsSeen {
		// Counters from before the reconciler knew the container are history.
		s.events, s.eventsSeen = ev, true
		return
	}
	d := cgroupfs.Events{
		OOMKill: delta(ev.OOMKill, s.events.OOMKill), OOM: delta(ev.OOM, s.events.OOM),
		High: delta(ev.High, s.events.High), Max: delta(ev.Max, s.events.Max),
	}
	s.events = ev
	s.stats.Events.OOMKill += d.OOMKill
	s.stats.Events.OOM += d.OOM
	s.stats.Events.High += d.High
	s.stats.Events.Max += d.Max
	if d.OOMKill > 0 {
		r.log.WithFields(targetFields(t)).WithFields(logrus.Fields{
			"limit": t.Decision.Limit, "usage": usage, "oomKills": d.OOMKill,
		}).Warn("container OOM-killed")
	}
}

func delta(cur, prev uint64) uint64 {
	if cur < prev {
		return cur // counters restarted (a new cgroup under the same path)
	}
	return cur - prev
}
