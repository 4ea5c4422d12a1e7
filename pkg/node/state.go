package node

import (
	"maps"

	"nri-memqos/pkg/state"
)

// loadState takes back what a previous process of the plugin saved for the
// same cgroup mount. Callers hold n.mu.
func (n *Node) loadState() {
	if n.stateFile == "" {
		return
	}
	st, err := state.Load(n.stateFile, n.stateScope())
	if err != nil {
		n.log.Warnf("starting without saved state: %v", err)
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

// saveState writes the state when it changed. Callers hold n.mu.
func (n *Node) saveState() {
	if n.stateFile == "" || !n.dirty || n.fs == nil {
		return
	}
	st := &state.State{Scope: n.stateScope(), Ancestors: n.ledger.Snapshot(), Requests: n.requests, Containers: n.entries}
	if err := state.Save(n.stateFile, st); err != nil {
		n.log.Warnf("%v", err)
		return
	}
	n.dirty = false
}

// record remembers the request resolved for a container. Callers hold n.mu.
func (n *Node) record(id string, request int64) {
	if old, ok := n.requests[id]; !ok || old != request {
		n.requests[id] = request
		n.dirty = true
	}
}

// stateScope names the cgroup mount the saved ancestor values belong to.
func (n *Node) stateScope() string {
	return state.Scope(n.fs.Root, n.fs.Version)
}
