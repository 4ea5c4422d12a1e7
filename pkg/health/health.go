// Package health tracks the plugin's work in progress (NRI events,
// reconciler ticks), so that its liveness check can tell a plugin that is
// busy from one that is stuck: a piece of work that started and has not
// finished for longer than a bound.
package health

import (
	"sync"
	"time"
)

// InFlight is a set of pieces of work in progress, each with its start
// time. The zero value is ready to use, on the wall clock. Begin and End
// cost a short mutex hold and a map write: cheap next to any NRI event.
type InFlight struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu   sync.Mutex
	next uint64
	work map[uint64]work
}

type work struct {
	what  string
	since time.Time
}

// Begin marks what as started and returns the token End takes:
//
//	defer f.End(f.Begin("CreateContainer"))
func (f *InFlight) Begin(what string) uint64 {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.work == nil {
		f.work = map[uint64]work{}
	}
	f.next++
	f.work[f.next] = work{what: what, since: now}
	return f.next
}

// End marks the work Begin returned token for as finished.
func (f *InFlight) End(token uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.work, token)
}

// Oldest returns the piece of work in progress that started first, and
// when; ok is false when nothing is in progress.
func (f *InFlight) Oldest() (what string, since time.Time, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.work {
		if !ok || w.since.Before(since) {
			what, since, ok = w.what, w.since, true
		}
	}
	return what, since, ok
}

func (f *InFlight) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}
