package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"nri-memqos/pkg/state"
	"nri-memqos/test/internal/cgtest"
)

// The OCI-hook mode as processes: the hook binaries (the plugin's
// `nri-memqos oci-hook` and the slim `nri-memqos-oci-hook`) run the way an
// OCI runtime runs them, the OCI state on stdin and the container's
// config.json in its bundle, over a fake cgroup tree and the state
// directory the NRI plugin uses.

// hookVariants are the two ways to run the hook; tests alternate them.
func hookVariants() [][]string {
	return [][]string{{hookBin}, {pluginBin, "oci-hook"}}
}

// hookCtr is one container as a runtime hands it to the hook.
type hookCtr struct {
	id, uid     string
	name        string
	limit       int64
	annotations map[string]string
}

// rel is the container's cgroup (cgroupfs driver, Burstable), CRI-O's form.
func (c hookCtr) rel() string { return "/kubepods/burstable/pod" + c.uid + "/crio-" + c.id }

// hookTree lays out the container's cgroup under the v2 tree: its
// ancestors with zero protection, its own files as runc leaves them.
func (e *env) hookTree(c hookCtr) string {
	e.t.Helper()
	e.v2Tree(c.uid, "crio-"+c.id)
	dir := filepath.Join(e.cgRoot, c.rel())
	for file, v := range map[string]string{"memory.min": "0", "memory.low": "0", "memory.high": "max",
		"memory.max": cgtest.Itoa(c.limit), "memory.swap.max": "max", "memory.oom.group": "0"} {
		cgtest.Write(e.t, filepath.Join(dir, file), v+"\n")
	}
	return dir
}

// bundle writes the container's config.json and returns the bundle.
func (e *env) bundle(c hookCtr) string {
	e.t.Helper()
	dir := filepath.Join(e.dir, "bundles", c.id)
	ann := map[string]string{"io.kubernetes.container.name": c.name, "io.kubernetes.pod.name": "pod-" + c.uid[:4],
		"io.kubernetes.pod.namespace": testNamespace, "io.kubernetes.pod.uid": c.uid}
	for k, v := range c.annotations {
		ann[k] = v
	}
	spec := map[string]any{
		"ociVersion":  "1.0.2",
		"annotations": ann,
		"linux": map[string]any{
			"cgroupsPath": c.rel(),
			"resources":   map[string]any{"memory": map[string]any{"limit": c.limit}},
		},
	}
	data, err := json.Marshal(spec)
	if err != nil {
		e.t.Fatal(err)
	}
	cgtest.Write(e.t, filepath.Join(dir, "config.json"), string(data))
	return dir
}

// runHook runs one hook process for container c in status ("creating",
// "stopped") and returns its stderr and exit status.
func (e *env) runHook(variant []string, config, status string, c hookCtr) (string, int) {
	e.t.Helper()
	st, _ := json.Marshal(map[string]any{"ociVersion": "1.0.2", "id": c.id, "status": status, "pid": 1,
		"bundle": filepath.Join(e.dir, "bundles", c.id)})
	args := append(variant[1:], "-config", config, "-state-dir", e.stateDir())
	cmd := exec.Command(variant[0], args...)
	cmd.Stdin = bytes.NewReader(st)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return stderr.String(), ee.ExitCode()
		}
		e.t.Fatalf("running %v: %v", variant, err)
	}
	return stderr.String(), 0
}

func (e *env) mustHook(variant []string, config, status string, c hookCtr) {
	e.t.Helper()
	if stderr, rc := e.runHook(variant, config, status, c); rc != 0 {
		e.t.Fatalf("hook %v %s %s: exit %d: %s", variant, status, c.id, rc, stderr)
	}
}

// TestOCIHookV2 runs the hooks of two containers of one pod and of a third
// in another pod: each container's cgroup gets its class's values, the
// ancestors the sums, and poststop withdraws each container's share down
// to kubelet's baseline.
func TestOCIHookV2(t *testing.T) {
	e := newEnv(t)
	cfg := e.writeConfig("memqos.yaml", 2, "")
	podA, podB := "a1b2c3d4-0000-4000-8000-000000000001", "b1b2c3d4-0000-4000-8000-000000000002"
	ls := hookCtr{id: crioID("ls"), uid: podA, name: "db", limit: limit512Mi,
		annotations: map[string]string{labelClass: "latency-sensitive", annRequest: "256Mi"}}
	bu := hookCtr{id: crioID("bu"), uid: podA, name: "web", limit: limit512Mi,
		annotations: map[string]string{labelClass: "burstable", annRequest + ".container.web": "128Mi", annRequest: "256Mi"}}
	other := hookCtr{id: crioID("other"), uid: podB, name: "app", limit: limit1Gi,
		annotations: map[string]string{labelClass: "burstable", annRequest: "256Mi"}}
	for _, c := range []hookCtr{ls, bu, other} {
		e.hookTree(c)
		e.bundle(c)
	}
	// kubelet's own protection of pod B (TieredReservation), a baseline.
	cgtest.Write(t, filepath.Join(e.ancestors(podB)["pod"], "memory.min"), "67108864\n")

	for i, c := range []hookCtr{ls, bu, other} {
		e.mustHook(hookVariants()[i%2], cfg, "creating", c)
	}
	dir := func(c hookCtr) string { return filepath.Join(e.cgRoot, c.rel()) }
	// burstable, request 128Mi, limit 512Mi: 134217728 + 0.9*402653184 =
	// 496605593.6 -> 121241 pages.
	const burstableHigh128Of512 = 121241 * 4096
	cgtest.CheckFiles(t, "", map[string]string{
		filepath.Join(dir(ls), "memory.min"):      "268435456",
		filepath.Join(dir(ls), "memory.low"):      "0",
		filepath.Join(dir(ls), "memory.high"):     "max",
		filepath.Join(dir(ls), "memory.swap.max"): "0",
		filepath.Join(dir(bu), "memory.min"):      "0",
		filepath.Join(dir(bu), "memory.low"):      "134217728",
		filepath.Join(dir(bu), "memory.high"):     cgtest.Itoa(burstableHigh128Of512),
		filepath.Join(dir(other), "memory.low"):   "268435456",
		filepath.Join(dir(other), "memory.high"):  cgtest.Itoa(burstableHigh1Gi),
	})
	a, b := e.ancestors(podA), e.ancestors(podB)
	cgtest.CheckFiles(t, "", map[string]string{
		filepath.Join(a["pod"], "memory.min"):                "268435456",
		filepath.Join(a["pod"], "memory.low"):                "134217728",
		filepath.Join(b["pod"], "memory.min"):                "67108864", // kubelet's, kept
		filepath.Join(b["pod"], "memory.low"):                "268435456",
		filepath.Join(a["kubepods/burstable"], "memory.min"): "268435456",
		filepath.Join(a["kubepods/burstable"], "memory.low"): "402653184",
		filepath.Join(a["kubepods"], "memory.min"):           "268435456",
		filepath.Join(a["kubepods"], "memory.low"):           "402653184",
	})

	e.mustHook(hookVariants()[1], cfg, "stopped", ls)
	cgtest.CheckFiles(t, "", map[string]string{
		filepath.Join(a["pod"], "memory.min"):      "0",
		filepath.Join(a["pod"], "memory.low"):      "134217728",
		filepath.Join(a["kubepods"], "memory.min"): "0",
	})
	// The runtime may run poststop twice (podman and runc both know the
	// stage): the second changes nothing.
	e.mustHook(hookVariants()[0], cfg, "stopped", ls)
	e.mustHook(hookVariants()[0], cfg, "stopped", bu)
	e.mustHook(hookVariants()[1], cfg, "stopped", other)
	cgtest.CheckFiles(t, "", map[string]string{
		filepath.Join(a["pod"], "memory.low"):      "0",
		filepath.Join(b["pod"], "memory.min"):      "67108864",
		filepath.Join(b["pod"], "memory.low"):      "0",
		filepath.Join(a["kubepods"], "memory.low"): "0",
	})
}

// TestOCIHookV1 checks the cgroup v1 values a hook writes into a
// container's memory directory (CRI-O without NRI, podman on cgroup v1).
func TestOCIHookV1(t *testing.T) {
	e := newEnv(t)
	cfg := e.writeConfig("memqos.yaml", 1, "")
	c := hookCtr{id: crioID("v1"), uid: "c1b2c3d4-0000-4000-8000-000000000003", name: "app", limit: limit512Mi,
		annotations: map[string]string{labelClass: "latency-sensitive", annRequest: "256Mi"}}
	dir := e.v1Tree(c.rel(), c.limit)
	e.bundle(c)
	e.mustHook(hookVariants()[0], cfg, "creating", c)
	cgtest.CheckFiles(t, dir, map[string]string{
		"memory.soft_limit_in_bytes":  "268435456",
		"memory.swappiness":           "0",
		"memory.memsw.limit_in_bytes": "536870912", // no swap: memsw = limit
		"memory.limit_in_bytes":       "536870912",
	})
	e.mustHook(hookVariants()[1], cfg, "stopped", c)
}

// TestOCIHookBadAnnotation checks that a bad annotation fails the start with
// one line naming the key, the value and what is allowed, writes nothing and
// promises nothing; and that a container without the opt-in is untouched.
func TestOCIHookBadAnnotation(t *testing.T) {
	e := newEnv(t)
	cfg := e.writeConfig("memqos.yaml", 2, "")
	bad := hookCtr{id: crioID("bad"), uid: "d1b2c3d4-0000-4000-8000-000000000004", name: "app", limit: limit512Mi,
		annotations: map[string]string{labelClass: "burstable", annRequest: "lots"}}
	plain := hookCtr{id: crioID("plain"), uid: "d1b2c3d4-0000-4000-8000-000000000004", name: "side", limit: limit512Mi}
	for _, c := range []hookCtr{bad, plain} {
		e.hookTree(c)
		e.bundle(c)
	}
	for _, v := range hookVariants() {
		stderr, rc := e.runHook(v, cfg, "creating", bad)
		if rc != 1 {
			t.Errorf("%v: exit %d, want 1", v, rc)
		}
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if len(lines) != 1 {
			t.Errorf("%v: stderr has %d lines, want 1:\n%s", v, len(lines), stderr)
		}
		for _, want := range []string{filepath.Base(v[0]), annRequest, "lots", "allowed"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("%v: stderr %q does not contain %q", v, stderr, want)
			}
		}
		if stderr, rc := e.runHook(v, cfg, "creating", plain); rc != 0 || stderr != "" {
			t.Errorf("%v: container without opt-in: exit %d, stderr %q; want 0 and nothing", v, rc, stderr)
		}
	}
	untouched := map[string]string{"memory.min": "0", "memory.low": "0", "memory.high": "max", "memory.swap.max": "max"}
	cgtest.CheckFiles(t, filepath.Join(e.cgRoot, bad.rel()), untouched)
	cgtest.CheckFiles(t, filepath.Join(e.cgRoot, plain.rel()), untouched)
	checkFiles(t, e.ancestorFiles(bad.uid, "0", "0", "0", "0"))
	if st := readState(t, e.stateDir()); len(st.Promises) != 0 || len(st.Requests) != 0 {
		t.Errorf("state after refused and ignored containers: promises %v, requests %v; want none", st.Promises, st.Requests)
	}
}

// TestOCIHookConcurrent runs the hooks of 24 containers in 3 pods at once,
// then their poststops at once: the state lock serializes them, so every
// sum is exact and everything goes back to zero.
func TestOCIHookConcurrent(t *testing.T) {
	e := newEnv(t)
	cfg := e.writeConfig("memqos.yaml", 2, "")
	uids := []string{"e1b2c3d4-0000-4000-8000-000000000010", "e1b2c3d4-0000-4000-8000-000000000011", "e1b2c3d4-0000-4000-8000-000000000012"}
	var ctrs []hookCtr
	for i := range 24 {
		c := hookCtr{id: crioID(fmt.Sprint("conc", i)), uid: uids[i%3], name: fmt.Sprint("c", i), limit: limit512Mi,
			annotations: map[string]string{labelClass: "latency-sensitive", annRequest: fmt.Sprintf("%dMi", 16*(i+1))}}
		e.hookTree(c)
		e.bundle(c)
		ctrs = append(ctrs, c)
	}
	runAll := func(status string) {
		var wg sync.WaitGroup
		errs := make(chan string, len(ctrs))
		for i, c := range ctrs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if stderr, rc := e.runHook(hookVariants()[i%2], cfg, status, c); rc != 0 {
					errs <- fmt.Sprintf("%s %s: exit %d: %s", status, c.id[:8], rc, stderr)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	runAll("creating")
	var total int64
	want := map[string]string{}
	for p, uid := range uids {
		var sum int64
		for i := p; i < 24; i += 3 {
			sum += int64(16*(i+1)) * mi
		}
		total += sum
		want[filepath.Join(e.ancestors(uid)["pod"], "memory.min")] = cgtest.Itoa(sum)
	}
	want[filepath.Join(e.cgRoot, "kubepods", "memory.min")] = cgtest.Itoa(total)
	want[filepath.Join(e.cgRoot, "kubepods", "burstable", "memory.min")] = cgtest.Itoa(total)
	cgtest.CheckFiles(t, "", want)
	if st := readState(t, e.stateDir()); len(st.Promises) != 24 {
		t.Errorf("state holds %d promises, want 24", len(st.Promises))
	}

	runAll("stopped")
	for f := range want {
		want[f] = "0"
	}
	cgtest.CheckFiles(t, "", want)
	if st := readState(t, e.stateDir()); len(st.Promises) != 0 || len(st.Ancestors) != 0 {
		t.Errorf("state after every poststop: %d promises, ancestors %v; want none", len(st.Promises), st.Ancestors)
	}
}

// TestOCIHookAndPlugin installs both on one state directory: while the NRI
// plugin runs, a hook leaves its container alone; a container a hook set
// up before the plugin started is the plugin's to withdraw (its ancestor
// values are recognized as the plugin's own), and a container the plugin
// set up is a hook's to withdraw after the plugin stopped.
func TestOCIHookAndPlugin(t *testing.T) {
	e := newEnv(t)
	e.mustStartNRI()
	cfg := e.writeConfig("memqos.yaml", 2, "")
	uid := "f1b2c3d4-0000-4000-8000-000000000020"
	early := hookCtr{id: "ctr-early", uid: uid, name: "early", limit: limit512Mi,
		annotations: map[string]string{labelClass: "latency-sensitive", annRequest: "256Mi"}}
	e.hookTree(early)
	e.bundle(early)
	e.mustHook(hookVariants()[0], cfg, "creating", early)
	checkFiles(t, e.ancestorFiles(uid, "268435456", "0", "268435456", "0"))

	// The runtime knows the container (created with the hook, running).
	pod := newPod("hooked", uid, false, map[string]string{labelClass: "latency-sensitive"}, map[string]string{annRequest: "256Mi"})
	e.runPod(pod)
	ctr := newContainer(pod, "early", "crio-ctr-early", limit512Mi, nil)
	ctr.Id = early.id
	ctr.Linux.CgroupsPath = early.rel()
	e.mustCreate(pod, ctr)
	e.start(early.id)

	p := e.startPlugin(cfg)
	e.waitSync(p)
	late := hookCtr{id: "ctr-late", uid: uid, name: "late", limit: limit512Mi,
		annotations: map[string]string{labelClass: "latency-sensitive", annRequest: "128Mi"}}
	e.hookTree(late)
	e.bundle(late)
	for _, v := range hookVariants() {
		args := append(append([]string{}, v...), "-log-level", "info")
		stderr, rc := e.runHook(args, cfg, "creating", late)
		if rc != 0 || !strings.Contains(stderr, "NRI plugin runs") {
			t.Errorf("%v with the plugin running: exit %d, stderr %q; want 0 and a note that the plugin runs", v, rc, stderr)
		}
	}
	cgtest.CheckFiles(t, filepath.Join(e.cgRoot, late.rel()), map[string]string{"memory.min": "0"})
	checkFiles(t, e.ancestorFiles(uid, "268435456", "0", "268435456", "0"))

	// The plugin withdraws the hook's container: its ancestors' values
	// are the plugin's own, not a baseline to keep.
	e.remove(early.id)
	checkFiles(t, e.ancestorFiles(uid, "0", "0", "0", "0"))

	// A container of the plugin's, withdrawn by a hook after the plugin
	// stopped.
	own := newContainer(pod, "own", "ctr-own", limit512Mi, nil)
	cgtest.Write(t, filepath.Join(e.cgRoot, own.Linux.CgroupsPath, "memory.max"), "max\n")
	e.mustCreate(pod, own)
	e.start(own.Id)
	checkFiles(t, e.ancestorFiles(uid, "268435456", "0", "268435456", "0"))
	p.Stop(3 * time.Second)
	if !p.Exited() {
		t.Fatal("plugin did not stop")
	}
	e.mustHook(hookVariants()[1], cfg, "stopped", hookCtr{id: own.Id, uid: uid})
	checkFiles(t, e.ancestorFiles(uid, "0", "0", "0", "0"))
}

// readState reads the state as a new process would: snapshot and journals.
func readState(t *testing.T, dir string) *state.State {
	t.Helper()
	st, err := state.Read(filepath.Join(dir, "ancestors.json"))
	if err != nil {
		t.Fatalf("reading the state: %v", err)
	}
	return st
}
