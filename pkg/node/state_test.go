package node_test

import (
	"path/filepath"
	"testing"

	"nri-memqos/pkg/node"
	"nri-memqos/pkg/policy"
)

// TestStateSurvivesRestart: the request resolved at a resize and the
// ancestor values the plugin wrote survive a restart of the plugin, so the
// new process decides the same and lowers its own values when the
// container goes.
func TestStateSurvivesRestart(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "state.json")
	a := ctrSpec{id: "a", pod: "a", class: "latency-sensitive", request: request256, limit: limit512}
	aSmall := a
	aSmall.request = 128 * mi
	f := newFixture(t, 2, "", stateFile)
	f.apply(t, 0, op{kind: "create", ctr: a})
	f.apply(t, 1, op{kind: "update", ctr: aSmall})
	f.apply(t, 2, op{kind: "postupdate", ctr: aSmall, want: ancestors(128*mi, 0, map[string][2]int64{"a": {128 * mi, 0}})})

	// A new process: the runtime lists the container with the plugin's own
	// memory.min in its unified map and the creation-time annotation.
	g := startFixture(t, f.tree, "", stateFile)
	restarted := a
	restarted.request = 128 * mi
	listed := restarted.facts()
	listed.Ctr.Annotations = map[string]string{policy.AnnotationRecordedRequest: itoa(request256)}
	updates, err := g.n.Resync([]node.Container{listed})
	if err != nil {
		t.Fatal(err)
	}
	if len(updates) != 1 || updates[0].Decision.Request != 128*mi || updates[0].Decision.RequestSource != policy.RequestFromRecorded {
		t.Fatalf("resync after restart = %+v; want a's request 128Mi recorded", updates)
	}
	g.check(ancestors(128*mi, 0, map[string][2]int64{"a": {128 * mi, 0}}))
	// The values written by the first process are lowered as the plugin's own.
	g.n.Remove(listed)
	g.check(ancestors(0, 0, map[string][2]int64{"a": {0, 0}}))

	// Without the state the same values would be kubelet's and stay.
	h := startFixture(t, newTree(t, 2), "", "")
	h.apply(t, 0, op{kind: "create", ctr: a})
	k := startFixture(t, h.tree, "", "")
	k.n.Remove(a.facts())
	k.check(ancestors(request256, 0, map[string][2]int64{"a": {request256, 0}}))
}
