package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestRenderEventsHeap: the heap per container joins the create row of the
// same N; an N without a heap measure shows a dash.
func TestRenderEventsHeap(t *testing.T) {
	bench := map[string]map[string][]float64{
		"Create/live=100":  {"ns/op": {18000}, "B/op": {8000}, "allocs/op": {120}},
		"Create/live=1000": {"ns/op": {30000, 32000, 31000}, "B/op": {9000}, "allocs/op": {130}},
		"Heap/live=1000":   {"B/container": {2300, 2100, 2200}},
	}
	var b strings.Builder
	renderEvents(func(f string, a ...any) { fmt.Fprintf(&b, f+"\n", a...) }, bench)
	text := b.String()
	for _, want := range []string{
		"| live containers | create + remove | bytes allocated | allocations | core heap per container |",
		"| 100 | 18.0 µs | 8000 B | 120 | – |",
		"| 1000 | 31.0 µs | 9000 B | 130 | 2200 B |",
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("no line %q in:\n%s", want, text)
		}
	}
}
