package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"

	"nri-memqos/pkg/config"
	"nri-memqos/pkg/explain"
	"nri-memqos/pkg/node"
	"nri-memqos/pkg/policy"
)

const explainUsage = `Usage: nri-memqos explain [flags] POD-FILE
       nri-memqos explain [flags] SANDBOX-CONFIG CONTAINER-CONFIG

Shows what nri-memqos would do for a pod, without touching the node: per
container the class and where it came from, the memory request the plugin
resolves and where from, the limit, and every value it would set on cgroup
v2 (unified map) and on cgroup v1 (soft limit, swappiness, memsw limit).
It runs the plugin's own policy on the facts the runtime would give it at
container creation.

Input (YAML or JSON; "-" reads standard input):
  POD-FILE          a Kubernetes Pod (apiVersion v1, kind Pod), a List of
                    Pods, or several Pod documents separated by ---
  SANDBOX-CONFIG CONTAINER-CONFIG
                    a CRI pod sandbox config and container config as crictl
                    takes them (either order)

Flags:
`

const explainExit = `
Exit status: 0 every container is valid; 1 the plugin would fail a
container's creation (invalid label or annotation; results are printed);
2 bad flags or input.
`

// explainStdin is what "-" reads; tests replace it.
var explainStdin io.Reader = os.Stdin

// runExplain is `nri-memqos explain`. It returns the exit status.
func runExplain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		configFile = fs.String("config", "", "configuration `FILE` (YAML), such as /etc/nri/conf.d/10-nri-memqos.conf; default: the built-in configuration")
		output     = fs.String("o", "text", "output `FORMAT`: text or json")
		memTotal   = fs.String("mem-total", "", "node memory (MemTotal) in `BYTES` or as a quantity such as 16Gi; default: this node's /proc/meminfo")
		kubeletQoS = fs.Bool("kubelet-memory-qos", false, "kubelet's MemoryQoS feature gate is on: on cgroup v2 it passes memory.min / memory.low (see -kubelet-memory-reservation)")
		kubeletRes = fs.String("kubelet-memory-reservation", "", "kubelet's memoryReservationPolicy (Kubernetes 1.36+) `POLICY`: None (memory.min = memory.low = 0) or TieredReservation (Guaranteed memory.min, Burstable memory.low = the request); empty: kubelet before 1.36 (memory.min = the request)")
	)
	usage := func(w io.Writer) {
		fmt.Fprint(w, explainUsage)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		fmt.Fprint(w, explainExit)
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "nri-memqos explain: "+format+"\n", a...)
		return 2
	}

	// Flags may come before or after the files; "--" ends the flags.
	var files []string
	rest := args
	if i := slices.Index(rest, "--"); i >= 0 {
		files = append(files, rest[i+1:]...)
		rest = rest[:i]
	}
	var pos []string
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage(stdout)
				return 0
			}
			return fail("%v; allowed flags: -config FILE, -o text|json, -mem-total BYTES, -kubelet-memory-qos, -kubelet-memory-reservation None|TieredReservation (-h for help)", err)
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		rest = rest[1:]
	}
	files = append(pos, files...)

	if *output != "text" && *output != "json" {
		return fail("-o %q: not an output format; allowed: text, json", *output)
	}
	if len(files) < 1 || len(files) > 2 {
		return fail("%d input files; allowed: one Pod file, or a CRI pod sandbox config and a container config (\"-\" for standard input)", len(files))
	}
	if len(files) == 2 && files[0] == "-" && files[1] == "-" {
		return fail("both inputs are \"-\"; allowed: standard input for one of them")
	}

	cfg := config.Default()
	if *configFile != "" {
		var err error
		if cfg, err = config.Load(*configFile); err != nil {
			return fail("-config: %v", err)
		}
	}

	facts := policy.Node{PageSize: int64(os.Getpagesize())}
	if *memTotal != "" {
		b, err := config.ParseBytes(*memTotal)
		if err != nil || b <= 0 {
			reason := "zero"
			if err != nil {
				reason = err.Error()
			}
			return fail("-mem-total %q: %s; allowed: a positive number of bytes or a quantity such as 16Gi", *memTotal, reason)
		}
		facts.MemTotal = b
	} else {
		host, err := node.ReadHost()
		if err != nil {
			return fail("%v; give the node's memory with -mem-total", err)
		}
		facts.MemTotal, facts.PageSize = host.MemTotal, host.PageSize
	}

	var in []explain.File
	for _, name := range files {
		var data []byte
		var err error
		if name == "-" {
			data, err = io.ReadAll(explainStdin)
			name = "<stdin>"
		} else {
			data, err = os.ReadFile(name)
		}
		if err != nil {
			return fail("%v; allowed: a readable file or \"-\" for standard input", err)
		}
		in = append(in, explain.File{Name: name, Data: data})
	}
	pods, err := explain.Parse(in...)
	if err != nil {
		return fail("%v", err)
	}
	switch *kubeletRes {
	case "", explain.ReservationNone, explain.ReservationTiered:
	default:
		return fail("-kubelet-memory-reservation %q: not a memoryReservationPolicy; allowed: %s, %s", *kubeletRes, explain.ReservationNone, explain.ReservationTiered)
	}
	if *kubeletRes != "" && !*kubeletQoS {
		return fail("-kubelet-memory-reservation %s without -kubelet-memory-qos: kubelet applies it only with MemoryQoS on; allowed: add -kubelet-memory-qos", *kubeletRes)
	}
	rep, err := explain.Explain(cfg, facts, pods, explain.Options{KubeletMemoryQoS: *kubeletQoS, KubeletReservation: *kubeletRes})
	if err != nil {
		return fail("%v", err)
	}
	if *output == "json" {
		err = explain.WriteJSON(stdout, rep)
	} else {
		err = explain.WriteText(stdout, rep)
	}
	if err != nil {
		return fail("writing output: %v", err)
	}
	if n := rep.Failing(); n > 0 {
		fmt.Fprintf(stderr, "nri-memqos explain: the plugin would fail the creation of %d container(s); see their error in the output\n", n)
		return 1
	}
	return 0
}
