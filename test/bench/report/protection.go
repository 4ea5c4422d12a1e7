package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// protReport is protection.json (schema nri-memqos/protection-bench/v2).
type protReport struct {
	Schema      string          `json:"schema"`
	Kernel      string          `json:"kernel"`
	MemTotalMiB float64         `json:"mem_total_mib"`
	Notes       string          `json:"notes"`
	Scenarios   []protScenario  `json:"scenarios"`
	Background  *protBackground `json:"background_reclaim"`
}

type protScenario struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Setup       struct {
		Workload      string  `json:"workload"`
		BEAnonMiB     float64 `json:"be_anon_mib"`
		LSRequestMiB  float64 `json:"ls_request_mib"`
		WorkingSetMiB float64 `json:"ls_working_set_mib"`
		GetsPerBurst  int     `json:"gets_per_burst"`
	} `json:"setup"`
	Runs    []protRun    `json:"runs"`
	Targets []protTarget `json:"targets"`
}

type protTarget struct {
	Name   string `json:"name"`
	Met    bool   `json:"met"`
	Detail string `json:"detail"`
	// Reason is the report's: why it was missed, from the runs.
	Reason string `json:"-"`
}

type protRun struct {
	Name           string    `json:"name"`
	Description    string    `json:"description"`
	Failed         bool      `json:"failed"`
	Bursts         int       `json:"bursts"`
	P50Ms          float64   `json:"p50_ms"`
	P90Ms          float64   `json:"p90_ms"`
	P99Ms          float64   `json:"p99_ms"`
	ThroughputMiBs float64   `json:"throughput_mib_s"`
	GetP50Us       float64   `json:"get_p50_us"`
	GetP99Us       float64   `json:"get_p99_us"`
	GetP999Us      float64   `json:"get_p999_us"`
	GetsPerS       float64   `json:"gets_per_s"`
	CacheEndMiB    float64   `json:"ls_cache_end_mib"`
	Refaults       int64     `json:"ls_workingset_refault_file"`
	PressureMs     float64   `json:"ls_pressure_some_ms"`
	TierThrottles  float64   `json:"tier_throttles"`
	CacheStartMiB  float64   `json:"ls_cache_start_mib"`
	CPUSomeMs      float64   `json:"ls_cpu_pressure_some_ms"`
	Gets           int       `json:"gets"`
	BurstMs        []float64 `json:"burst_ms"`
	Trace          []struct {
		T        float64 `json:"t"`
		Refaults int64   `json:"ls_refault_file"`
	} `json:"trace"`
	BE *struct {
		Finished   bool    `json:"finished"`
		State      string  `json:"state"`
		OOMKills   int64   `json:"oom_kills"`
		StreamMiBs float64 `json:"stream_mib_s"`
	} `json:"be"`
}

type protBackground struct {
	Readers []bgReader   `json:"readers"`
	Note    string       `json:"note"`
	Targets []protTarget `json:"targets"`
}

// renderProtection writes sections 3 and 4 and returns the headlines and
// the targets missed.
func renderProtection(w func(string, ...any), prot *protReport, out string) (headlines []string, missed []protTarget, err error) {
	if prot.Schema != "nri-memqos/protection-bench/v2" {
		return nil, nil, fmt.Errorf("schema %q: want nri-memqos/protection-bench/v2 (run make bench again)", prot.Schema)
	}
	w("## 3. Protection of a latency-sensitive pod")
	w("")
	w("cgroup v2 VM (%s, %.0f MiB, qemu TCG), real containerd + runc; a latency-sensitive (LS) pod next to a best-effort (BE) pod that holds anonymous memory and streams a 1 GiB file. %s.", prot.Kernel, prot.MemTotalMiB, capitalized(prot.Notes))
	w("")
	for i, sc := range prot.Scenarios {
		bbolt := sc.Setup.Workload == "bbolt"
		w("### 3.%d %s", i+1, sc.Name)
		w("")
		w("%s; BE holds %.0f MiB anonymous.", sc.Description, sc.Setup.BEAnonMiB)
		w("")
		if bbolt {
			w("| run | read p50 | read p99 | read p99.9 | reads/s in bursts | burst p50 | file refaults | memory stall | BE stream | BE | tier steps |")
			w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
		} else {
			w("| run | burst p50 | burst p90 | burst p99 | throughput | page cache kept | file refaults | memory stall | BE stream | BE | tier steps |")
			w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
		}
		var names []string
		g50, g99 := barGroup{Name: "p50"}, barGroup{Name: "p99"}
		for _, r := range sc.Runs {
			if r.Failed {
				w("| %s: %s | failed | | | | | | | | | |", r.Name, r.Description)
				continue
			}
			stream, be := "–", "–"
			if r.BE != nil {
				stream, be = fmt.Sprintf("%.0f MiB/s", r.BE.StreamMiBs), r.BE.State
				if r.BE.Finished {
					be = "finished"
				}
				if r.BE.OOMKills > 0 {
					be += fmt.Sprintf(", %d OOM kills", r.BE.OOMKills)
				}
			}
			names = append(names, r.Name)
			if bbolt {
				g50.Values, g99.Values = append(g50.Values, r.GetP50Us), append(g99.Values, r.GetP99Us)
				w("| %s: %s | %.1f µs | %.0f µs | %.0f µs | %.0f | %.0f ms | %d | %.0f ms | %s | %s | %.0f |", r.Name, r.Description,
					r.GetP50Us, r.GetP99Us, r.GetP999Us, r.GetsPerS, r.P50Ms, r.Refaults, r.PressureMs, stream, be, r.TierThrottles)
			} else {
				g50.Values, g99.Values = append(g50.Values, r.P50Ms), append(g99.Values, r.P99Ms)
				w("| %s: %s | %.0f ms | %.0f ms | %.0f ms | %.0f MiB/s | %.0f MiB | %d | %.0f ms | %s | %s | %.0f |", r.Name, r.Description,
					r.P50Ms, r.P90Ms, r.P99Ms, r.ThroughputMiBs, r.CacheEndMiB, r.Refaults, r.PressureMs, stream, be, r.TierThrottles)
			}
		}
		w("")
		chart := "protection-" + sc.Name + ".png"
		title, unit := "LS burst latency, "+sc.Name, "ms"
		if bbolt {
			title, unit = "LS bbolt point-read latency", "µs"
		}
		if len(names) > 0 {
			if err := barChart(filepath.Join(out, chart), title, unit, names, []barGroup{g50, g99}); err != nil {
				return nil, nil, err
			}
			w("![%s](%s)", title, chart)
			w("")
		}
		met := 0
		for _, t := range sc.Targets {
			if t.Met {
				met++
			} else {
				missed = append(missed, protTarget{Name: sc.Name + ": " + t.Name, Detail: t.Detail, Reason: protMissReason(sc, t.Name)})
			}
		}
		w("Targets: %d of %d met.", met, len(sc.Targets))
		w("")
		w("| target | met | measured |")
		w("| --- | --- | --- |")
		for _, t := range sc.Targets {
			w("| %s | %s | %s |", t.Name, yesNo(t.Met), t.Detail)
			if !strings.HasPrefix(t.Name, "BE finishes") {
				headlines = append(headlines, fmt.Sprintf("protection, %s: %s: %s (%s)", sc.Name, t.Name, t.Detail, metWord(t.Met)))
			}
		}
		w("")
	}

	if bg := prot.Background; bg != nil {
		w("## 4. Background reclaim near the limit")
		w("")
		w("A container reading files up to its limit, with and without the plugin's watermarks. %s", bg.Note)
		w("")
		w("| reader | ops | p50 | p99 | memory.max hits | memory stall | pgscan_direct | pgsteal_direct | plugin reclaimed |")
		w("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
		var with, without bgReader
		for _, r := range bg.Readers {
			w("| %s (%s) | %d | %.1f ms | %.1f ms | %d | %.0f ms | %d | %d | %.0f MiB |", r.Name, r.Class, r.Ops, r.P50Ms, r.P99Ms, r.MaxHits, r.PressureMs, r.PgscanDirect, r.PgstealDirect, r.ReclaimedMiB)
			if r.ReclaimedMiB > 0 {
				with = r
			} else {
				without = r
			}
		}
		w("")
		for _, t := range bg.Targets {
			if !t.Met {
				missed = append(missed, protTarget{Name: "background reclaim: " + t.Name, Detail: t.Detail, Reason: "pgscan_direct is no measure on Linux 6.1: see below."})
			}
		}
		if without.MaxHits > 0 {
			headlines = append(headlines,
				fmt.Sprintf("reader memory.max hits with watermarks / without: %.3f; pgscan_direct: %.3f (target <= 0.10; on Linux 6.1 it counts the plugin's memory.reclaim too)",
					float64(with.MaxHits)/float64(without.MaxHits), ratio(with.PgscanDirect, without.PgscanDirect)))
		}
	}
	return headlines, missed, nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

func metWord(b bool) string {
	if b {
		return "met"
	}
	return "missed"
}

// protMissReason is the measured reason for a missed protection target,
// from the scenario's runs: where the protected pod's refaults came from,
// and what the comparison allows.
func protMissReason(sc protScenario, target string) string {
	runs := map[string]protRun{}
	for _, r := range sc.Runs {
		runs[r.Name] = r
	}
	plug, alone, kube := runs["plugin"], runs["alone"], runs["kubelet"]
	bbolt := sc.Setup.Workload == "bbolt"
	var why []string
	if strings.Contains(target, "Kubernetes MemoryQoS") && alone.Bursts > 0 && kube.Bursts > 0 && plug.Bursts > 0 {
		a, k, p, unit := alone.P50Ms, kube.P50Ms, plug.P50Ms, "ms"
		if bbolt {
			a, k, p, unit = alone.GetP50Us, kube.GetP50Us, plug.GetP50Us, "µs"
		}
		if k/2 <= 1.1*a {
			why = append(why, fmt.Sprintf("Kubernetes' MemoryQoS is at %.2f× alone here (%.1f against %.1f %s): 2× better than it would be %.1f %s where the pod alone takes %.1f. Over alone, nri-memqos adds %.1f %s and Kubernetes' MemoryQoS %.1f",
				k/a, k, a, unit, k/2, unit, a, p-a, unit, k-a))
		}
		if bbolt {
			why = append(why, fmt.Sprintf("the burst as a whole (%d reads) takes %.0f ms with nri-memqos against %.0f ms with Kubernetes' MemoryQoS (%.2f× better), and read p99 %.0f against %.0f µs",
				sc.Setup.GetsPerBurst, plug.P50Ms, kube.P50Ms, kube.P50Ms/plug.P50Ms, plug.GetP99Us, kube.GetP99Us))
		}
	}
	if strings.Contains(target, "p99") && plug.Bursts > 0 {
		if bbolt && plug.Gets > 0 {
			miss := float64(plug.Refaults) / float64(plug.Gets)
			why = append(why, fmt.Sprintf("with nri-memqos %d of the %d reads found their page evicted (%.2f%%): fewer than the slowest 1%%, so the p99 read is a cache hit made slow by something else. The pod waited %.0f ms for a CPU in the window against %.0f ms alone: under TCG the best-effort pod's stream (emulated disk I/O) and reclaim take host CPU from the vCPU the reads run on",
				plug.Refaults, plug.Gets, 100*miss, plug.CPUSomeMs, alone.CPUSomeMs))
		} else if len(plug.BurstMs) > 0 {
			why = append(why, fmt.Sprintf("the p99 of %d bursts is the slowest, the first (%.0f ms); the others took %.0f ms at most",
				len(plug.BurstMs), plug.BurstMs[0], slices.Max(plug.BurstMs[1:])))
		}
	}
	if plug.Bursts > 0 && plug.Refaults > 0 && len(plug.Trace) > 0 {
		var first int64
		for _, s := range plug.Trace {
			if s.T <= 10 {
				first = s.Refaults
			}
		}
		if lost := sc.Setup.WorkingSetMiB - plug.CacheStartMiB; lost > 0.05*sc.Setup.WorkingSetMiB {
			why = append(why, fmt.Sprintf("with nri-memqos the latency-sensitive pod began the window with %.0f of its %.0f MiB working set (request %.0f MiB): it lost the rest while the best-effort pod allocated its %.0f MiB of anonymous memory before the window, faster than a reconciler that ticks once a second and throttles after a second of pressure can answer",
				plug.CacheStartMiB, sc.Setup.WorkingSetMiB, sc.Setup.LSRequestMiB, sc.Setup.BEAnonMiB))
		}
		why = append(why, fmt.Sprintf("%d of the window's %d refaults with nri-memqos came in its first 10 s, the rest after give-back steps (the per-second trace is in protection.json)",
			first, plug.Refaults))
	}
	if len(why) == 0 {
		return ""
	}
	return capitalized(strings.Join(why, "; ") + ".")
}

// capitalized is s with its first letter upper case.
func capitalized(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
