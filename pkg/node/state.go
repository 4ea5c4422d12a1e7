package node

import (
	"maps"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/protection"
	"nri-memqos/pkg/state"
)

// The state file keeps, across restarts, the ancestor values the plugin
// wrote (with their baselines), the requests it resolved and the container
// entries (cleanup). Each event appends the changes it made as one journal
// record (state.Store): the cost of an event does not grow with the number
// of containers. The ledger's own record of an ancestor write goes into the
// journal before the write (ledgerJournal).

// changes are the containers whose request or entry an event changed, for
// its journal record.
type changes struct {
	requests, entries, promises map[string]struct{}
}

// loadState takes back what a previous process of the plugin saved for the
// same cgroup mount, and opens the store the events append to. Callers hold
// n.mu.
func (n *Node) loadState() {
	if n.stateFile == "" {
		return
	}
	open := state.Open
	if n.oneShot {
		// A hook run appends its records; it does not rewrite the state.
		open = state.OpenAppend
	}
	store, st, err := open(n.stateFile, n.stateScope(), func(err error) { n.log.Warnf("%v", err) })
	if err != nil {
		n.log.Warnf("state: %v", err)
	}
	n.store = store
	if store != nil {
		n.ledger.SetJournal(ledgerJournal{n})
	}
	n.ledger.Restore(st.Ancestors)
	n.promises = make(map[string]state.Promise, len(st.Promises))
	maps.Copy(n.promises, st.Promises)
	if n.oneShot {
		// No runtime listing follows to rebuild the promises from: the
		// saved ones are the other containers'.
		for id, p := range st.Promises {
			var ancestors []string
			if n.fs.Version == 2 && p.Path != "" {
				ancestors = cgroupfs.Ancestors(p.Path)
			}
			n.ledger.Set(id, protection.Promise{Ancestors: ancestors, Min: p.Min, Low: p.Low})
		}
	}
	maps.Copy(n.requests, st.Requests)
	for id, e := range st.Containers {
		if e == nil || e.Path == "" {
			continue
		}
		if n.entries == nil {
			n.entries = map[string]*entry{}
		}
		n.entries[id] = entryOf(e)
	}
}

// saveState appends what the event changed to the journal. Callers hold
// n.mu.
func (n *Node) saveState() {
	if len(n.changed.requests) == 0 && len(n.changed.entries) == 0 && len(n.changed.promises) == 0 {
		return
	}
	if n.store == nil {
		clear(n.changed.requests)
		clear(n.changed.entries)
		clear(n.changed.promises)
		return
	}
	rec := &state.Record{}
	for id := range n.changed.promises {
		if p, ok := n.promises[id]; ok {
			if rec.Promises == nil {
				rec.Promises = map[string]state.Promise{}
			}
			rec.Promises[id] = p
		} else {
			rec.DropPromises = append(rec.DropPromises, id)
		}
	}
	clear(n.changed.promises)
	for id := range n.changed.requests {
		if v, ok := n.requests[id]; ok {
			if rec.Requests == nil {
				rec.Requests = map[string]int64{}
			}
			rec.Requests[id] = v
		} else {
			rec.DropRequests = append(rec.DropRequests, id)
		}
	}
	for id := range n.changed.entries {
		if e, ok := n.entries[id]; ok {
			if rec.Containers == nil {
				rec.Containers = map[string]*state.Container{}
			}
			rec.Containers[id] = e.record()
		} else {
			rec.DropContainers = append(rec.DropContainers, id)
		}
	}
	clear(n.changed.requests)
	clear(n.changed.entries)
	if err := n.store.Append(rec); err != nil {
		n.log.Warnf("%v", err)
	}
}

// requestChanged and entryChanged mark what saveState appends. Callers
// hold n.mu.
func (n *Node) requestChanged(id string) { n.changed.requests[id] = struct{}{} }
func (n *Node) entryChanged(id string)   { n.changed.entries[id] = struct{}{} }

// notePromise keeps the promise of container id for the state file: only
// a promise of some protection is kept (p nil or zero drops it). Callers
// hold n.mu.
func (n *Node) notePromise(id string, p *state.Promise) {
	old, had := n.promises[id]
	switch {
	case p == nil || (p.Min == 0 && p.Low == 0):
		if had {
			delete(n.promises, id)
			n.changed.promises[id] = struct{}{}
		}
	case !had || old != *p:
		n.promises[id] = *p
		n.changed.promises[id] = struct{}{}
	}
}

// record remembers the request resolved for a container. Callers hold n.mu.
func (n *Node) record(id string, request int64) {
	if old, ok := n.requests[id]; !ok || old != request {
		n.requests[id] = request
		n.requestChanged(id)
	}
}

// dropRequest forgets the request of a container. Callers hold n.mu.
func (n *Node) dropRequest(id string) {
	if _, ok := n.requests[id]; ok {
		delete(n.requests, id)
		n.requestChanged(id)
	}
}

// stateScope names the cgroup mount the saved ancestor values belong to.
func (n *Node) stateScope() string {
	return state.Scope(n.fs.Root, n.fs.Version)
}

// ledgerJournal puts the ledger's notes into the store, each as a record
// of its own, appended before the ledger writes the files. It holds no
// lock of the core's: the ledger calls it from events and from the
// background ancestor writer alike.
type ledgerJournal struct{ n *Node }

func (j ledgerJournal) Writing(vals []state.Value) {
	if err := j.n.store.Append(&state.Record{Ancestors: vals}); err != nil {
		j.n.log.Warnf("%v", err)
	}
}

func (j ledgerJournal) Wrote(vals, forgot []state.Value) {
	if err := j.n.store.Append(&state.Record{Ancestors: vals, DropAncestors: forgot}); err != nil {
		j.n.log.Warnf("%v", err)
	}
}
