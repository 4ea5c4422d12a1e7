package node_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nri-memqos/pkg/state"
)

// TestAncestorWriterOrdering: with Run's writer, Create and Remove return
// without touching the ancestors; Start returns only once the ancestors of
// what was created before it hold their sums; the writer lowers them after
// Remove (issue 11).
func TestAncestorWriterOrdering(t *testing.T) {
	f := newFixture(t, 2, "", "")
	a := ctrSpec{id: "a", pod: "a", class: "latency-sensitive", request: request256, limit: limit512}
	f.cgroup(a.rel())
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
	f.check(zero) // the hook returned before any ancestor write
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
	f.check(raised)

	resume = f.n.PauseAncestorWriter()
	f.n.Remove(a.facts())
	f.check(raised) // lowering is the writer's
	resume()
	deadline = time.Now().Add(5 * time.Second)
	for f.read("/kubepods", "memory.min") != "0" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	f.check(zero)
	for _, w := range f.warnings() {
		if !strings.Contains(w, "plain test tree") {
			t.Errorf("warning: %s", w)
		}
	}
}

// TestMemoryReleaseAfterMassRemoval: on a node that held at least 512
// containers, memory goes back to the OS once the containers fell to half
// of their peak, once per fall, and when the last one went; not for small
// nodes or small falls.
func TestMemoryReleaseAfterMassRemoval(t *testing.T) {
	f := newFixture(t, 2, "", "")
	released := make(chan struct{}, 10)
	f.n.SetMemoryRelease(func() { released <- struct{}{} })
	spec := func(i int) ctrSpec {
		return ctrSpec{id: fmt.Sprintf("c%04d", i), pod: fmt.Sprintf("p%04d", i), class: "best-effort", limit: limit512}
	}
	count := func() int {
		time.Sleep(50 * time.Millisecond) // the release runs in a goroutine
		return len(released)
	}
	for i := range 600 {
		if _, err := f.n.Create(spec(i).facts()); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 299 {
		f.n.Remove(spec(i).facts())
	}
	if n := count(); n != 0 {
		t.Fatalf("%d releases with 301 of 600 left; want none", n)
	}
	f.n.Remove(spec(299).facts())
	f.n.Remove(spec(300).facts())
	if n := count(); n != 1 {
		t.Fatalf("%d releases after falling below half of 600; want 1", n)
	}
	for i := 301; i < 599; i++ {
		f.n.Remove(spec(i).facts())
	}
	// From 300: at 44 (half, and 256 fewer); not again down to one.
	if n := count(); n != 2 {
		t.Errorf("%d releases with one left; want 2 (at 300 and at 44)", n)
	}
	f.n.Remove(spec(599).facts())
	if n := count(); n != 3 {
		t.Errorf("%d releases once the last container went; want 3", n)
	}
	// A small node (never 512) never releases.
	for i := range 100 {
		if _, err := f.n.Create(spec(i).facts()); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		f.n.Remove(spec(i).facts())
	}
	if n := count(); n != 3 {
		t.Errorf("%d releases after 100 came and went; want still 3", n)
	}
}

// TestCloseWaitsForTheWritersLastPass: at shutdown (Run's context ends)
// the writer's last pass writes what was pending and journals it; Close
// waits for that before closing the state, so a restarted plugin still
// knows those ancestor values as its own.
func TestCloseWaitsForTheWritersLastPass(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "state.json")
	f := newFixture(t, 2, "", stateFile)
	a := ctrSpec{id: "a", pod: "a", class: "latency-sensitive", request: request256, limit: limit512}
	f.cgroup(a.rel())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.n.Run(ctx); close(done) }()
	for !f.n.AncestorWriterRunning() {
		time.Sleep(time.Millisecond)
	}
	resume := f.n.PauseAncestorWriter()
	if _, err := f.n.Create(a.facts()); err != nil {
		t.Fatal(err)
	}
	cancel() // shutdown with the raise still pending
	closed := make(chan error, 1)
	go func() { closed <- f.n.Close() }()
	time.Sleep(50 * time.Millisecond)
	resume()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	<-done
	f.check(ancestors(request256, 0, map[string][2]int64{"a": {request256, 0}}))
	st, err := state.Read(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Ancestors) != 3 {
		t.Errorf("state after shutdown holds %d ancestor values (%+v); want the 3 written in the last pass", len(st.Ancestors), st.Ancestors)
	}
	for _, w := range f.warnings() {
		if !strings.Contains(w, "plain test tree") {
			t.Errorf("warning: %s", w)
		}
	}
}
