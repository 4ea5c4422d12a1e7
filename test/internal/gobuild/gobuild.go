// Package gobuild builds commands of this module (the plugin, the benchmark's
// no-op plugin) for the tests that run them as processes.
package gobuild

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Binary builds the package pkg (an import path of this module) into
// dir/name, static (CGO_ENABLED=0) and with -trimpath, and returns its path.
func Binary(dir, name, pkg string) (string, error) {
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}
