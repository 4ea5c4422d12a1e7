package metrics

import (
	"bufio"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"nri-memqos/pkg/reconcile"
)

// The per-container families are written straight into the response, one
// line per series, never built as metric objects: with 10 000 containers a
// scrape holds some 140 000 series, which the registry's path (a constant
// metric, then a protobuf, then label hashing and sorting per series) took
// two seconds and 200 MiB to serve. What the registry serves (node-wide
// families, event durations, the Go and process collectors) stays there.

// family is one per-container family.
type family struct {
	name, help, typ string
	// extra is the name of the family's own label, "" for none.
	extra string
	// samples reports the container's series: per value of extra (""
	// without one). st is nil for a container the reconciler has no
	// stats for.
	samples func(c *Container, st *reconcile.Stats, emit func(extra string, v float64))
}

var reasons = []reconcile.Reason{reconcile.ReasonWatermark, reconcile.ReasonNodePressure, reconcile.ReasonProactive, reconcile.ReasonPriority}

// families are the per-container families, in the order served.
var families = []family{
	{name: "container_memory_min_bytes", typ: "gauge", help: "memory.min promised to the container.",
		samples: func(c *Container, _ *reconcile.Stats, emit func(string, float64)) { emit("", float64(c.Min)) }},
	{name: "container_memory_low_bytes", typ: "gauge", help: "memory.low promised to the container.",
		samples: func(c *Container, _ *reconcile.Stats, emit func(string, float64)) { emit("", float64(c.Low)) }},
	{name: "container_memory_high_bytes", typ: "gauge", help: "memory.high in force (the guard may hold it above the policy's value, priority-aware reclaim below it).",
		samples: func(c *Container, st *reconcile.Stats, emit func(string, float64)) {
			high := c.High
			if st != nil && st.High > 0 {
				high = st.High
			}
			if high > 0 {
				emit("", float64(high))
			}
		}},
	{name: "container_memory_usage_bytes", typ: "gauge", help: "memory.current (v1: memory.usage_in_bytes) at the reconciler's last tick.",
		samples: withStats(func(st *reconcile.Stats, emit func(string, float64)) { emit("", float64(st.Usage)) })},
	{name: "container_reclaimed_bytes_total", typ: "counter", help: "Bytes the reconciler reclaimed, by reason.", extra: "reason",
		samples: withStats(func(st *reconcile.Stats, emit func(string, float64)) {
			for _, r := range reasons {
				emit(string(r), float64(st.Reclaimed[r]))
			}
		})},
	{name: "container_guard_raises_total", typ: "counter", help: "Times the guard raised memory.high of a stalled container.",
		samples: withStats(func(st *reconcile.Stats, emit func(string, float64)) { emit("", float64(st.GuardRaises)) })},
	{name: "container_guard_restores_total", typ: "counter", help: "Times the guard stepped memory.high back.",
		samples: withStats(func(st *reconcile.Stats, emit func(string, float64)) { emit("", float64(st.GuardRestores)) })},
	{name: "container_tier_throttles_total", typ: "counter", help: "Steps priority-aware reclaim lowered the container's memory.high by, for a container of higher priority under pressure.",
		samples: withStats(func(st *reconcile.Stats, emit func(string, float64)) { emit("", float64(st.TierThrottles)) })},
	{name: "container_oom_kills_total", typ: "counter", help: "OOM kills in the container since the plugin saw it.",
		samples: withStats(func(st *reconcile.Stats, emit func(string, float64)) { emit("", float64(st.Events.OOMKill)) })},
	{name: "container_throttle_events_total", typ: "counter", extra: "event",
		help: "Memory events since the plugin saw the container: high (throttled at memory.high), max (hit memory.max), oom.",
		samples: withStats(func(st *reconcile.Stats, emit func(string, float64)) {
			emit("high", float64(st.Events.High))
			emit("max", float64(st.Events.Max))
			emit("oom", float64(st.Events.OOM))
		})},
	{name: "container_drift_repairs_total", typ: "counter", help: "Values the plugin set that someone else changed and the reconciler wrote back.",
		samples: withStats(func(st *reconcile.Stats, emit func(string, float64)) { emit("", float64(st.DriftRepairs)) })},
}

func withStats(f func(st *reconcile.Stats, emit func(string, float64))) func(*Container, *reconcile.Stats, func(string, float64)) {
	return func(_ *Container, st *reconcile.Stats, emit func(string, float64)) {
		if st != nil {
			f(st, emit)
		}
	}
}

// series is one container ready to write: its label values, escaped,
// in the order of labels.
type series struct {
	c *Container
	// stats are the reconciler's for the container, if hasStats.
	stats    reconcile.Stats
	hasStats bool
	vals     [5]string
}

// st is the series' stats, nil when the reconciler has none.
func (s *series) st() *reconcile.Stats {
	if !s.hasStats {
		return nil
	}
	return &s.stats
}

// labelOrder is, per family, the order its labels are written in: sorted
// by name, as the client library writes them, the family's own label in
// its place (index len(labels)).
func labelOrder(f family) []int {
	names := append(slices.Clone(labels), f.extra)
	idx := make([]int, 0, len(names))
	for i := range names {
		if names[i] != "" {
			idx = append(idx, i)
		}
	}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(names[a], names[b]) })
	return idx
}

// writeContainers writes the per-container families in the text
// exposition format. A container whose series cannot be exposed (a label
// value that is not UTF-8, the same label set as a container before it) is
// left out; skipped counts its series and first describes the first.
func writeContainers(w *bufio.Writer, src Source) (skipped int, first string) {
	stats := src.Reconciler()
	ctrs := src.Containers()
	list := make([]series, 0, len(ctrs))
	seen := make(map[string]bool, len(ctrs))
	for i := range ctrs {
		c := &ctrs[i]
		id := c.ID
		if len(id) > IDLength {
			id = id[:IDLength]
		}
		st, hasStats := stats[c.ID]
		vals := [...]string{c.Namespace, c.Pod, c.Container, id, c.Class}
		var why string
		for _, v := range vals {
			if !utf8.ValidString(v) {
				why = "label value " + strconv.Quote(v) + " is not valid UTF-8"
				break
			}
		}
		var esc [5]string
		for i, v := range vals {
			esc[i] = escapeLabel(v)
		}
		ls := strings.Join(esc[:], "\xff")
		if why == "" && seen[ls] {
			why = "the same series twice"
		}
		if why != "" {
			sr := series{c: c, stats: st, hasStats: hasStats}
			n := countSeries(c, sr.st())
			if skipped == 0 && n > 0 {
				shown := vals // a copy, so that only this rare branch allocates it
				first = fmt.Sprintf("%s_%s%q: %s", namespace, families[0].name, shown[:], why)
			}
			skipped += n
			continue
		}
		seen[ls] = true
		list = append(list, series{c: c, stats: st, hasStats: hasStats, vals: esc})
	}
	// One emit per family, over the series in turn: a closure made per
	// container and family was most of what a scrape allocated.
	var line []byte
	for _, f := range families {
		name := namespace + "_" + f.name
		order := labelOrder(f)
		wrote := false
		var s *series
		emit := func(extra string, v float64) {
			if !wrote {
				fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, escapeHelp(f.help), name, f.typ)
				wrote = true
			}
			line = append(line[:0], name...)
			line = append(line, '{')
			for k, i := range order {
				if k > 0 {
					line = append(line, ',')
				}
				if i == len(labels) {
					line = append(line, f.extra...)
					line = append(line, `="`...)
					line = append(line, extra...) // our own constants: nothing to escape
				} else {
					line = append(line, labels[i]...)
					line = append(line, `="`...)
					line = append(line, s.vals[i]...)
				}
				line = append(line, '"')
			}
			line = append(line, "} "...)
			// As the client library writes values.
			line = strconv.AppendFloat(line, v, 'g', -1, 64)
			line = append(line, '\n')
			_, _ = w.Write(line) // a failed write shows in Flush
		}
		for i := range list {
			s = &list[i]
			f.samples(s.c, s.st(), emit)
		}
	}
	return skipped, first
}

// countSeries is how many series a container has.
func countSeries(c *Container, st *reconcile.Stats) int {
	n := 0
	for _, f := range families {
		f.samples(c, st, func(string, float64) { n++ })
	}
	return n
}

// labelEscaper escapes a label value as the text format quotes it.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(v string) string { return labelEscaper.Replace(v) }

// escapeHelp escapes a HELP text as the text format wants it.
func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}
