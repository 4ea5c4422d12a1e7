package wait

import (
	"fmt"
	"testing"
	"time"
)

// recorder is a testing.TB that keeps what Errorf reports.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestFor(t *testing.T) {
	n := 0
	For(t, 5*time.Second, "the third call", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Errorf("cond called %d times, want 3", n)
	}
}

func TestUntil(t *testing.T) {
	n := 0
	if !Until(t, 5*time.Second, func() string {
		if n++; n < 3 {
			return "not yet"
		}
		return ""
	}) {
		t.Error("Until = false, want true")
	}
	if n != 3 {
		t.Errorf("cond called %d times, want 3", n)
	}

	r := &recorder{TB: t}
	if Until(r, 50*time.Millisecond, func() string { return "memory.min = 0" }) {
		t.Error("Until = true for a condition that never holds")
	}
	if len(r.errors) != 1 || r.errors[0] != "still after 50ms: memory.min = 0" {
		t.Errorf("reported %q, want one error %q", r.errors, "still after 50ms: memory.min = 0")
	}
}
