package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readOCIFixture reads testdata/ocihook.json: the slim hook meets the
// target, the full binary's create misses it and its no-op is over it.
func readOCIFixture(t *testing.T) ociReport {
	t.Helper()
	var r ociReport
	if err := readJSON(filepath.Join("testdata", "ocihook.json"), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// renderTo is the report's writer (run's w) into a string.
func renderTo() (func(string, ...any), *strings.Builder) {
	var sb strings.Builder
	return func(format string, args ...any) { fmt.Fprintf(&sb, format+"\n", args...) }, &sb
}

func wantLines(t *testing.T, text string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(text, l) {
			t.Errorf("missing %q in:\n%s", l, text)
		}
	}
}

func TestRenderOCIHook(t *testing.T) {
	r := readOCIFixture(t)
	w, md := renderTo()
	heads, missed, err := renderOCIHook(w, &r)
	if err != nil {
		t.Fatal(err)
	}
	text := md.String()
	wantLines(t, text,
		"## 5. OCI hook cost",
		"1000 runs per hook and event",
		"Each hook keeps 100 live latency-sensitive containers",
		"| binary | size | run | p50 | p90 | p99 | max | CPU p50 | p50 / no-op | p99 / no-op | target: p99 < 5.00 ms |",
		"| `nri-memqos-oci-hook` | 10.7 MiB | create | 2.50 ms | 3.10 ms | 4.20 ms | 9.00 ms | 2.40 ms | 1.67 | 1.40 | met (4.20 ms < 5.00 ms) |",
		"| `nri-memqos-oci-hook` | 10.7 MiB | stop | 2.20 ms | 2.80 ms | 3.90 ms | 8.00 ms | 2.10 ms | 1.47 | 1.30 | met (3.90 ms < 5.00 ms) |",
		"| `nophook` (no-op) | 10.7 MiB | reads stdin, exits | 1.50 ms | 2.00 ms | 3.00 ms | 7.00 ms | 1.40 ms | 1 | 1 | floor under the target |",
		"| `nri-memqos oci-hook` | 16.9 MiB | create | 4.10 ms | 5.60 ms | 7.50 ms | 12.00 ms | 4.00 ms | 1.37 | 1.36 | **missed** (7.50 ms ≥ 5.00 ms) |",
		"| `nri-memqos oci-hook` | 16.9 MiB | stop | 3.80 ms | 4.40 ms | 4.90 ms | 11.00 ms | 3.70 ms | 1.27 | 0.89 | met (4.90 ms < 5.00 ms) |",
		"| `nopfull` (no-op) | 13.0 MiB | reads stdin, exits | 3.00 ms | 4.00 ms | 5.50 ms | 10.00 ms | 2.90 ms | 1 | 1 | floor over the target |",
		"| `nri-memqos-oci-hook` | 91 | 1.05 ms | 2.50 ms |",
		"| `nopfull` | 156 | 2.58 ms | 4.92 ms |",
		"Checked after the runs (the hooks did their work): `nri-memqos-oci-hook`: kubepods memory.min 446.0 MiB with the 100 live containers' requests summing to 446.0 MiB, 0 after all were stopped",
		"the machine was 61% busy: 55% this benchmark and its hooks, 6% other work (steal 0.3%)",
	)
	if len(heads) != 1 {
		t.Fatalf("headlines = %q, want one", heads)
	}
	wantLines(t, heads[0],
		"OCI hook p99 with 100 live containers:",
		"nri-memqos-oci-hook create 4.20 ms / stop 3.90 ms (no-op 3.00 ms), met",
		"nri-memqos oci-hook create 7.50 ms / stop 4.90 ms (no-op 5.50 ms), missed",
		"(target < 5.00 ms)")
	if len(missed) != 1 {
		t.Fatalf("missed = %q, want one bullet (the full binary)", missed)
	}
	wantLines(t, missed[0],
		"**OCI hook `nri-memqos oci-hook`** (p99 create 7.50 ms, stop 4.90 ms; target < 5.00 ms)",
		"(`nopfull`, 13.0 MiB) is already beyond the target itself: p50 3.00 ms, p99 5.50 ms",
		"156 package initializers (2.58 ms of them)",
		"The hook's work adds 1.10 ms at the p50 of a create (1.37× the no-op; CPU p50 4.00 ms against 2.90 ms)")
}

func TestRenderOCIHookFailedCheck(t *testing.T) {
	r := readOCIFixture(t)
	r.Variants[0].Check.OK = false
	r.Variants[0].Check.KubepodsMinBytes = 0
	r.Variants[0].Check.DrainedMinBytes = 4 << 20
	r.CPU = nil
	w, md := renderTo()
	if _, _, err := renderOCIHook(w, &r); err != nil {
		t.Fatal(err)
	}
	text := md.String()
	wantLines(t, text, "**The check after the runs failed**", "kubepods memory.min 0.0 MiB with the 100 live containers' requests summing to 446.0 MiB, still 4.0 MiB after all were stopped")
	if strings.Contains(text, "During the rounds the machine was") {
		t.Errorf("a file without machine_cpu renders a machine load line:\n%s", text)
	}
}

func TestRenderOCIHookRejects(t *testing.T) {
	for name, mod := range map[string]func(*ociReport){
		"schema":      func(r *ociReport) { r.Schema = "nri-memqos/ocihook-bench/v0" },
		"no variants": func(r *ociReport) { r.Variants = nil },
		"no target":   func(r *ociReport) { r.TargetP99Ns = 0 },
	} {
		r := readOCIFixture(t)
		mod(&r)
		w, md := renderTo()
		if _, _, err := renderOCIHook(w, &r); err == nil {
			t.Errorf("%s: no error", name)
		}
		if md.Len() != 0 {
			t.Errorf("%s: rendered %q before failing", name, md.String())
		}
	}
}

// TestRunOCIHook renders a report from ocihook.json alone, then from an
// input directory without it.
func TestRunOCIHook(t *testing.T) {
	in, out := t.TempDir(), t.TempDir()
	data, err := os.ReadFile(filepath.Join("testdata", "ocihook.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, "ocihook.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(in, out); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(out, "benchmarks.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(md)
	wantLines(t, text,
		"Not measured in this run (no reconciler.txt, events.txt, hook.json, protection.json in",
		"## 5. OCI hook cost",
		"## Where a target is missed, and why\n\n- **OCI hook `nri-memqos oci-hook`**",
		"## Headlines\n\n- OCI hook p99 with 100 live containers:")
	if strings.Contains(text, "Not run: no ocihook.json") {
		t.Error("the OCI hook section says it was not run")
	}

	// Without ocihook.json: the section says so.
	in2, out2 := t.TempDir(), t.TempDir()
	bench := "BenchmarkTick/containers=1000-2   \t20\t  1500000 ns/op\nBenchmarkRawRead/containers=1000-2\t20\t  1000000 ns/op\n"
	if err := os.WriteFile(filepath.Join(in2, "reconciler.txt"), []byte(bench), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(in2, out2); err != nil {
		t.Fatal(err)
	}
	md, err = os.ReadFile(filepath.Join(out2, "benchmarks.md"))
	if err != nil {
		t.Fatal(err)
	}
	text = string(md)
	wantLines(t, text, "events.txt, hook.json, protection.json, ocihook.json in", "## 5. OCI hook cost\n\nNot run: no ocihook.json in `"+in2+"`")
	if strings.Contains(text, "OCI hook p99") {
		t.Error("a headline for the OCI hook without ocihook.json")
	}

	// A broken ocihook.json fails the report.
	if err := os.WriteFile(filepath.Join(in2, "ocihook.json"), []byte(`{"schema": "other"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(in2, out2); err == nil || !strings.Contains(err.Error(), "ocihook.json") {
		t.Errorf("run with a foreign ocihook.json: %v, want an error naming it", err)
	}
}
