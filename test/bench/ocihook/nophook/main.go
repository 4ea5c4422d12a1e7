// Command nophook is the do-nothing baseline of the OCI hook benchmark
// (test/bench/ocihook) in the size class of the slim hook,
// nri-memqos-oci-hook (./plugin/oci-hook): it links the same packages, so
// the same package initializers run at its start, and it links the hook's
// code too, so the binary is as large; but run as the benchmark runs it
// (no arguments) it only reads its stdin (the OCI state) to EOF and exits 0.
//
// With -run-hook as its first argument it runs the hook itself
// (ocihook.Main with the remaining arguments); the benchmark never passes
// it. The branch is there only to keep the hook's code in the binary.
package main

import (
	"io"
	"os"

	"nri-memqos/pkg/ocihook"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-run-hook" {
		os.Exit(ocihook.Main("nophook", os.Args[2:], os.Stdin, os.Stderr))
	}
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
		os.Exit(1)
	}
}
