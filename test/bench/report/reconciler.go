package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// benchLine is one result line of `go test -bench`.
var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// readBench reads `go test -bench -count N` output into
// name -> unit -> values (one per count).
func readBench(path string) (map[string]map[string][]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]map[string][]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		fields := strings.Fields(m[2])
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			if out[m[1]] == nil {
				out[m[1]] = map[string][]float64{}
			}
			out[m[1]][fields[i+1]] = append(out[m[1]][fields[i+1]], v)
		}
	}
	return out, sc.Err()
}

// median of the values (benchstat's center).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// reconcilerRow is one container count of the reconciler benchmark.
type reconcilerRow struct {
	Containers   int
	TickNs       float64 // median ns per steady-state tick
	PerContainer float64 // ns per container
	CorePct      float64 // % of one core at a 1 s interval
	RawNs        float64 // median ns of the raw baseline
	RatioToRaw   float64
	DriftTickNs  float64 // a tick with the drift check
	Runs         int
}

func reconcilerRows(b map[string]map[string][]float64) []reconcilerRow {
	var rows []reconcilerRow
	for name, units := range b {
		n, ok := strings.CutPrefix(name, "Tick/containers=")
		if !ok {
			continue
		}
		c, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		r := reconcilerRow{Containers: c, TickNs: median(units["ns/op"]), Runs: len(units["ns/op"])}
		r.PerContainer = r.TickNs / float64(c)
		r.CorePct = r.TickNs / 1e9 * 100
		if raw := b["RawRead/containers="+n]; raw != nil {
			r.RawNs = median(raw["ns/op"])
			if r.RawNs > 0 {
				r.RatioToRaw = r.TickNs / r.RawNs
			}
		}
		if d := b["TickDrift/containers="+n]; d != nil {
			r.DriftTickNs = median(d["ns/op"])
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Containers < rows[j].Containers })
	return rows
}

func ms(ns float64) string { return fmt.Sprintf("%.2f ms", ns/1e6) }
