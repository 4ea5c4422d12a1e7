// Command report turns the outputs of `make bench` into docs/benchmarks.md
// and its charts (SVG for the hook cost, PNG for the rest), and prints each
// headline ratio as its last lines.
//
// Inputs (in -in): reconciler.txt (`go test -bench` output of
// pkg/reconcile), events.txt (`go test -bench` output of pkg/node's
// BenchmarkCreate and pkg/metrics' BenchmarkScrape), hook.json
// (test/bench/hook), protection.json
// (test/e2e TestBenchProtection), ocihook.json (test/bench/ocihook
// TestOCIHookCost). An input that is missing leaves its
// section out of the report with a note (and a warning on stderr), so a
// part of the benchmark run alone can be rendered; one that is there but
// cannot be read or has no results fails the report, and so does a run with
// none of them.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

type bgReader struct {
	Name          string  `json:"name"`
	Class         string  `json:"class"`
	Ops           int     `json:"ops"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	MaxHits       int64   `json:"memory_max_hits"`
	PressureMs    float64 `json:"pressure_some_ms"`
	PgscanDirect  int64   `json:"pgscan_direct"`
	PgstealDirect int64   `json:"pgsteal_direct"`
	ReclaimedMiB  float64 `json:"plugin_reclaimed_mib"`
}

func main() {
	in := flag.String("in", "_output/bench", "directory with reconciler.txt, events.txt, hook.json, protection.json and ocihook.json")
	out := flag.String("out", "docs", "directory for benchmarks.md and the charts")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintf(os.Stderr, "report: %v\n", err)
		os.Exit(1)
	}
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func run(in, out string) error {
	var missing []string
	// optional reports whether err is a missing input, noting it.
	optional := func(name string, err error) (bool, error) {
		if errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, name)
			fmt.Fprintf(os.Stderr, "report: %s: not there, its section is left out\n", filepath.Join(in, name))
			return true, nil
		}
		return false, err
	}
	var rec []reconcilerRow
	bench, err := readBench(filepath.Join(in, "reconciler.txt"))
	recMissing, err := optional("reconciler.txt", err)
	if err != nil {
		return err
	}
	if !recMissing {
		if rec = reconcilerRows(bench); len(rec) == 0 {
			return fmt.Errorf("%s has no BenchmarkTick results", filepath.Join(in, "reconciler.txt"))
		}
	}
	events, err := readBench(filepath.Join(in, "events.txt"))
	eventsMissing, err := optional("events.txt", err)
	if err != nil {
		return err
	}
	var hook hookReport
	hookMissing, err := optional("hook.json", readJSON(filepath.Join(in, "hook.json"), &hook))
	if err != nil {
		return err
	}
	var prot protReport
	protMissing, err := optional("protection.json", readJSON(filepath.Join(in, "protection.json"), &prot))
	if err != nil {
		return err
	}
	var oci ociReport
	ociMissing, err := optional("ocihook.json", readJSON(filepath.Join(in, "ocihook.json"), &oci))
	if err != nil {
		return err
	}
	if recMissing && hookMissing && protMissing && ociMissing {
		return fmt.Errorf("%s has none of reconciler.txt, hook.json, protection.json and ocihook.json: run make bench", in)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}

	var md strings.Builder
	var headlines []string
	w := func(format string, args ...any) { fmt.Fprintf(&md, format+"\n", args...) }
	host, _ := os.Hostname()
	w("# nri-memqos benchmarks")
	w("")
	w("Measured %s on %s (%d cores, %s, Go %s). Reproduce with `make bench` (about 30 minutes on 2 cores; as root).",
		time.Now().UTC().Format("2006-01-02"), host, runtime.NumCPU(), machineMemory(), strings.TrimPrefix(runtime.Version(), "go"))
	w("Every comparison is measured side by side in one run; ratios are the headline, since the machine is shared.")
	if len(missing) > 0 {
		w("")
		w("Not measured in this run (no %s in `%s`): the sections that need them are left out.", strings.Join(missing, ", "), in)
	}
	w("")

	// Hook cost.
	if !hookMissing {
		h, err := renderHook(w, &hook, out)
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(in, "hook.json"), err)
		}
		headlines = append(headlines, h...)
	}
	if !eventsMissing {
		headlines = append(headlines, renderEvents(w, events)...)
	}

	if !recMissing {
		// Reconciler cost.
		w("## 2. Reconciler cost")
		w("")
		w("A synthetic cgroup v2 tree in tmpfs; a steady-state tick (no reclaim due) against a raw baseline that only opens and reads the same files; medians of %d runs.", rec[0].Runs)
		w("")
		w("| containers | tick | per container | share of one core at 1 s | raw baseline | ratio to raw | tick with drift check |")
		w("| --- | --- | --- | --- | --- | --- | --- |")
		var xs []float64
		tick, raw := barGroup{Name: "reconciler tick"}, barGroup{Name: "raw file reads"}
		for _, r := range rec {
			w("| %d | %s | %.0f ns | %.2f%% | %s | %.2f | %s |", r.Containers, ms(r.TickNs), r.PerContainer, r.CorePct, ms(r.RawNs), r.RatioToRaw, ms(r.DriftTickNs))
			xs = append(xs, float64(r.Containers))
			tick.Values = append(tick.Values, r.TickNs/1e6)
			raw.Values = append(raw.Values, r.RawNs/1e6)
			if r.Containers == 1000 {
				headlines = append(headlines,
					fmt.Sprintf("reconciler at 1000 containers, 1 s interval: %.2f%% of one core (target <= 1%%)", r.CorePct),
					fmt.Sprintf("reconciler / raw file-reading baseline at 1000 containers: %.2f (target <= 1.5)", r.RatioToRaw))
			}
		}
		w("")
		if err := lineChart(filepath.Join(out, "reconciler.png"), "Reconciler tick", "containers", "ms per tick", xs, []barGroup{tick, raw}); err != nil {
			return err
		}
		w("![Reconciler tick](reconciler.png)")
		w("")

	}

	var protMissed []protTarget
	if !protMissing {
		h, m, err := renderProtection(w, &prot, out)
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(in, "protection.json"), err)
		}
		headlines, protMissed = append(headlines, h...), m
	}

	var ociMissed []string
	if ociMissing {
		w("## 5. OCI hook cost")
		w("")
		w("Not run: no ocihook.json in `%s` (`BENCH_OUT=DIR go test -count=1 -run '^TestOCIHookCost$' -v ./test/bench/ocihook/` writes it).", in)
		w("")
	} else {
		h, m, err := renderOCIHook(w, &oci)
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(in, "ocihook.json"), err)
		}
		headlines, ociMissed = append(headlines, h...), m
	}

	w("## Where a target is missed, and why")
	w("")
	if !hookMissing {
		var lat, mem, other []string
		worst := hookTarget{}
		for _, t := range hook.missed() {
			switch {
			case t.Unit == "ratio" && strings.Contains(t.Name, " / noop"):
				lat = append(lat, t.Name)
				if t.Value > worst.Value {
					worst = t
				}
			case strings.Contains(t.Name, "RSS"):
				mem = append(mem, fmt.Sprintf("%s %s, target ≤ %s", t.Name, value(t.Value, t.Unit), value(t.Limit, t.Unit)))
			default:
				other = append(other, fmt.Sprintf("%s %s, target ≤ %s", t.Name, value(t.Value, t.Unit), value(t.Limit, t.Unit)))
			}
		}
		if len(lat) > 0 {
			floor := ""
			if hook.hasFloor() {
				var top float64
				for _, r := range hook.FloorRatios {
					if r.Event == "CreateContainer" {
						top = max(top, r.P99)
					}
				}
				floor = fmt.Sprintf(" Part of it is the floor of any plugin that adjusts something (section 1): the runtime side's handling of the adjustment, which a plugin returning a constant one without doing any work already pays (CreateContainer p99 up to %.2f× the no-op plugin in this run).", top)
			}
			w("- **Event cost** (%d latency targets missed; the worst: %s, %.2f×). The no-op plugin does no work: the ratio is what nri-memqos does on an event beyond the round trip.%s NRI hands a plugin one event at a time, so the 64-concurrent figures queue behind the sequential cost.", len(lat), worst.Name, worst.Value, floor)
		}
		if len(mem) > 0 {
			noop, _ := hook.rss("noop")
			mq, _ := hook.rss("nri-memqos")
			binary := ""
			if mq.StartFileKiB > 0 {
				binary = fmt.Sprintf(" %.1f MiB of it are the binary's own pages, resident from the start (the no-op plugin's: %.1f MiB).", kib(mq.StartFileKiB), kib(noop.StartFileKiB))
			}
			w("- **Memory** (%s).%s Per container the plugin keeps its decision, the pod and container facts, a resolved request, what it set for cleanup and the reconciler's state (the core's heap per container is in the table of section 1); the Go collector lets the heap grow to 1.5 times what is live (GOGC=50) before it collects; and the Go runtime keeps freed heap for a while: the no-op plugin's RSS did not fall back to its start either (%+.1f%%).", strings.Join(mem, "; "), binary, noop.ReturnedPct)
		}
		if len(other) > 0 {
			w("- **State writes** (%s): the bytes the plugin writes to its state directory per event grow with the number of containers.", strings.Join(other, "; "))
		}
	}
	for _, t := range protMissed {
		w("- **%s** (%s). %s", t.Name, t.Detail, t.Reason)
	}
	for _, m := range ociMissed {
		w("- %s", m)
	}
	if !protMissing {
		w("- **pgscan_direct** is no measure on Linux 6.1: the reclaim the plugin asks for through memory.reclaim is counted as direct reclaim too. The reader's own stalls (memory.pressure) and its hits of memory.max are the measure, and both fall to (near) zero with watermarks.")
	}
	w("")
	w("## Headlines")
	w("")
	for _, h := range headlines {
		w("- %s", h)
	}
	w("")
	w("Raw inputs of this report: `%s` after `make bench`.", in)
	if err := os.WriteFile(filepath.Join(out, "benchmarks.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s\n", filepath.Join(out, "benchmarks.md"))
	for _, h := range headlines {
		fmt.Println(h)
	}
	return nil
}

func us(ns int64) string  { return fmt.Sprintf("%.1f µs", float64(ns)/1e3) }
func kib(k int64) float64 { return float64(k) / 1024 }

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func machineMemory() string {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "unknown memory"
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				return fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
			}
		}
	}
	return "unknown memory"
}
