package node_test

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestAncestorWriterOrdering: with Run's writer, Create and Remove return
// without touching the ancestors; Start returns only once the ancestors of
// what was created before it hold their sums; the writer lowers them after
// Remove (issue 11).
func TestAncestorWriterOrdering(t *testing.T) {
	f := newFixture(t, 2, "", "")
	a := ctrSpec{id: "a", pod: "a", class: "latency-sensitive", request: request256, limit: limit512}
	f.tree.cgroup(a.rel())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.n.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for !f.n.AncestorWriterRunning() {
		if time.Now().After(deadline) {
			t.Fatal("the ancestor writer did not start")
		}
		time.Sleep(time.Millisecond)
	}
	zero := ancestors(0, 0, map[string][2]int64{"a": {0, 0}})
	raised := ancestors(request256, 0, map[string][2]int64{"a": {request256, 0}})

	resume := f.n.PauseAncestorWriter()
	if d, err := f.n.Create(a.facts()); err != nil || d == nil {
		t.Fatalf("Create = %v, %v", d, err)
	}
	f.tree.check(zero) // the hook returned before any ancestor write
	started := make(chan struct{})
	go func() { f.n.Start(a.facts()); close(started) }()
	select {
	case <-started:
		t.Fatal("Start returned before the ancestors were raised")
	case <-time.After(100 * time.Millisecond):
	}
	resume()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("Start did not return after the writer went on")
	}
	f.tree.check(raised)

	resume = f.n.PauseAncestorWriter()
	f.n.Remove(a.facts())
	f.tree.check(raised) // lowering is the writer's
	resume()
	deadline = time.Now().Add(5 * time.Second)
	for f.tree.read("/kubepods", "memory.min") != "0" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	f.tree.check(zero)
	for _, w := range f.warnings() {
		if !strings.Contains(w, "plain test tree") {
			t.Errorf("warning: %s", w)
		}
	}
}
