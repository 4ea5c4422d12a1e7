package main

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The parts of hook.json (test/bench/hook's Report) this report renders;
// the field documentation is there.

type hookResult struct {
	Live      int    `json:"live"`
	Mode      string `json:"mode"`
	Setup     string `json:"setup"`
	Event     string `json:"event"`
	Count     int    `json:"count"`
	P50Ns     int64  `json:"p50_ns"`
	P99Ns     int64  `json:"p99_ns"`
	MeanNs    int64  `json:"mean_ns"`
	Truncated bool   `json:"truncated"`
}

type hookRatio struct {
	Live  int     `json:"live"`
	Mode  string  `json:"mode"`
	Event string  `json:"event"`
	P50   float64 `json:"p50_ratio"`
	P99   float64 `json:"p99_ratio"`
}

type hookRSSAt struct {
	Live         int   `json:"live"`
	AfterFillKiB int64 `json:"after_fill_kib"`
	PeakKiB      int64 `json:"peak_kib"`
}

type hookRSS struct {
	Setup       string      `json:"setup"`
	StartKiB    int64       `json:"start_kib"`
	At          []hookRSSAt `json:"at"`
	SettledKiB  int64       `json:"settled_kib"`
	ReturnedPct float64     `json:"returned_pct"`
	// StartFileKiB and SettledFileKiB: RssFile, the binary's own pages
	// (0 in reports from before they were measured).
	StartFileKiB   int64 `json:"start_file_kib"`
	SettledFileKiB int64 `json:"settled_file_kib"`
}

type hookStatePerN struct {
	Live          int     `json:"live"`
	Events        int     `json:"events"`
	BytesPerEvent float64 `json:"bytes_per_event"`
}

type hookTarget struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Limit  float64 `json:"limit"`
	Unit   string  `json:"unit"`
	Status string  `json:"status"`
}

type hookReport struct {
	Date          string       `json:"date"`
	Rounds        int          `json:"rounds"`
	Sizes         []int        `json:"sizes"`
	Steps         int          `json:"steps"`
	PhaseBudgetNs int64        `json:"phase_budget_ns"`
	Concurrency   int          `json:"concurrency"`
	PerPod        int          `json:"containers_per_pod"`
	Events        []string     `json:"events"`
	Results       []hookResult `json:"results"`
	Ratios        []hookRatio  `json:"ratios"`
	// FloorRatios and OverFloorRatios are absent (nil) in files from
	// before the floor (noop-adjust) was measured.
	FloorRatios     []hookRatio `json:"floor_ratios"`
	OverFloorRatios []hookRatio `json:"over_floor_ratios"`
	RSS             []hookRSS   `json:"rss"`
	State           struct {
		Counter   string          `json:"counter"`
		Available bool            `json:"available"`
		PerN      []hookStatePerN `json:"per_n"`
	} `json:"state_writes"`
	Targets    []hookTarget   `json:"targets"`
	Reconnects map[string]int `json:"plugin_reconnects"`
}

var (
	hookSetups = []string{"none", "noop", "noop-adjust", "nri-memqos"}
	hookModes  = []string{"sequential", "concurrent-64"}
	// setupNames are the setups' names in the per-N tables.
	setupNames = map[string]string{"none": "none", "noop": "no-op", "noop-adjust": "floor", "nri-memqos": "nri-memqos"}
)

// hasFloor tells whether the run measured the floor (noop-adjust).
func (h *hookReport) hasFloor() bool { return len(h.FloorRatios) > 0 }

func (h *hookReport) result(live int, mode, setup, event string) (hookResult, bool) {
	for _, r := range h.Results {
		if r.Live == live && r.Mode == mode && r.Setup == setup && r.Event == event {
			return r, true
		}
	}
	return hookResult{}, false
}

// ratio is nri-memqos over noop.
func (h *hookReport) ratio(live int, mode, event string) (hookRatio, bool) {
	return findRatio(h.Ratios, live, mode, event)
}

// floor is noop-adjust over noop.
func (h *hookReport) floor(live int, mode, event string) (hookRatio, bool) {
	return findRatio(h.FloorRatios, live, mode, event)
}

// overFloor is nri-memqos over noop-adjust.
func (h *hookReport) overFloor(live int, mode, event string) (hookRatio, bool) {
	return findRatio(h.OverFloorRatios, live, mode, event)
}

func findRatio(rs []hookRatio, live int, mode, event string) (hookRatio, bool) {
	for _, r := range rs {
		if r.Live == live && r.Mode == mode && r.Event == event {
			return r, true
		}
	}
	return hookRatio{}, false
}

func (h *hookReport) rss(setup string) (hookRSS, bool) {
	for _, r := range h.RSS {
		if r.Setup == setup {
			return r, true
		}
	}
	return hookRSS{}, false
}

func (r hookRSS) at(live int) (int64, bool) {
	a, ok := r.reading(live)
	return a.PeakKiB, ok
}

func (r hookRSS) reading(live int) (hookRSSAt, bool) {
	for _, a := range r.At {
		if a.Live == live {
			return a, true
		}
	}
	return hookRSSAt{}, false
}

// short is an event's name without "Container".
func short(event string) string { return strings.TrimSuffix(event, "Container") }

func modeName(mode string) string {
	if n, ok := strings.CutPrefix(mode, "concurrent-"); ok {
		return n + " concurrent"
	}
	return mode
}

func (h *hookReport) missed() []hookTarget {
	var out []hookTarget
	for _, t := range h.Targets {
		if t.Status == "missed" {
			out = append(out, t)
		}
	}
	return out
}

// renderHook writes section 1 of the report and its charts into out and
// returns its headlines.
func renderHook(w func(string, ...any), h *hookReport, out string) ([]string, error) {
	if len(h.Sizes) == 0 {
		return nil, fmt.Errorf("hook.json has no sizes: it predates the churn benchmark; run make bench (or TestHookCost) again")
	}
	w("## 1. Cost of the container events")
	w("")
	if h.hasFloor() {
		w("Container events round trip through NRI's real runtime side (`pkg/adaptation`, as containerd embeds it) to a plugin over ttrpc: no plugin, a no-op plugin subscribed to the same events as nri-memqos (what any external plugin costs), the same plugin returning constant adjustments (the floor, below) and nri-memqos on a fake cgroup v2 tree with its state directory on tmpfs.")
	} else {
		w("Container events round trip through NRI's real runtime side (`pkg/adaptation`, as containerd embeds it) to a plugin over ttrpc: no plugin, a no-op plugin subscribed to the same events as nri-memqos (the floor any external plugin costs), and nri-memqos on a fake cgroup v2 tree with its state directory on tmpfs.")
	}
	w("Each setup is filled once (untimed) to N live containers, then churns: every step creates a container (CreateContainer timed; PostCreate and Start untimed), resizes the oldest live container (UpdateContainer timed, PostUpdate untimed), stops and removes it (StopContainer and RemoveContainer timed each), so N containers stay alive (up to N+%d while %d callers are mid-step).", h.Concurrency, h.Concurrency)
	w("%d steps per setup, round, N and mode, one caller or %d; the setups take turns in chunks; figures are medians over %d round(s), ratios are nri-memqos over the no-op plugin unless said otherwise.", h.Steps, h.Concurrency, h.Rounds)
	var cut []string
	for _, r := range h.Results {
		if r.Truncated && r.Event == "CreateContainer" {
			cut = append(cut, fmt.Sprintf("%s at %d live, %s (%d creations)", r.Setup, r.Live, modeName(r.Mode), r.Count))
		}
	}
	if len(cut) > 0 {
		w("")
		w("Cut short by the phase budget (%v per setup, round, N and mode), so fewer events were measured: %s.", time.Duration(h.PhaseBudgetNs), strings.Join(cut, "; "))
	}
	w("")

	// Ratios against N.
	type ratioRow struct {
		name string
		get  func(int, string, string) (hookRatio, bool)
	}
	rows := []ratioRow{{"nri-memqos / no-op", h.ratio}}
	if h.hasFloor() {
		w("The floor is the no-op plugin run with `-adjust`: it does no work either, but returns from CreateContainer a constant adjustment shaped like nri-memqos' (the annotation `memqos.nri.io/resolved-request` and the unified keys `memory.min` and `memory.swap.max`) and from UpdateContainer one update with the same unified keys, so floor / no-op is what the runtime side's handling of an adjustment costs any plugin that adjusts something, and nri-memqos / floor what nri-memqos adds beyond it (Stop and Remove return nothing in both: their floor is noise).")
		w("")
		rows = append(rows, ratioRow{"floor / no-op", h.floor}, ratioRow{"nri-memqos / floor", h.overFloor})
		w("Ratios of the median latencies:")
	} else {
		w("nri-memqos over the no-op plugin:")
	}
	w("")
	w("| live containers | mode | ratio | Create p50 | Create p99 | Update p99 | Stop p99 | Remove p99 |")
	w("| --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, n := range h.Sizes {
		for _, mode := range hookModes {
			for _, rr := range rows {
				row := fmt.Sprintf("| %d | %s | %s |", n, modeName(mode), rr.name)
				for i, ev := range h.Events {
					r, _ := rr.get(n, mode, ev)
					if i == 0 {
						row += fmt.Sprintf(" %.3f |", r.P50)
					}
					row += fmt.Sprintf(" %.3f |", r.P99)
				}
				w("%s", row)
			}
		}
	}
	w("")
	w("Targets: p99 ≤ 1.05× the no-op plugin for each event, CreateContainer p50 ≤ 1.02×.")
	w("")
	for _, q := range []struct {
		name, file string
		p99        bool
		target     float64
	}{{"p99", "hook-p99-ratio.svg", true, 1.05}, {"p50", "hook-p50-ratio.svg", false, 1.02}} {
		var series []xySeries
		for e, ev := range h.Events {
			for m, mode := range hookModes {
				s := xySeries{Name: short(ev) + ", " + modeName(mode), Color: e, Dashed: m == 1}
				for _, n := range h.Sizes {
					if r, ok := h.ratio(n, mode, ev); ok {
						v := r.P50
						if q.p99 {
							v = r.P99
						}
						if v > 0 {
							s.X, s.Y = append(s.X, float64(n)), append(s.Y, v)
						}
					}
				}
				series = append(series, s)
			}
		}
		title := fmt.Sprintf("%s nri-memqos / no-op plugin", q.name)
		refs := []xySeries{{Name: fmt.Sprintf("target %.2f", q.target), X: []float64{float64(h.Sizes[0]), float64(h.Sizes[len(h.Sizes)-1])}, Y: []float64{q.target, q.target}}}
		if err := xyChart(filepath.Join(out, q.file), title, "live containers", "ratio", series, refs); err != nil {
			return nil, err
		}
		w("![%s](%s)", title, q.file)
		w("")
	}

	// Memory and state writes.
	mq, hasMq := h.rss("nri-memqos")
	noop, _ := h.rss("noop")
	w("| live containers | nri-memqos RSS | nri-memqos RSS after the fill, before scraping its metrics | no-op plugin RSS | nri-memqos state bytes written per event |")
	w("| --- | --- | --- | --- | --- |")
	w("| 0 (start) | %.1f MiB | | %.1f MiB | |", kib(mq.StartKiB), kib(noop.StartKiB))
	var rssSeries []xySeries
	for i, r := range []hookRSS{mq, noop} {
		name := "nri-memqos"
		if i == 1 {
			name = "no-op plugin"
		}
		s := xySeries{Name: name, Color: i}
		for _, a := range r.At {
			s.X, s.Y = append(s.X, float64(a.Live)), append(s.Y, kib(a.PeakKiB))
		}
		rssSeries = append(rssSeries, s)
	}
	for _, n := range h.Sizes {
		a, _ := mq.reading(n)
		b, _ := noop.at(n)
		bpe := "not measured"
		for _, p := range h.State.PerN {
			if p.Live == n && p.BytesPerEvent >= 0 {
				bpe = fmt.Sprintf("%.0f B", p.BytesPerEvent)
			}
		}
		w("| %d | %.1f MiB | %.1f MiB | %.1f MiB | %s |", n, kib(a.PeakKiB), kib(a.AfterFillKiB), kib(b), bpe)
	}
	w("| 0 (all removed, 2 s later) | %.1f MiB (%+.1f%% of start) | | %.1f MiB (%+.1f%%) | |", kib(mq.SettledKiB), mq.ReturnedPct, kib(noop.SettledKiB), noop.ReturnedPct)
	w("")
	w("RSS is VmRSS, the largest reading at each N (after the fill and after each churn chunk); it includes what the scrapes of nri-memqos' /metrics cost (two per churn phase, for the state counter below: they gather its per-container series), which the reading right after the fill does not. Targets: nri-memqos ≤ 16 MiB with 1 000 containers, ≤ 24 MiB with 10 000 (the largest reading), within 10%% of its start after all were removed.")
	if mq.StartFileKiB > 0 && noop.StartFileKiB > 0 {
		w("")
		w("Of the RSS at the start, the binary's own pages (RssFile, file-backed: a Go binary's text and read-only data are nearly all touched at start-up) are %.1f MiB for nri-memqos and %.1f MiB for the no-op plugin; at the end %.1f and %.1f MiB. The rest is anonymous: the Go heap and the runtime's own memory.",
			kib(mq.StartFileKiB), kib(noop.StartFileKiB), kib(mq.SettledFileKiB), kib(noop.SettledFileKiB))
	}
	if h.State.Available {
		w("State bytes are the increase of `%s` over all churn phases at that N (journal appends and compactions) over the NRI container events relayed to the plugin meanwhile (7 per step); target: O(1) in N.", h.State.Counter)
	} else {
		w("State bytes per event are not measured: the plugin did not expose `%s`.", h.State.Counter)
	}
	w("")
	targetMarks := xySeries{Name: "target", Color: 3, PointsOnly: true}
	for _, t := range []struct {
		n   int
		mib float64
	}{{1000, 16}, {10000, 24}} {
		for _, n := range h.Sizes {
			if n == t.n {
				targetMarks.X, targetMarks.Y = append(targetMarks.X, float64(n)), append(targetMarks.Y, t.mib)
			}
		}
	}
	if len(targetMarks.X) > 0 {
		rssSeries = append(rssSeries, targetMarks)
	}
	if hasMq {
		if err := xyChart(filepath.Join(out, "hook-rss.svg"), "Plugin RSS", "live containers", "MiB", rssSeries, nil); err != nil {
			return nil, err
		}
		w("![Plugin RSS](hook-rss.svg)")
		w("")
	}

	// Per N; the floor's columns only when it was measured.
	setups := hookSetups
	if !h.hasFloor() {
		setups = slices.DeleteFunc(slices.Clone(setups), func(s string) bool { return s == "noop-adjust" })
	}
	for _, n := range h.Sizes {
		w("### %d live containers", n)
		w("")
		head, rule := "| event | mode |", "| --- | --- |"
		for _, setup := range setups {
			head += fmt.Sprintf(" %s p50 | %s p99 |", setupNames[setup], setupNames[setup])
			rule += " --- | --- |"
		}
		w("%s ratio p50 | ratio p99 |", head)
		w("%s --- | --- |", rule)
		for _, mode := range hookModes {
			for _, ev := range h.Events {
				row := fmt.Sprintf("| %s | %s |", short(ev), modeName(mode))
				for _, setup := range setups {
					r, _ := h.result(n, mode, setup, ev)
					row += fmt.Sprintf(" %s | %s |", us(r.P50Ns), us(r.P99Ns))
				}
				rt, _ := h.ratio(n, mode, ev)
				w("%s %.3f | %.3f |", row, rt.P50, rt.P99)
			}
		}
		w("")
	}

	// Targets.
	met := 0
	for _, t := range h.Targets {
		if t.Status == "met" {
			met++
		}
	}
	w("### Targets: %d of %d met", met, len(h.Targets))
	w("")
	for _, t := range h.Targets {
		switch t.Status {
		case "met":
			w("- met: %s: %s (target ≤ %s)", t.Name, value(t.Value, t.Unit), value(t.Limit, t.Unit))
		case "missed":
			w("- **missed**: %s: %s (target ≤ %s)", t.Name, value(t.Value, t.Unit), value(t.Limit, t.Unit))
		default:
			w("- %s: %s (target ≤ %s)", t.Status, t.Name, value(t.Limit, t.Unit))
		}
	}
	w("")
	for _, setup := range slices.Sorted(maps.Keys(h.Reconnects)) {
		if n := h.Reconnects[setup]; n > 0 {
			w("The runtime dropped %s %d time(s) during this run: its numbers after that are not a plugin's.", setup, n)
			w("")
		}
	}

	var headlines []string
	for _, n := range h.Sizes {
		s, _ := h.ratio(n, "sequential", "CreateContainer")
		c, _ := h.ratio(n, "concurrent-64", "CreateContainer")
		headlines = append(headlines, fmt.Sprintf("hook CreateContainer p99 nri-memqos/noop at %d live: sequential %.3f, 64 concurrent %.3f (target <= 1.05)", n, s.P99, c.P99))
		if h.hasFloor() {
			fs, _ := h.floor(n, "sequential", "CreateContainer")
			fc, _ := h.floor(n, "concurrent-64", "CreateContainer")
			xs, _ := h.overFloor(n, "sequential", "CreateContainer")
			xc, _ := h.overFloor(n, "concurrent-64", "CreateContainer")
			headlines = append(headlines, fmt.Sprintf("hook CreateContainer p99 at %d live: floor (noop-adjust/noop) sequential %.3f, 64 concurrent %.3f; nri-memqos over the floor (nri-memqos/noop-adjust) sequential %.3f, 64 concurrent %.3f", n, fs.P99, fc.P99, xs.P99, xc.P99))
		}
	}
	var rss []string
	for _, n := range h.Sizes {
		if v, ok := mq.at(n); ok {
			rss = append(rss, fmt.Sprintf("%d live %.1f MiB", n, kib(v)))
		}
	}
	headlines = append(headlines,
		fmt.Sprintf("plugin RSS: %s; after removal %+.1f%% of start (targets 16 MiB at 1000, 24 MiB at 10000, within 10%%)", strings.Join(rss, ", "), mq.ReturnedPct))
	if h.State.Available {
		var bpe []string
		for _, p := range h.State.PerN {
			bpe = append(bpe, fmt.Sprintf("%d live %.0f", p.Live, p.BytesPerEvent))
		}
		headlines = append(headlines, "state bytes written per event: "+strings.Join(bpe, ", ")+" (target O(1) in N)")
	}
	headlines = append(headlines, fmt.Sprintf("hook targets met: %d of %d", met, len(h.Targets)))
	return headlines, nil
}

func value(v float64, unit string) string {
	switch unit {
	case "ratio":
		return fmt.Sprintf("%.3f×", v)
	case "%":
		return fmt.Sprintf("%+.1f%%", v)
	default:
		return fmt.Sprintf("%.1f %s", v, unit)
	}
}
