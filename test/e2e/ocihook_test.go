package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nri-memqos/pkg/state"
	"nri-memqos/test/internal/cgtest"
	"nri-memqos/test/internal/wait"
)

// The OCI-hook mode on real runtimes: podman (Debian's) on the host,
// cgroup v1, with the hooks.d file the project ships; and runc running a
// bundle whose config.json carries the hook, in the cgroup v2 VM.

// hookFile is the shipped hooks.d file with the hook's path and arguments
// pointed at this run's binary, configuration and state directory: its
// stages and when-condition are the shipped ones.
func hookFile(t *testing.T, bin, config, stateDir string) []byte {
	t.Helper()
	data, err := os.ReadFile("../../config/runtime/oci-hooks.d/nri-memqos.json")
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(data, &h); err != nil {
		t.Fatalf("config/runtime/oci-hooks.d/nri-memqos.json: %v", err)
	}
	hook := h["hook"].(map[string]any)
	hook["path"] = bin
	hook["args"] = []string{filepath.Base(bin), "-config", config, "-state-dir", stateDir}
	out, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// podman is podman with its own storage, run directory, hooks directory
// and cgroup parent, on runc (crun refuses cgroup v1 hybrid hosts).
type podman struct {
	t      *testing.T
	dir    string
	args   []string
	parent string // the cgroup parent of its containers
}

func newPodman(t *testing.T, e *suiteEnv, hooksDir string) *podman {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		skipOrFail(t, "podman: %v", err)
	}
	dir := workDir(t)
	p := &podman{t: t, dir: dir, parent: "/" + filepath.Base(dir)}
	p.args = []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
		"--tmpdir", filepath.Join(dir, "tmp"), "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
		"--events-backend", "file", "--runtime", filepath.Join(e.binDir, "runc"), "--hooks-dir", hooksDir}
	t.Cleanup(func() {
		if out, err := p.run("rm", "--all", "--force", "--time", "0"); err != nil {
			t.Logf("podman rm: %v: %s", err, out)
		}
		if out, err := p.run("system", "reset", "--force"); err != nil {
			t.Logf("podman system reset: %v: %s", err, out)
		}
		removeCgroupTrees(cgroupDirsNamed(p.parent))
		if left := cgroupDirsNamed(p.parent); len(left) > 0 {
			t.Errorf("cgroups left behind: %v", left)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	return p
}

func (p *podman) run(args ...string) (string, error) {
	cmd := exec.Command("podman", append(append([]string{}, p.args...), args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

func (p *podman) mustRun(args ...string) string {
	p.t.Helper()
	out, err := p.run(args...)
	if err != nil {
		p.t.Fatalf("podman %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

// runArgs start a detached busybox container: host network (no CNI), the
// host's limits on open files and processes (podman's defaults exceed
// them on this machine kind), the test's cgroup parent.
func (p *podman) runArgs(extra ...string) []string {
	args := []string{"run", "--detach", "--network", "host", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
		"--cgroup-parent", p.parent}
	return append(args, extra...)
}

// TestPodmanOCIHook runs podman on the host (cgroup v1) with the hooks.d
// file installed: an annotated container gets its class's values in its
// cgroup at start, a bad annotation fails the start with the hook's
// one-line error, a container without the annotation is untouched, and
// stopping the container withdraws its promise.
func TestPodmanOCIHook(t *testing.T) {
	e := loadEnv(t)
	if e.version != 1 {
		t.Log("podman runs on the host (cgroup v1); the VM tests the hook with runc (TestOCIHookRuncV2)")
		return
	}
	dir := workDir(t)
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	hooksDir, stateDir := filepath.Join(dir, "hooks.d"), filepath.Join(dir, "state")
	config := filepath.Join(dir, "memqos.yaml")
	cgtest.Write(t, config, "cgroupVersion: 1\n")
	cgtest.Write(t, filepath.Join(hooksDir, "nri-memqos.json"),
		string(hookFile(t, filepath.Join(e.binDir, "nri-memqos-oci-hook"), config, stateDir)))
	p := newPodman(t, e, hooksDir)

	bb, err := os.ReadFile(e.busybox)
	if err != nil {
		t.Fatal(err)
	}
	layer, err := busyboxLayer(bb)
	if err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(dir, "rootfs.tar")
	if err := os.WriteFile(rootfs, layer, 0o644); err != nil {
		t.Fatal(err)
	}
	const image = "localhost/busybox:e2e"
	p.mustRun("import", rootfs, image)

	// latency-sensitive, request 128Mi, limit 256Mi: soft limit = the
	// request, swappiness 0, no swap (memsw = the limit; podman asked for
	// twice the limit).
	id := p.mustRun(p.runArgs("--memory", "256m", "--annotation", "memqos.nri.io/class=latency-sensitive",
		"--annotation", "memqos.nri.io/memory-request=128Mi", image, "sleep", "600")...)
	ctrDir := memoryDir(1, p.parent+"/libpod-"+id)
	want := map[string]string{
		"memory.limit_in_bytes":      cgtest.Itoa(256 * mi),
		"memory.soft_limit_in_bytes": cgtest.Itoa(128 * mi),
		"memory.swappiness":          "0",
	}
	if _, err := os.Stat(filepath.Join(ctrDir, "memory.memsw.limit_in_bytes")); err == nil {
		want["memory.memsw.limit_in_bytes"] = cgtest.Itoa(256 * mi)
	}
	cgtest.CheckFiles(t, ctrDir, want)
	st := readHookState(t, stateDir)
	if got, want := st.Promises[id], (state.Promise{Path: p.parent + "/libpod-" + id, Min: 128 * mi}); got != want {
		t.Errorf("promise of %s in the state: %+v, want %+v", id[:12], got, want)
	}

	// A bad annotation: the start fails with the hook's line.
	out, err := p.run(p.runArgs("--memory", "256m", "--annotation", "memqos.nri.io/class=latency-sensitive",
		"--annotation", "memqos.nri.io/memory-request=lots", image, "true")...)
	if err == nil {
		t.Errorf("podman run with memory-request=lots succeeded: %s", out)
	}
	for _, s := range []string{"nri-memqos-oci-hook: container", "memqos.nri.io/memory-request", `"lots"`, "allowed"} {
		if !strings.Contains(out, s) {
			t.Errorf("podman's error does not contain %q:\n%s", s, out)
		}
	}

	// No annotation: the hook does not run; the kernel's defaults stay.
	plain := p.mustRun(p.runArgs("--memory", "256m", image, "sleep", "600")...)
	parentSwappiness := cgtest.Read(t, memoryDir(1, p.parent), "memory.swappiness")
	cgtest.CheckFiles(t, memoryDir(1, p.parent+"/libpod-"+plain), map[string]string{
		"memory.soft_limit_in_bytes": v1Unlimited,
		"memory.swappiness":          parentSwappiness,
	})
	if st := readHookState(t, stateDir); len(st.Promises) != 1 || len(st.Requests) != 1 {
		t.Errorf("state after a refused and an ignored container: promises %v, requests %v; want only %s's", st.Promises, st.Requests, id[:12])
	}

	// Stopping the container runs poststop: its promise goes.
	p.mustRun("stop", "--time", "1", id)
	wait.For(t, 10*time.Second, "the promise of the stopped container to go", func() bool {
		_, ok := readHookState(t, stateDir).Promises[id]
		return !ok
	})
	p.mustRun("rm", "--force", "--time", "0", id, plain)
}

func readHookState(t *testing.T, dir string) *state.State {
	t.Helper()
	st, err := state.Read(filepath.Join(dir, "ancestors.json"))
	if err != nil {
		t.Fatalf("reading the hooks' state: %v", err)
	}
	return st
}

// TestOCIHookRuncV2 runs, in the cgroup v2 VM, runc on a bundle whose
// config.json carries the hook at createRuntime and poststop (runc runs
// OCI hooks itself): two containers of one pod get their class's values,
// their ancestors the sums, and deleting them withdraws both.
func TestOCIHookRuncV2(t *testing.T) {
	e := loadEnv(t)
	if e.version != 2 {
		t.Log("runs inside the VM of TestCgroupV2VM (cgroup v2)")
		return
	}
	dir := workDir(t)
	top := "/" + filepath.Base(dir)
	t.Cleanup(func() {
		removeCgroupTrees(cgroupDirsNamed(top))
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	config, stateDir := filepath.Join(dir, "memqos.yaml"), filepath.Join(dir, "state")
	cgtest.Write(t, config, "cgroupVersion: 2\n")
	hook := map[string]any{"path": filepath.Join(e.binDir, "nri-memqos-oci-hook"),
		"args": []string{"nri-memqos-oci-hook", "-config", config, "-state-dir", stateDir}, "timeout": 10}
	rootfs := filepath.Join(dir, "rootfs")
	for _, f := range []string{"bin/busybox"} {
		data, err := os.ReadFile(e.busybox)
		if err != nil {
			t.Fatal(err)
		}
		cgtest.Write(t, filepath.Join(rootfs, f), string(data))
		if err := os.Chmod(filepath.Join(rootfs, f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", "sleep")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"proc", "dev"} { // mount points in the read-only root
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	podDir := top + "/burstable/pod0000000a-0000-4000-8000-00000000c0de"
	runc := filepath.Join(e.binDir, "runc")
	type ctr struct {
		id, class, request string
		limit              int64
	}
	ctrs := []ctr{{"ls", "latency-sensitive", "96Mi", 256 * mi}, {"bu", "burstable", "64Mi", 256 * mi}}
	for _, c := range ctrs {
		bundle := filepath.Join(dir, "bundles", c.id)
		spec := map[string]any{
			"ociVersion": "1.0.2",
			"process": map[string]any{"args": []string{"/bin/sleep", "600"}, "cwd": "/", "user": map[string]any{"uid": 0, "gid": 0},
				"env": []string{"PATH=/bin"}},
			"root":        map[string]any{"path": rootfs, "readonly": true},
			"annotations": map[string]string{"memqos.nri.io/class": c.class, "memqos.nri.io/memory-request": c.request},
			"hooks":       map[string]any{"createRuntime": []any{hook}, "poststop": []any{hook}},
			"mounts": []any{map[string]any{"destination": "/proc", "type": "proc", "source": "proc"},
				map[string]any{"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "mode=755"}}},
			"linux": map[string]any{
				"cgroupsPath": podDir + "/" + c.id,
				"namespaces":  []any{map[string]string{"type": "pid"}, map[string]string{"type": "mount"}},
				"resources":   map[string]any{"memory": map[string]any{"limit": c.limit}},
			},
		}
		data, err := json.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		cgtest.Write(t, filepath.Join(bundle, "config.json"), string(data))
		// The container inherits runc's stdio: a file, not a pipe that
		// would never see EOF while the container runs.
		logFile, err := os.Create(filepath.Join(dir, c.id+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(runc, "--root", filepath.Join(dir, "runc"), "run", "--detach", "--bundle", bundle, c.id)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		err = cmd.Run()
		_ = logFile.Close() // runc's output is read back from the file's name
		if err != nil {
			out, _ := os.ReadFile(logFile.Name())
			t.Fatalf("runc run %s: %v: %s", c.id, err, out)
		}
		t.Cleanup(func() { _ = exec.Command(runc, "--root", filepath.Join(dir, "runc"), "delete", "--force", c.id).Run() })
	}
	// latency-sensitive 96Mi: memory.min; burstable 64Mi, limit 256Mi:
	// memory.low, and memory.high = 64Mi + 0.9 × 192Mi = 248302387 -> 60620
	// pages.
	cgtest.CheckFiles(t, memoryDir(2, podDir+"/ls"), map[string]string{"memory.min": cgtest.Itoa(96 * mi), "memory.low": "0",
		"memory.max": cgtest.Itoa(256 * mi), "memory.swap.max": "0"})
	cgtest.CheckFiles(t, memoryDir(2, podDir+"/bu"), map[string]string{"memory.min": "0", "memory.low": cgtest.Itoa(64 * mi),
		"memory.high": cgtest.Itoa(60620 * 4096)})
	for _, a := range []string{top, top + "/burstable", podDir} {
		cgtest.CheckFiles(t, memoryDir(2, a), map[string]string{"memory.min": cgtest.Itoa(96 * mi), "memory.low": cgtest.Itoa(64 * mi)})
	}

	// runc delete runs poststop: each deletion withdraws its container's
	// share from the ancestors.
	for i, c := range ctrs {
		if out, err := exec.Command(runc, "--root", filepath.Join(dir, "runc"), "delete", "--force", c.id).CombinedOutput(); err != nil {
			t.Fatalf("runc delete %s: %v: %s", c.id, err, out)
		}
		low := cgtest.Itoa(64 * mi)
		if i == 1 {
			low = "0"
		}
		for _, a := range []string{top, top + "/burstable", podDir} {
			cgtest.CheckFiles(t, memoryDir(2, a), map[string]string{"memory.min": "0", "memory.low": low})
		}
	}
	if st := readHookState(t, stateDir); len(st.Promises) != 0 || len(st.Ancestors) != 0 {
		t.Errorf("state after both deletions: promises %v, ancestors %v; want none", st.Promises, st.Ancestors)
	}
}
