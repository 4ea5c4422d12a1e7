package main

import (
	"fmt"
	"strings"
)

// ociSchema is the format of ocihook.json this report reads.
const ociSchema = "nri-memqos/ocihook-bench/v1"

// The parts of ocihook.json (test/bench/ocihook's Report) this report
// renders; the field documentation is there.

type ociStats struct {
	Count int   `json:"count"`
	P50Ns int64 `json:"p50_ns"`
	P90Ns int64 `json:"p90_ns"`
	P99Ns int64 `json:"p99_ns"`
	MaxNs int64 `json:"max_ns"`
	// CPUP50Ns is the median CPU time of the process (user and kernel).
	CPUP50Ns int64 `json:"cpu_p50_ns"`
}

type ociRatio struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
}

type ociBinary struct {
	Name         string `json:"name"`
	Package      string `json:"package"`
	SizeBytes    int64  `json:"size_bytes"`
	InitPackages int    `json:"init_packages"`
	InitClockNs  int64  `json:"init_clock_ns"`
	InitDoneNs   int64  `json:"init_done_ns"`
}

type ociCheck struct {
	Live             int   `json:"live"`
	WantMinBytes     int64 `json:"want_min_bytes"`
	KubepodsMinBytes int64 `json:"kubepods_min_bytes"`
	StateBytes       int64 `json:"state_bytes"`
	DrainedMinBytes  int64 `json:"drained_kubepods_min_bytes"`
	OK               bool  `json:"ok"`
}

type ociVariant struct {
	Name         string    `json:"name"`
	Hook         ociBinary `json:"hook"`
	Baseline     ociBinary `json:"baseline"`
	Create       ociStats  `json:"create"`
	Stop         ociStats  `json:"stop"`
	BaselineRuns ociStats  `json:"baseline_runs"`
	CreateRatio  ociRatio  `json:"create_ratio"`
	StopRatio    ociRatio  `json:"stop_ratio"`
	TargetMet    bool      `json:"target_met"`
	Check        ociCheck  `json:"check"`
}

type ociReport struct {
	Schema          string `json:"schema"`
	Kernel          string `json:"kernel"`
	NumCPU          int    `json:"num_cpu"`
	Runs            int    `json:"runs"`
	Live            int    `json:"live"`
	ConfigJSONBytes int    `json:"config_json_bytes"`
	StateJSONBytes  int    `json:"state_json_bytes"`
	TargetP99Ns     int64  `json:"target_p99_ns"`
	// CPU is nil in files without machine_cpu.
	CPU *struct {
		BusyPct   float64 `json:"busy_pct"`
		OursPct   float64 `json:"ours_pct"`
		OthersPct float64 `json:"others_pct"`
		StealPct  float64 `json:"steal_pct"`
	} `json:"machine_cpu"`
	Variants []ociVariant `json:"variants"`
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func msNs(ns int64) string { return fmt.Sprintf("%.2f ms", float64(ns)/1e6) }

// ociStatus is a p99 against the target: "met" or "**missed**", with the
// figures.
func (r *ociReport) ociStatus(p99 int64) string {
	if p99 < r.TargetP99Ns {
		return fmt.Sprintf("met (%s < %s)", msNs(p99), msNs(r.TargetP99Ns))
	}
	return fmt.Sprintf("**missed** (%s ≥ %s)", msNs(p99), msNs(r.TargetP99Ns))
}

// renderOCIHook writes section 5 of the report and returns its headline and
// the bullets of the targets it missed, for "Where a target is missed".
func renderOCIHook(w func(string, ...any), r *ociReport) (headlines, missed []string, err error) {
	if r.Schema != ociSchema {
		return nil, nil, fmt.Errorf("schema %q: want %s (run TestOCIHookCost again)", r.Schema, ociSchema)
	}
	if len(r.Variants) == 0 {
		return nil, nil, fmt.Errorf("no variants: the benchmark measured no hook")
	}
	if r.TargetP99Ns <= 0 {
		return nil, nil, fmt.Errorf("no target_p99_ns")
	}
	w("## 5. OCI hook cost")
	w("")
	w("The OCI hook (`nri-memqos-oci-hook`, and the same code as `nri-memqos oci-hook` in the full plugin binary) runs on a container's start path at createRuntime and again at poststop. Wall time of the hook process from fork+exec to its exit, as a runtime waits for it, with the OCI state on stdin; %d runs per hook and event, against a hook that does nothing in the same binary size class (`nophook` links the slim hook's packages and code, `nopfull` every package the plugin links): it reads its stdin to EOF and exits, so it costs what exec, the Go runtime's start and the package initializers cost, and a hook's ratio to it is what its work adds.", r.Runs)
	w("Each hook keeps %d live latency-sensitive containers on its own fake cgroup v2 tree and state directory on tmpfs, laid out as CRI-O lays out a node (config.json of %d B with the pod's annotations, the pod sandbox's config.json beside it, a %d B state on stdin); every create is a new container in a fresh cgroup, every stop the oldest live one. All runs take turns in shuffled rounds. Percentiles are nearest-rank; %d CPUs, kernel %s.", r.Live, r.ConfigJSONBytes, r.StateJSONBytes, r.NumCPU, r.Kernel)
	w("")
	w("| binary | size | run | p50 | p90 | p99 | max | CPU p50 | p50 / no-op | p99 / no-op | target: p99 < %s |", msNs(r.TargetP99Ns))
	w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, v := range r.Variants {
		for _, ev := range []struct {
			name string
			s    ociStats
			rt   ociRatio
		}{{"create", v.Create, v.CreateRatio}, {"stop", v.Stop, v.StopRatio}} {
			w("| `%s` | %s | %s | %s | %s | %s | %s | %s | %.2f | %.2f | %s |", v.Hook.Name, mib(v.Hook.SizeBytes), ev.name,
				msNs(ev.s.P50Ns), msNs(ev.s.P90Ns), msNs(ev.s.P99Ns), msNs(ev.s.MaxNs), msNs(ev.s.CPUP50Ns), ev.rt.P50, ev.rt.P99, r.ociStatus(ev.s.P99Ns))
		}
		b := v.BaselineRuns
		floor := "floor under the target"
		if b.P99Ns >= r.TargetP99Ns {
			floor = "floor over the target"
		}
		w("| `%s` (no-op) | %s | reads stdin, exits | %s | %s | %s | %s | %s | 1 | 1 | %s |", v.Baseline.Name, mib(v.Baseline.SizeBytes),
			msNs(b.P50Ns), msNs(b.P90Ns), msNs(b.P99Ns), msNs(b.MaxNs), msNs(b.CPUP50Ns), floor)
	}
	w("")
	w("CPU p50 is the median CPU time of the process itself (user and kernel, all its threads, exec included); where it is close to the wall time, the process was working, not waiting.")
	w("")
	w("Package initializers (GODEBUG=inittrace=1, medians):")
	w("")
	w("| binary | packages initialized | their clock time | last one done, from the process's start |")
	w("| --- | --- | --- | --- |")
	for _, v := range r.Variants {
		for _, b := range []ociBinary{v.Hook, v.Baseline} {
			w("| `%s` | %d | %s | %s |", b.Name, b.InitPackages, msNs(b.InitClockNs), msNs(b.InitDoneNs))
		}
	}
	w("")
	var checks []string
	allOK := true
	for _, v := range r.Variants {
		c := v.Check
		allOK = allOK && c.OK
		drained := "0 after all were stopped"
		if c.DrainedMinBytes != 0 {
			drained = fmt.Sprintf("still %s after all were stopped", mib(c.DrainedMinBytes))
		}
		checks = append(checks, fmt.Sprintf("`%s`: kubepods memory.min %s with the %d live containers' requests summing to %s, %s; state directory %.0f KiB",
			v.Hook.Name, mib(c.KubepodsMinBytes), c.Live, mib(c.WantMinBytes), drained, float64(c.StateBytes)/1024))
	}
	if allOK {
		w("Checked after the runs (the hooks did their work): %s.", strings.Join(checks, "; "))
	} else {
		w("**The check after the runs failed** (the hooks did not all do their work, so their times are not a hook's): %s.", strings.Join(checks, "; "))
	}
	w("")
	if c := r.CPU; c != nil {
		w("During the rounds the machine was %.0f%% busy: %.0f%% this benchmark and its hooks, %.0f%% other work (steal %.1f%%). Other work on a shared machine shows in the p99 and max columns more than in the p50.", c.BusyPct, c.OursPct, c.OthersPct, c.StealPct)
		w("")
	}

	var parts []string
	for _, v := range r.Variants {
		status := "met"
		if !v.TargetMet {
			status = "missed"
		}
		parts = append(parts, fmt.Sprintf("%s create %s / stop %s (no-op %s), %s", v.Hook.Name, msNs(v.Create.P99Ns), msNs(v.Stop.P99Ns), msNs(v.BaselineRuns.P99Ns), status))
		if v.TargetMet {
			continue
		}
		nop := v.BaselineRuns
		work := v.Create.P50Ns - nop.P50Ns
		floor := "within"
		if nop.P99Ns >= r.TargetP99Ns {
			floor = "already beyond"
		}
		missed = append(missed, fmt.Sprintf("**OCI hook `%s`** (p99 create %s, stop %s; target < %s). The do-nothing binary of its size class (`%s`, %s) is %s the target itself: p50 %s, p99 %s, for exec, the Go runtime's start and %d package initializers (%s of them). The hook's work adds %s at the p50 of a create (%.2f× the no-op; CPU p50 %s against %s): reading its configuration, the container's config.json and the state of the %d live containers, then writing the cgroup files and the state.",
			v.Hook.Name, msNs(v.Create.P99Ns), msNs(v.Stop.P99Ns), msNs(r.TargetP99Ns), v.Baseline.Name, mib(v.Baseline.SizeBytes), floor,
			msNs(nop.P50Ns), msNs(nop.P99Ns), v.Baseline.InitPackages, msNs(v.Baseline.InitClockNs), msNs(work), v.CreateRatio.P50, msNs(v.Create.CPUP50Ns), msNs(nop.CPUP50Ns), r.Live))
	}
	headlines = append(headlines, fmt.Sprintf("OCI hook p99 with %d live containers: %s (target < %s)", r.Live, strings.Join(parts, "; "), msNs(r.TargetP99Ns)))
	return headlines, missed, nil
}
