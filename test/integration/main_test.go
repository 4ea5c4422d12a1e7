package integration

import (
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/sirupsen/logrus"

	"nri-memqos/test/internal/gobuild"
)

// pluginBin is the plugin binary and hookBin the slim OCI hook
// (nri-memqos-oci-hook), built once by TestMain.
var pluginBin, hookBin string

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

	pluginBin, err = gobuild.Binary(dir, "nri-memqos", "nri-memqos/plugin")
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: failed to build the plugin: %v\n", err)
		return 1
	}
	hookBin, err = gobuild.Binary(dir, "nri-memqos-oci-hook", "nri-memqos/plugin/oci-hook")
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: failed to build the OCI hook: %v\n", err)
		return 1
	}

	// The adaptation logs through logrus' standard logger; each test
	// captures it (see newEnv) and prints it only on failure.
	logrus.SetOutput(io.Discard)
	return m.Run()
}
