package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// renderEvents writes the event path measured inside the process
// (events.txt: BenchmarkCreate of pkg/node, BenchmarkScrape of
// pkg/metrics) and returns its headlines.
func renderEvents(w func(string, ...any), bench map[string]map[string][]float64) []string {
	type row struct {
		live              int
		ns, bytes, allocs float64
		heap              float64 // B per container (BenchmarkHeap), 0: not measured
	}
	heap := map[int]float64{}
	for name, units := range bench {
		if n, ok := strings.CutPrefix(name, "Heap/live="); ok {
			if live, err := strconv.Atoi(n); err == nil {
				heap[live] = median(units["B/container"])
			}
		}
	}
	var rows []row
	for name, units := range bench {
		n, ok := strings.CutPrefix(name, "Create/live=")
		if !ok {
			continue
		}
		live, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		rows = append(rows, row{live, median(units["ns/op"]), median(units["B/op"]), median(units["allocs/op"]), heap[live]})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].live < rows[j].live })
	var heads []string
	w("### The event path inside the plugin")
	w("")
	w("`BenchmarkCreate` (pkg/node): one CreateContainer and the RemoveContainer that keeps N containers live, through the core with its state journal, the ancestor writer held off while timed (it works after the event); medians of the runs. Allocations must not grow with N.")
	w("`BenchmarkHeap` (pkg/node): the heap the core keeps per container, N containers of three classes created, the reconciler ticked over them and stopped, after a collection.")
	w("")
	if len(rows) > 0 {
		w("| live containers | create + remove | bytes allocated | allocations | core heap per container |")
		w("| --- | --- | --- | --- | --- |")
		for _, r := range rows {
			h := "–"
			if r.heap > 0 {
				h = fmt.Sprintf("%.0f B", r.heap)
			}
			w("| %d | %.1f µs | %.0f B | %.0f | %s |", r.live, r.ns/1e3, r.bytes, r.allocs, h)
		}
		first, last := rows[0], rows[len(rows)-1]
		heads = append(heads, fmt.Sprintf("core event path (create + remove) at %d live: %.1f µs, %.0f allocations; at %d live: %.1f µs, %.0f allocations",
			first.live, first.ns/1e3, first.allocs, last.live, last.ns/1e3, last.allocs))
	}
	if s, ok := bench["Scrape"]; ok {
		w("")
		w("`BenchmarkScrape` (pkg/metrics): one scrape of `/metrics` with 10 000 containers and their reconciler stats: %.0f ms, %.0f MB allocated, %.0f allocations.",
			median(s["ns/op"])/1e6, median(s["B/op"])/1e6, median(s["allocs/op"]))
		heads = append(heads, fmt.Sprintf("/metrics scrape at 10000 containers: %.0f ms", median(s["ns/op"])/1e6))
	}
	w("")
	return heads
}
