package node_test

import (
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"nri-memqos/pkg/node"
)

// warningsFor returns the warnings logged for one pod since the hook was
// last reset, and resets it.
func (f *fixture) warningsFor(pod string) []string {
	var out []string
	for _, e := range f.logs.AllEntries() {
		if e.Level <= logrus.WarnLevel && e.Data["pod"] == pod {
			out = append(out, e.Message)
		}
	}
	f.logs.Reset()
	return out
}

// managed returns the class the core manages container id under ("" when
// it does not manage it), as the metrics see it.
func (f *fixture) managed(id string) string {
	for _, c := range f.n.MetricsSource().Containers() {
		if c.ID == id {
			return c.Class
		}
	}
	return ""
}

// checkHeld checks that a reload kept container id under class with one
// warning containing every one of words.
func (f *fixture) checkHeld(t *testing.T, step int, id, pod, class string, words ...string) {
	t.Helper()
	if got := f.managed(id); got != class {
		t.Errorf("step %d: container %s managed under class %q; want %q", step, id, got, class)
	}
	w := f.warningsFor(pod)
	if len(w) != 1 {
		t.Errorf("step %d: %d warnings for %s: %q; want exactly one", step, len(w), pod, w)
		return
	}
	for _, word := range words {
		if !strings.Contains(w[0], word) {
			t.Errorf("step %d: warning %q does not contain %q", step, w[0], word)
		}
	}
}

const gold = "classes:\n  gold: {min: 0.5}\n"

// TestReloadKeepsContainersOfRemovedClass: a reload whose configuration no
// longer has the class of a running container (a half-written file, an
// edit) keeps that container managed under its last decision: its
// ancestors keep protecting it. New pods of the class fail. When the class
// returns, the container is decided again under it.
func TestReloadKeepsContainersOfRemovedClass(t *testing.T) {
	a := ctrSpec{id: "a", pod: "a", class: "gold", request: request256, limit: limit512, created: 1}
	b := ctrSpec{id: "b", pod: "b", class: "latency-sensitive", request: 128 * mi, limit: limit512, created: 2}
	c := ctrSpec{id: "c", pod: "c", class: "gold", request: request256, limit: limit512, created: 3}
	f := newFixture(t, 2, gold, "")
	f.apply(t, 0, op{kind: "create", ctr: a, want: ancestors(128*mi, 0, map[string][2]int64{"a": {128 * mi, 0}})})
	f.apply(t, 1, op{kind: "create", ctr: b, want: ancestors(256*mi, 0, map[string][2]int64{"a": {128 * mi, 0}, "b": {128 * mi, 0}})})
	f.logs.Reset()

	// gold is gone: a keeps its protection and its management.
	held := ancestors(256*mi, 0, map[string][2]int64{"a": {128 * mi, 0}, "b": {128 * mi, 0}})
	f.apply(t, 2, op{kind: "reload", config: "", want: held})
	f.checkHeld(t, 2, "a", "pod-a", "gold", `"gold"`, "unknown class", "keep")
	if got := f.managed("b"); got != "latency-sensitive" {
		t.Errorf("b managed under %q after the reload; want latency-sensitive", got)
	}
	if w := f.warningsFor("pod-b"); len(w) != 0 {
		t.Errorf("warnings for b, whose class stayed: %q", w)
	}

	// A new pod of the removed class fails with the usual one line.
	f.apply(t, 3, op{kind: "create", ctr: c, wantErr: `pod team-a/pod-c container "app-c": label memqos.nri.io/class "gold": unknown class`, want: held})

	// Another reload still without gold: a is still kept.
	f.logs.Reset()
	f.apply(t, 4, op{kind: "reload", config: "nodeProtectionFraction: 0.7\n", want: held})
	f.checkHeld(t, 4, "a", "pod-a", "gold", "unknown class")

	// A reconnection's resync keeps it too, and hands its values back.
	f.apply(t, 5, op{kind: "resync", list: []ctrSpec{a, b}, wantRequest: map[string]int64{"a": request256, "b": 128 * mi}, want: held})
	f.checkHeld(t, 5, "a", "pod-a", "gold", "unknown class")

	// gold is back, at a quarter: a is decided again under it.
	f.apply(t, 6, op{kind: "reload", config: "classes:\n  gold: {min: 0.25}\n",
		want: ancestors(192*mi, 0, map[string][2]int64{"a": {64 * mi, 0}, "b": {128 * mi, 0}})})
	if w := f.warningsFor("pod-a"); len(w) != 0 {
		t.Errorf("warnings for a once gold is back: %q", w)
	}
	if got := f.managed("a"); got != "gold" {
		t.Errorf("a managed under %q; want gold", got)
	}

	// Removing a withdraws what it held.
	f.apply(t, 7, op{kind: "remove", ctr: a, want: ancestors(128*mi, 0, map[string][2]int64{"a": {0, 0}, "b": {128 * mi, 0}})})
}

// TestReloadKeepsContainersOfRestrictedClass: a class restricted to other
// namespaces by a reload keeps its running containers, like a removed one.
func TestReloadKeepsContainersOfRestrictedClass(t *testing.T) {
	a := ctrSpec{id: "a", pod: "a", class: "gold", request: request256, limit: limit512}
	f := newFixture(t, 2, gold, "")
	f.apply(t, 0, op{kind: "create", ctr: a})
	f.logs.Reset()
	want := ancestors(128*mi, 0, map[string][2]int64{"a": {128 * mi, 0}})
	f.apply(t, 1, op{kind: "reload", config: "classes:\n  gold: {min: 0.25, namespaces: [team-b]}\n", want: want})
	f.checkHeld(t, 1, "a", "pod-a", "gold", `not allowed in namespace "team-a"`)
	f.apply(t, 2, op{kind: "create", ctr: ctrSpec{id: "c", pod: "c", class: "gold", request: request256, limit: limit512},
		wantErr: `class not allowed in namespace "team-a"; allowed: namespaces team-b`, want: want})
	// Allowed again: decided again under the class as it now is.
	f.apply(t, 3, op{kind: "reload", config: "classes:\n  gold: {min: 0.25, namespaces: [team-a]}\n",
		want: ancestors(64*mi, 0, map[string][2]int64{"a": {64 * mi, 0}})})
}

// TestReloadKeepsContainersOfRemovedNamespaceDefault: a reload that drops
// the namespace default a running container was opted in by keeps it
// under its last decision (its cgroup keeps the plugin's values either
// way); the default's return decides it again.
func TestReloadKeepsContainersOfRemovedNamespaceDefault(t *testing.T) {
	a := ctrSpec{id: "a", pod: "a", request: request256, limit: limit512}
	def := "namespaceClasses:\n  team-a: burstable\n"
	f := newFixture(t, 2, def, "")
	want := ancestors(0, request256, map[string][2]int64{"a": {0, request256}})
	f.apply(t, 0, op{kind: "create", ctr: a, want: want})
	f.logs.Reset()
	f.apply(t, 1, op{kind: "reload", config: "", want: want})
	f.checkHeld(t, 1, "a", "pod-a", "burstable", "no longer opted in", "keep")
	f.apply(t, 2, op{kind: "reload", config: def + "classes:\n  burstable: {low: 0.5}\n",
		want: ancestors(0, 128*mi, map[string][2]int64{"a": {0, 128 * mi}})})
	if w := f.warningsFor("pod-a"); len(w) != 0 {
		t.Errorf("warnings for a once its default is back: %q", w)
	}
}

// TestResyncAfterRestartForgetsUnknownClass: a new process only knows the
// configuration in force: a container of a class it does not have is
// warned about and left alone, as at creation.
func TestResyncAfterRestartForgetsUnknownClass(t *testing.T) {
	a := ctrSpec{id: "a", pod: "a", class: "gold", request: request256, limit: limit512}
	f := newFixture(t, 2, "", "")
	f.cgroup(a.rel())
	updates, err := f.n.Resync([]node.Container{a.facts()})
	if err != nil || len(updates) != 0 {
		t.Fatalf("Resync = %v, %v; want no update", updates, err)
	}
	if w := f.warningsFor("pod-a"); len(w) != 1 || !strings.Contains(w[0], "unknown class") {
		t.Errorf("warnings = %q; want one naming the unknown class", w)
	}
}

// TestResizeOfKeptContainer: an in-place resize of a container kept under
// its last decision after its class went away is not failed by the plugin:
// the update carries the last decision (kubelet's request would zero the
// plugin's memory.min), the container keeps it and its ancestors'
// protection.
func TestResizeOfKeptContainer(t *testing.T) {
	a := ctrSpec{id: "a", pod: "a", class: "gold", request: request256, limit: limit512}
	f := newFixture(t, 2, gold, "")
	f.apply(t, 0, op{kind: "create", ctr: a})
	want := ancestors(128*mi, 0, map[string][2]int64{"a": {128 * mi, 0}})
	f.apply(t, 1, op{kind: "reload", config: "", want: want})
	f.logs.Reset()
	bigger := a
	bigger.request = 384 * mi
	f.apply(t, 2, op{kind: "update", ctr: bigger, wantRequest: map[string]int64{"a": request256}, want: want})
	f.checkHeld(t, 2, "a", "pod-a", "gold", `unknown class`, "keeping the container's last decision")
	f.apply(t, 3, op{kind: "postupdate", ctr: bigger, want: want})
}
