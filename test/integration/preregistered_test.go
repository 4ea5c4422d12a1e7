package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// installPreRegistered installs the plugin as the runtime's pre-registered
// plugin 10-nri-memqos with config in <conf.d>/10-nri-memqos.conf, and
// returns the file its stderr goes to.
//
// The runtime starts <plugins>/10-nri-memqos with no arguments and a bare
// environment, and discards its output. What is installed is a two-line
// wrapper that execs the built binary, so the process the runtime talks to
// is the plugin binary itself; the wrapper only keeps its stderr for the
// test and points -state-dir into the test's directory instead of the
// host's /run/nri-memqos. Neither -config nor -socket is given: the
// configuration can only come from conf.d, through Configure.
func (e *env) installPreRegistered(configText string) string {
	e.t.Helper()
	logPath := filepath.Join(e.dir, "preregistered.log")
	script := fmt.Sprintf("#!/bin/sh\nexec '%s' -log-level debug -state-dir '%s' 2>>'%s'\n", pluginBin, e.stateDir(), logPath)
	if err := os.WriteFile(filepath.Join(e.paths.PluginDir, "10-nri-memqos"), []byte(script), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.paths.ConfDir, "10-nri-memqos.conf"), []byte(configText), 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if e.t.Failed() {
			b, _ := os.ReadFile(logPath)
			e.t.Logf("pre-registered plugin log:\n%s", b)
		}
	})
	return logPath
}

// TestPreRegistered runs the plugin as a pre-registered plugin launched by
// the adaptation, configured only by conf.d.
func TestPreRegistered(t *testing.T) {
	e := newEnv(t)
	logPath := e.installPreRegistered(fmt.Sprintf("cgroupVersion: 2\ncgroupRoot: %s\n", e.cgRoot))
	e.mustStartNRI()
	if ev := e.preSync(); ev.Err != nil {
		t.Fatalf("synchronizing the pre-registered plugin: %v", ev.Err)
	}
	if !strings.Contains(e.runtimeLog.String(), `pre-installed NRI plugin "10-nri-memqos" synchronization success`) {
		t.Fatalf("the pre-registered plugin was not started and synchronized")
	}

	ls := workload{
		name: "ls", uid: "c1b2c3d4-0001-4000-8000-000000000001", id: "ctr-ls",
		labels: map[string]string{labelClass: "latency-sensitive"}, annotations: map[string]string{annRequest: "256Mi"},
		kubelet: kubeletUnified,
		want:    map[string]string{"memory.min": "268435456", "memory.swap.max": "0"},
	}
	e.deploy(t, ls)
	// The ancestors under conf.d's cgroupRoot were raised.
	checkFiles(t, e.ancestorFiles(ls.uid, "268435456", "0", "268435456", "0"))
	e.remove(ls.id)
	checkFiles(t, e.ancestorFiles(ls.uid, "0", "0", "0", "0"))

	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "cgroupRoot="+e.cgRoot) {
		t.Errorf("plugin log does not show cgroupRoot %s from conf.d", e.cgRoot)
	}
}

// TestPreRegisteredBadConfig gives the pre-registered plugin an invalid
// conf.d configuration. Observed behaviour: the plugin refuses it in
// Configure, naming the field on its stderr, and exits; the adaptation
// logs the failure, drops the plugin and starts without it (Start itself
// succeeds), so containers get no adjustment.
func TestPreRegisteredBadConfig(t *testing.T) {
	e := newEnv(t)
	logPath := e.installPreRegistered(fmt.Sprintf("cgroupVersion: 2\ncgroupRoot: %s\nmaxProtectionFraction: 1.5\n", e.cgRoot))
	if err := e.startNRI(); err != nil {
		t.Fatalf("adaptation Start failed (%v); observed behaviour is that it starts without the refusing plugin", err)
	}
	e.preSync()

	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "maxProtectionFraction") {
		t.Errorf("plugin stderr does not name the bad field maxProtectionFraction:\n%s", b)
	}
	// The runtime drops the plugin. Whether its log gets the reason is a
	// race in the NRI stub (v0.12.5): Start() tears the connection down as
	// soon as the Configure handler returned the error, often before the
	// reply is written, and the runtime then only sees "ttrpc: closed".
	rlog := e.runtimeLog.String()
	const dropped = `failed to start pre-installed NRI plugin "nri-memqos": failed to configure plugin`
	if !strings.Contains(rlog, dropped) {
		t.Errorf("runtime log does not report that the plugin failed to configure")
	} else if !strings.Contains(rlog, "maxProtectionFraction") {
		t.Logf("the runtime did not get the plugin's reason (connection closed before the Configure reply)")
	}

	uid, id := "c1b2c3d4-0002-4000-8000-000000000002", "ctr-ls"
	e.v2Tree(uid, id)
	pod := newPod("ls", uid, false, map[string]string{labelClass: "latency-sensitive"}, map[string]string{annRequest: "256Mi"})
	e.runPod(pod)
	checkNoAdjustment(t, e.mustCreate(pod, newContainer(pod, "app", id, limit512Mi, kubeletUnified)))
	checkFiles(t, e.ancestorFiles(uid, "0", "0", "0", "0"))
}
