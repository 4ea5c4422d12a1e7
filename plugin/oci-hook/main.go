// Command nri-memqos-oci-hook is `nri-memqos oci-hook` on its own: the OCI
// hook for runtimes without NRI (CRI-O without NRI, podman), built without
// the NRI client, the Prometheus exporter and the plugin's listeners, so
// that the process a runtime starts for every container begins its work
// sooner (docs/benchmarks.md measures both). Same code, flags and exit
// status as the subcommand.
package main

import (
	"os"

	"nri-memqos/pkg/ocihook"
)

func main() {
	os.Exit(ocihook.Main("nri-memqos-oci-hook", os.Args[1:], os.Stdin, os.Stderr))
}
