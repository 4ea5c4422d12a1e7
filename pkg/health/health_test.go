package health_test

import (
	"testing"
	"time"

	"nri-memqos/pkg/health"
)

func TestInFlightOldest(t *testing.T) {
	t0 := time.Unix(1000, 0)
	now := t0
	f := &health.InFlight{Now: func() time.Time { return now }}
	if _, _, ok := f.Oldest(); ok {
		t.Fatal("zero InFlight reports work in progress")
	}
	a := f.Begin("a")
	now = now.Add(time.Second)
	b := f.Begin("b")
	if what, since, ok := f.Oldest(); !ok || what != "a" || !since.Equal(t0) {
		t.Errorf("Oldest = %q %v %v, want a since %v", what, since, ok, t0)
	}
	f.End(a)
	if what, since, ok := f.Oldest(); !ok || what != "b" || !since.Equal(t0.Add(time.Second)) {
		t.Errorf("after End(a): Oldest = %q %v %v, want b", what, since, ok)
	}
	f.End(b)
	f.End(b) // twice: harmless
	if _, _, ok := f.Oldest(); ok {
		t.Error("work in progress after every End")
	}
	// The same name twice counts twice.
	c1, c2 := f.Begin("c"), f.Begin("c")
	f.End(c1)
	if what, _, ok := f.Oldest(); !ok || what != "c" {
		t.Errorf("one of two c ended: Oldest = %q %v", what, ok)
	}
	f.End(c2)
}
