package node

import (
	"maps"

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
	requests, entries map[string]struct{}
}

// loadState takes back what a previous process of the plugin saved for the
// same cgroup mount, and opens the store the events append to. Callers hold
// n.mu.
func (n *Node) loadState() {
	if n.stateFile == "" {
		return
	}
	store, st, err := state.Open(n.stateFile, n.stateScope(), func(err error) { n.log.Warnf("%v", err) })
	if err != nil {
		n.log.Warnf("state: %v", err)
	}
	n.store = store
	if store != nil {
		n.ledger.SetJournal(ledgerJournal{n})
	}
	n.ledger.Restore(st.Ancestors)
	maps.Copy(n.requests, st.Requests)
	for id, e := range st.Containers {
		if e == nil || e.Path == "" {
			continue
		}
		if e.Set == nil {
			e.Set = map[string]string{}
		}
		if n.entries == nil {
			n.entries = map[string]*state.Container{}
		}
		n.entries[id] = e
	}
}

// saveState appends what the event changed to the journal. Callers hold
// n.mu.
func (n *Node) saveState() {
	if len(n.changed.requests) == 0 && len(n.changed.entries) == 0 {
		return
	}
	if n.store == nil {
		clear(n.changed.requests)
		clear(n.changed.entries)
		return
	}
	rec := &state.Record{}
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
			rec.Containers[id] = e
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
