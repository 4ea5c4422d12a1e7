package integration

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"
)

// pluginBin is the plugin binary built once by TestMain.
var pluginBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "nri-memqos-bin")
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)

	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: go tool not found: %v\n", err)
		return 1
	}
	pluginBin = filepath.Join(dir, "nri-memqos")
	build := exec.Command(goTool, "build", "-o", pluginBin, "nri-memqos/plugin")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: failed to build the plugin: %v\n%s", err, out)
		return 1
	}

	// The adaptation logs through logrus' standard logger; each test
	// captures it (see newEnv) and prints it only on failure.
	logrus.SetOutput(io.Discard)
	return m.Run()
}
