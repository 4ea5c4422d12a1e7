// Command nopfull is the do-nothing baseline of the OCI hook benchmark
// (test/bench/ocihook) in the size class of the full plugin binary, whose
// subcommand `nri-memqos oci-hook` is the other hook measured: it imports
// every package ./plugin imports (the NRI stub and API, the Prometheus
// exporter behind pkg/metrics and pkg/health, the core, ...), so the same
// packages link and the same package initializers run at its start; the
// benchmark checks that its dependencies are the plugin's. Run as the
// benchmark runs it (no arguments) it only reads its stdin (the OCI state)
// to EOF and exits 0.
//
// With -run-hook as its first argument it runs the OCI hook (ocihook.Main
// with the remaining arguments), as `nri-memqos oci-hook` does; the
// benchmark never passes it. The branch is there only to keep the hook's
// code in the binary, as the plugin's has it.
package main

import (
	"io"
	"os"
	_ "os/signal"

	_ "github.com/containerd/nri/pkg/api"
	_ "github.com/containerd/nri/pkg/stub"
	_ "github.com/sirupsen/logrus"

	_ "nri-memqos/pkg/cgroupfs"
	_ "nri-memqos/pkg/cleanup"
	_ "nri-memqos/pkg/config"
	_ "nri-memqos/pkg/explain"
	_ "nri-memqos/pkg/health"
	_ "nri-memqos/pkg/metrics"
	_ "nri-memqos/pkg/node"
	"nri-memqos/pkg/ocihook"
	_ "nri-memqos/pkg/policy"
	_ "nri-memqos/pkg/state"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-run-hook" {
		os.Exit(ocihook.Main("nopfull", os.Args[2:], os.Stdin, os.Stderr))
	}
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
		os.Exit(1)
	}
}
