package integration

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nri-memqos/test/internal/cgtest"
)

// runc writes a container's unified map into its cgroup: kubelet's memory
// keys with the plugin's adjustment merged in. The fake tree has no runc.
func (e *env) runcUnified(w workload) {
	e.t.Helper()
	u := maps.Clone(w.kubelet)
	maps.Copy(u, w.want)
	for k, v := range u {
		if strings.HasPrefix(k, "memory.") {
			cgtest.Write(e.t, filepath.Join(e.ctrDir(w.uid, w.id), k), v+"\n")
		}
	}
}

// runCleanup runs `nri-memqos cleanup` with args and returns its exit
// status and output.
func runCleanup(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(pluginBin, append([]string{"cleanup"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String()
	}
	t.Fatalf("running cleanup: %v", err)
	return 0, ""
}

// snapshotFiles reads every file under dir: path → trimmed content.
func snapshotFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSIGTERMKeepsProtectionCleanupWithdraws stops the plugin with SIGTERM
// (a restart, an upgrade, the DaemonSet's rolling update): it exits 0 and
// leaves every value it set, ancestors and containers, and its state file;
// a new process takes over with them. Once the plugin is gone for good,
// `nri-memqos cleanup` on the state dir it wrote withdraws everything: a dry
// run first changes nothing, then the ancestors go back to their
// baselines, the containers to kubelet's values or the kernel's defaults,
// a value kubelet changed meanwhile stays, and the state file goes.
func TestSIGTERMKeepsProtectionCleanupWithdraws(t *testing.T) {
	const kubeletMin = "134217728" // kubelet's MemoryQoS memory.min of ls: 128Mi
	e := newEnv(t)
	e.mustStartNRI()
	cfg := e.writeConfig("memqos.yaml", 2, "")
	p1 := e.startPlugin(cfg)
	e.waitSync(p1)

	ls := workload{
		name: "ls", uid: "c1b2c3d4-0001-4000-8000-000000000001", id: "ctr-ls",
		labels: map[string]string{labelClass: "latency-sensitive"}, annotations: map[string]string{annRequest: "256Mi"},
		kubelet: map[string]string{"cpu.weight": "79", "memory.min": kubeletMin},
		want:    map[string]string{"memory.min": "268435456", "memory.swap.max": "0"},
	}
	bu := workload{
		name: "bu", uid: "c1b2c3d4-0002-4000-8000-000000000002", id: "ctr-bu",
		labels: map[string]string{labelClass: "burstable"}, annotations: map[string]string{annRequest: "256Mi"},
		kubelet: kubeletUnified,
		want:    map[string]string{"memory.low": "268435456", "memory.high": cgtest.Itoa(burstableHigh512Mi)},
	}
	for _, w := range []workload{ls, bu} {
		e.deploy(t, w)
		e.runcUnified(w)
	}
	lsDir, buDir := e.ctrDir(ls.uid, ls.id), e.ctrDir(bu.uid, bu.id)
	protected := map[string]string{
		filepath.Join(lsDir, "memory.min"):      "268435456",
		filepath.Join(lsDir, "memory.swap.max"): "0",
		filepath.Join(buDir, "memory.low"):      "268435456",
		filepath.Join(buDir, "memory.high"):     cgtest.Itoa(burstableHigh512Mi),
	}
	maps.Copy(protected, e.ancestorFiles(ls.uid, "268435456", "0", "268435456", "268435456"))
	maps.Copy(protected, e.ancestorFiles(bu.uid, "0", "268435456", "268435456", "268435456"))
	checkFiles(t, protected)
	stateFile := filepath.Join(e.stateDir(), stateFileName)

	// SIGTERM: a clean exit that withdraws nothing.
	p1.Stop(5 * time.Second)
	if err := p1.Err(); err != nil {
		t.Fatalf("plugin after SIGTERM: %v, want exit status 0", err)
	}
	checkFiles(t, protected)
	if _, err := os.Stat(stateFile); err != nil {
		t.Fatalf("SIGTERM removed the state file: %v", err)
	}

	// The next process (an upgrade) takes over the same values.
	p2 := e.startPlugin(cfg)
	e.waitSync(p2)
	checkFiles(t, protected)
	p2.Stop(5 * time.Second)
	if err := p2.Err(); err != nil {
		t.Fatalf("plugin after SIGTERM: %v, want exit status 0", err)
	}
	checkFiles(t, protected)

	// Uninstalled. kubelet resets the burstable container's memory.high
	// meanwhile: that value is kubelet's now.
	cgtest.Write(t, filepath.Join(buDir, "memory.high"), "max\n")

	before := snapshotFiles(t, e.cgRoot)
	code, out := runCleanup(t, "-state-dir", e.stateDir(), "-config", cfg, "-dry-run")
	if code != 0 || !strings.Contains(out, "would reset") {
		t.Fatalf("cleanup -dry-run = %d:\n%s", code, out)
	}
	if after := snapshotFiles(t, e.cgRoot); !maps.Equal(before, after) {
		t.Errorf("cleanup -dry-run changed the tree:\n%s", out)
	}
	if _, err := os.Stat(stateFile); err != nil {
		t.Fatalf("cleanup -dry-run removed the state file: %v", err)
	}

	code, out = runCleanup(t, "-state-dir", e.stateDir(), "-config", cfg)
	if code != 0 {
		t.Fatalf("cleanup = %d:\n%s", code, out)
	}
	want := map[string]string{
		filepath.Join(lsDir, "memory.min"):      kubeletMin,
		filepath.Join(lsDir, "memory.swap.max"): "max",
		filepath.Join(buDir, "memory.low"):      "0",
		filepath.Join(buDir, "memory.high"):     "max",
		// kubelet's own unified key, never the plugin's.
		filepath.Join(buDir, "memory.oom.group"): "1",
	}
	maps.Copy(want, e.ancestorFiles(ls.uid, "0", "0", "0", "0"))
	maps.Copy(want, e.ancestorFiles(bu.uid, "0", "0", "0", "0"))
	checkFiles(t, want)
	for _, line := range []string{
		"kept        container ctr-bu /kubepods/burstable/podc1b2c3d4-0002-4000-8000-000000000002/ctr-bu memory.high: holds max",
		"summary: 9 reset, 0 unchanged, 1 kept (changed by someone else), 0 gone, 0 failed",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("cleanup output lacks %q:\n%s", line, out)
		}
	}
	if _, err := os.Stat(stateFile); !os.IsNotExist(err) {
		t.Errorf("cleanup left the state file (%v):\n%s", err, out)
	}
}
