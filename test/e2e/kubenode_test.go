package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"nri-memqos/pkg/explain"
	"nri-memqos/test/internal/wait"
)

// TestKubeNodeVM boots the cgroup v2 VM with a real Kubernetes node in it
// (etcd, kube-apiserver, kubelet on the suite's containerd, make kube-bin) and
// runs TestKubeNode there.
func TestKubeNodeVM(t *testing.T) { runKubeNodeVM(t, false) }

// TestKubeNodeV1VM is TestKubeNodeVM with the VM's cgroup v1 hierarchies
// mounted instead of cgroup2 (the same kernel).
func TestKubeNodeV1VM(t *testing.T) { runKubeNodeVM(t, true) }

func runKubeNodeVM(t *testing.T, cgroupV1 bool) {
	bin := os.Getenv(envKubeBin)
	if bin == "" {
		skipOrFail(t, "%s is not set", envKubeBin)
	}
	disk := map[string]string{}
	for _, b := range kubeBinaries {
		p := filepath.Join(bin, b)
		if _, err := os.Stat(p); err != nil {
			skipOrFail(t, "missing %s (make kube-bin): %v", b, err)
		}
		disk["kube/bin/"+b] = p
	}
	out, code := runGuest(t, guestRun{
		pattern:  "^TestKubeNode$",
		disk:     disk,
		memoryMB: 3072,
		timeout:  30 * time.Minute,
		env:      map[string]string{envKubeBin: "/mnt/disk/kube/bin"},
		cgroupV1: cgroupV1,
	})
	version := "v2"
	if cgroupV1 {
		version = "v1"
	}
	if !strings.Contains(out, "kubelet on cgroup "+version) {
		t.Errorf("the guest did not run kubelet on cgroup %s", version)
	}
	for _, m := range regexp.MustCompile(`--- (FAIL|SKIP): (Test\S*)`).FindAllStringSubmatch(out, -1) {
		t.Errorf("in the VM: %s %s", m[1], m[2])
	}
	if !regexp.MustCompile(`--- PASS: TestKubeNode `).MatchString(out) {
		t.Errorf("TestKubeNode did not pass in the VM")
	}
	if code != 0 {
		t.Errorf("guest test binary exited %d", code)
	}
}

// kubePod is what a test reads of one pod's (single) container.
type kubePod struct {
	name, uid, qos, ctrID string
	first                 map[string]string // the files as the container's first instruction saw them
	want                  map[string]string // what they must hold
	optedIn               bool
	resolved              int64 // the request the plugin resolved
	specRequest           int64 // the pod spec's memory request
}

// TestKubeNode runs the real-node scenarios, in order, on one node.
func TestKubeNode(t *testing.T) {
	if os.Getenv(envInVM) != "1" {
		t.Log("the real node's guest side: runs inside the VM of TestKubeNodeVM and TestKubeNodeV1VM")
		return
	}
	e := loadEnv(t)
	r := newRuntime(t, e)
	r.importImage()
	k := startControlPlane(t, r)
	k.startKubelet(kubeletOptions{memoryQoS: true, reservation: "None"})
	v2 := e.version == 2
	t.Logf("kubelet on cgroup v%d", e.version)
	writeFirstScript(t)
	classes := readTestdata(t, "kube/classes.yaml")
	static := readTestdata(t, "kube/static.yaml")
	names := []string{"ls", "burst", "be", "plain"}
	// A static pod's API object is its mirror pod, named after the node.
	const staticName = "static-ls-" + kubeNodeName

	// What kubelet alone gives each pod: the files the plugin leaves alone
	// must keep exactly that.
	alone := map[string]map[string]string{}
	alonePod := map[string]map[string]string{} // the pod cgroup's memory.min and memory.low (v2)
	t.Run("KubeletAlone", func(t *testing.T) {
		defer k.useT(t)()
		k.apply(classes)
		k.addStatic(static)
		for _, name := range append(names, staticName) {
			kp := k.waitFirst(name)
			alone[name] = kp.first
			if v2 {
				alonePod[name] = snapshot(t, filepath.Dir(r.cgroupDir(kp.ctrID)), podFiles)
			}
			t.Logf("kubelet alone, %s: %v, pod %v", name, alone[name], alonePod[name])
		}
		k.deletePods(names...)
		k.removeStatic(staticName)
	})
	var ancestorsAlone map[string]string
	if v2 {
		ancestorsAlone = readAncestors(t)
	}

	// The reconciler off: what the containers have comes from the creation
	// alone, no repair.
	p := r.startPlugin("reconciler:\n  enabled: false\n")
	var pods []kubePod
	t.Run("FirstInstruction", func(t *testing.T) {
		defer k.useT(t)()
		k.apply(classes)
		k.addStatic(static)
		pods = k.checkCreated(t, p.repairs, k.explain(classes+"\n---\n"+static, true, "None"), append(names, staticName), alone)
	})

	// The plugin restarted with the reconciler on, as it runs on a node.
	p.stop()
	p = r.startPlugin(e2eConfig)
	t.Run("PluginRestart", func(t *testing.T) {
		defer k.useT(t)()
		for _, kp := range pods {
			if now := snapshot(t, r.cgroupDir(kp.ctrID), kubeFiles(e.version)); !maps.Equal(now, kp.want) {
				t.Errorf("%s: %v after the plugin's restart, want %v", kp.name, now, kp.want)
			}
		}
	})
	k.removeStatic(staticName)

	// Scenario 3: kubelet's QoS and pod updates against the plugin's raises
	// of the ancestors, for 150 s (kubelet's periodic QoS update runs every
	// 60 s; with memoryReservationPolicy None kubelet v1.37.2 writes the QoS
	// values only at its start), with a kubelet restart in the middle (it
	// resets the QoS cgroups to 0): protection is never gone for longer
	// than the plugin's ancestorInterval (2 s) + 1 s, and the plugin's
	// repairs show in its metrics.
	if v2 { // cgroup v1 has no memory.min / memory.low
		t.Run("Ancestors", func(t *testing.T) {
			defer k.useT(t)()
			before, _ := ancestorRepairs(t)
			dirs := []string{filepath.Join(cgroupMount, "kubepods"), filepath.Join(cgroupMount, "kubepods/burstable")}
			for _, name := range []string{"ls", "burst"} {
				dirs = append(dirs, filepath.Dir(r.cgroupDir(k.containerID(name))))
			}
			below := k.watchAncestors(t, 150*time.Second, 3*time.Second, 60*time.Second, dirs)
			after, _ := ancestorRepairs(t)
			t.Logf("%d samples below the plugin's values; ancestor repairs %v -> %v", below, before, after)
			if after["/kubepods"] <= before["/kubepods"] {
				t.Errorf("no repair of /kubepods counted after kubelet's restart reset it: %v -> %v", before, after)
			}
			k.waitRegistered()
		})
	}

	t.Run("BadClass", func(t *testing.T) {
		defer k.useT(t)()
		k.apply(readTestdata(t, "kube/bad-class.yaml"))
		var msg string
		wait.For(t, 2*time.Minute, "an event of pod bad with the plugin's error", func() bool {
			out, err := k.kubectl("get", "events", "--field-selector", "involvedObject.name=bad",
				"-o", `jsonpath={range .items[*]}{.reason}: {.message}{"\n"}{end}`)
			for _, line := range strings.Split(out, "\n") {
				if err == nil && strings.Contains(line, "unknown class") {
					msg = line
					return true
				}
			}
			return false
		})
		t.Logf("event: %s", msg)
		for _, want := range []string{`"no-such-class"`, "memqos.nri.io/class", "allowed: "} {
			if !strings.Contains(msg, want) {
				t.Errorf("the event does not name %s: %s", want, msg)
			}
		}
		if desc := k.mustKubectl("describe", "pod", "bad"); !strings.Contains(desc, "unknown class") {
			t.Errorf("kubectl describe pod bad shows no plugin error:\n%s", desc)
		}
		k.expectRunning(names...)
		k.deletePods("bad")
	})

	t.Run("Restarts", func(t *testing.T) {
		defer k.useT(t)()
		before := map[string]map[string]string{}
		ids := map[string]string{}
		for _, name := range names {
			ids[name] = k.containerID(name)
			before[name] = snapshot(t, r.cgroupDir(ids[name]), kubeFiles(e.version))
		}
		r.restart()
		p.waitSynced(2)
		// kubelet notices the restarted runtime on its next relist.
		time.Sleep(15 * time.Second)
		for _, name := range names {
			if id := k.containerID(name); id != ids[name] {
				t.Errorf("%s: container %s replaced by %s after the restarts", name, ids[name], id)
				continue
			}
			if now := snapshot(t, r.cgroupDir(ids[name]), kubeFiles(e.version)); !maps.Equal(now, before[name]) {
				t.Errorf("%s: after the restarts %v, before %v", name, now, before[name])
			}
		}
		k.expectRunning(names...)
		out := k.mustKubectl("get", "events", "-o", `jsonpath={range .items[*]}{.type} {.reason} {.involvedObject.name}: {.message}{"\n"}{end}`)
		for _, line := range strings.Split(out, "\n") {
			// The node's own warnings (cgroup v1 is deprecated) are not the pods'.
			if strings.HasPrefix(line, "Warning ") && !strings.Contains(line, " bad: ") && !strings.Contains(line, " "+kubeNodeName+": ") {
				t.Errorf("warning event: %s", line)
			}
		}
	})

	t.Run("Delete", func(t *testing.T) {
		defer k.useT(t)()
		k.deletePods(names...)
		if !v2 {
			return
		}
		wait.For(t, 10*time.Second, "the ancestors to hold what kubelet alone gave them", func() bool {
			return maps.Equal(readAncestors(t), ancestorsAlone)
		})
	})

	if !v2 {
		return // kubelet's MemoryQoS is cgroup v2's
	}

	// kubelet's memoryReservationPolicy TieredReservation: the request
	// arrives exactly through kubelet's unified memory.min / memory.low, at
	// creation and at an in-place resize.
	k.stopKubelet()
	k.startKubelet(kubeletOptions{memoryQoS: true, reservation: "TieredReservation"})
	t.Run("TieredReservation", func(t *testing.T) {
		defer k.useT(t)()
		k.apply(classes)
		for _, kp := range k.checkCreated(t, p.repairs, k.explain(classes, true, "TieredReservation"), names, nil) {
			if kp.optedIn && kp.specRequest > 0 && kp.resolved != kp.specRequest {
				t.Errorf("%s: the plugin resolved the request as %d, the spec says %d", kp.name, kp.resolved, kp.specRequest)
			}
		}
	})
	t.Run("TieredAncestors", func(t *testing.T) {
		defer k.useT(t)()
		// kubelet's own QoS values for these pods: kubepods memory.min the
		// Guaranteed and Burstable requests (ls 128Mi; burst 100Mi, plain
		// 64Mi), kubepods and kubepods/burstable memory.low the Burstable
		// ones. The plugin's writes never take them lower, for 70 s (one
		// periodic QoS update of kubelet at least).
		kubelet := map[string]int64{"kubepods/memory.min": 292 * mi, "kubepods/memory.low": 164 * mi, "kubepods/burstable/memory.low": 164 * mi}
		wait.Until(t, 70*time.Second, func() string {
			for f, want := range kubelet {
				if v, err := readCgroupInt(filepath.Join(cgroupMount, filepath.Dir(f)), filepath.Base(f)); err != nil || v < want {
					return fmt.Sprintf("%s = %d, below kubelet's %d (%v)", f, v, want, err)
				}
			}
			return ""
		})
		dirs := []string{filepath.Join(cgroupMount, "kubepods"), filepath.Join(cgroupMount, "kubepods/burstable")}
		for _, name := range []string{"ls", "burst"} {
			dirs = append(dirs, filepath.Dir(r.cgroupDir(k.containerID(name))))
		}
		k.watchAncestors(t, 70*time.Second, 3*time.Second, 0, dirs)
	})
	t.Run("Resize", func(t *testing.T) {
		defer k.useT(t)()
		for _, step := range []struct{ request, limit int64 }{{150 * mi, 320 * mi}, {80 * mi, 200 * mi}} {
			k.resize("burst", step.request, step.limit)
			dir := r.cgroupDir(k.containerID("burst"))
			want := map[string]string{
				"memory.max":  strconv.FormatInt(step.limit, 10),
				"memory.low":  strconv.FormatInt(step.request, 10),
				"memory.high": strconv.FormatInt(kubeletMemoryHigh(step.request, step.limit), 10),
			}
			podWant := map[string]string{"memory.low": strconv.FormatInt(step.request, 10)}
			wait.Until(t, time.Minute, func() string {
				got := optSnapshot(dir, []string{"memory.max", "memory.low", "memory.high"})
				podGot := optSnapshot(filepath.Dir(dir), []string{"memory.low"})
				if maps.Equal(got, want) && maps.Equal(podGot, podWant) {
					return ""
				}
				return fmt.Sprintf("resized to request %d, limit %d: container %v, want %v; pod %v, want %v",
					step.request, step.limit, got, want, podGot, podWant)
			})
		}
	})
	k.deletePods(names...)

	// Why the plugin caps memory.min below the limit where kubelet does
	// not: TieredReservation gives a Guaranteed container memory.min =
	// request = limit, and the pod's memory.max is that same limit (its
	// sandbox's few pages on top), so the pod reaches its limit first and
	// reclaims there, where the container's memory.min forbids touching its
	// page cache: clean, reclaimable cache gets it OOM-killed. With the
	// latency-sensitive class (memory.min 0.9 x limit) the same reads run
	// through.
	t.Run("TieredGuaranteedCache", func(t *testing.T) {
		defer k.useT(t)()
		k.guaranteedCache(t)
	})

	// MemoryQoS off: kubelet passes no unified memory keys; a Burstable
	// request arrives through oom_score_adj only, rounded as explain says.
	k.stopKubelet()
	k.startKubelet(kubeletOptions{memoryQoS: false})
	t.Run("MemoryQoSOff", func(t *testing.T) {
		defer k.useT(t)()
		k.apply(classes)
		k.checkCreated(t, p.repairs, k.explain(classes, false, ""), names, nil)
	})
	k.deletePods(names...)

	// Scenario 7: the plugin installed as a cluster operator does, with
	// kubectl apply -k config/, and uninstalled as the README says. kubelet
	// as in KubeletAlone, so that what it alone gives is known.
	p.stop()
	k.stopKubelet()
	k.startKubelet(kubeletOptions{memoryQoS: true, reservation: "None"})
	k.daemonSetRound(t, classes, names, kubeletAlone{alone, alonePod, ancestorsAlone})
}

// kubeletAlone is what kubelet alone (no plugin, memoryReservationPolicy
// None) gives the test pods: their containers' files, their pod cgroups'
// memory.min and memory.low, and the QoS cgroups' (readAncestors).
type kubeletAlone struct {
	containers, pods map[string]map[string]string
	ancestors        map[string]string
}

// daemonSetRound installs the plugin with kubectl apply -k config/, creates
// the pods of classes (names), checks their values against explain, then
// uninstalls the plugin as the README says and checks that nothing of it
// is left.
func (k *kubeNode) daemonSetRound(t *testing.T, classes string, names []string, alone kubeletAlone) {
	r := k.r
	t.Run("DaemonSet", func(t *testing.T) {
		defer k.useT(t)()
		k.installDaemonSet(t)
		k.apply(classes)
		pods := k.checkCreated(t, k.daemonSetRepairs, k.explain(classes, true, "None"), names, alone.containers)
		k.uninstallDaemonSet(t)
		// Nothing of the plugin is left: the containers hold what kubelet
		// alone gives them, their pods' and the QoS cgroups' protection is
		// kubelet's again, and the state file is gone.
		for _, kp := range pods {
			if now := snapshot(t, r.cgroupDir(kp.ctrID), kubeFiles(r.env.version)); !maps.Equal(now, alone.containers[kp.name]) {
				t.Errorf("%s after the uninstall: %v, kubelet alone %v", kp.name, now, alone.containers[kp.name])
			}
			if now := snapshot(t, filepath.Dir(r.cgroupDir(kp.ctrID)), podFiles); !maps.Equal(now, alone.pods[kp.name]) {
				t.Errorf("pod %s after the uninstall: %v, kubelet alone %v", kp.name, now, alone.pods[kp.name])
			}
		}
		if now := readAncestors(t); !maps.Equal(now, alone.ancestors) {
			t.Errorf("ancestors after the uninstall: %v, kubelet alone %v", now, alone.ancestors)
		}
		if _, err := os.Stat(filepath.Join(daemonSetStateDir, "ancestors.json")); !os.IsNotExist(err) {
			t.Errorf("the plugin's state file is still there after the cleanup (%v)", err)
		}
		k.expectRunning(names...)
	})
	k.deletePods(names...)
}

// podFiles are the pod cgroup's files the plugin raises (cgroup v2).
var podFiles = []string{"memory.min", "memory.low"}

// daemonSetStateDir is the DaemonSet's state hostPath.
const daemonSetStateDir = "/run/nri-memqos"

// kubeCNI is the pod network of the DaemonSet scenario (the plugin's pod
// is not host-network): ptp veth pairs, addresses from TEST-NET-3, no
// masquerading (nothing leaves the VM).
const kubeCNI = `{
  "cniVersion": "1.0.0",
  "name": "e2e",
  "plugins": [
    {
      "type": "ptp",
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "203.0.113.0/24"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": %q
      }
    }
  ]
}
`

// installDaemonSet gives the node a pod network and the runtime's NRI
// socket at /var/run/nri (where the DaemonSet mounts it from), imports the
// plugin's image (make image), starts the controllers and the scheduler,
// applies config/ with kubectl apply -k and waits until the plugin's pod
// is ready (its readiness probe: registered with the runtime).
func (k *kubeNode) installDaemonSet(t *testing.T) {
	t.Helper()
	r := k.r
	cni := fmt.Sprintf(kubeCNI, filepath.Join(r.dir, "cni-ipam"))
	if err := os.WriteFile(filepath.Join(r.cniConfDir, "10-e2e.conflist"), []byte(cni), 0o644); err != nil {
		t.Fatal(err)
	}
	const nriDir = "/var/run/nri"
	if err := os.MkdirAll(nriDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(filepath.Dir(r.nriSock), nriDir, "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount the NRI socket directory on %s: %v", nriDir, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(nriDir, syscall.MNT_DETACH) })
	r.importTarball(os.Getenv(envImage))
	k.startControllers()
	// The node turns Ready once containerd has loaded the network.
	k.mustKubectl("wait", "--for=condition=Ready", "node/"+kubeNodeName, "--timeout=120s")
	k.mustKubectl("apply", "-k", kubeConfigDir)
	start := time.Now()
	if out, err := k.kubectl("-n", "nri-memqos", "rollout", "status", "daemonset/nri-memqos", "--timeout=240s"); err != nil {
		desc, _ := k.kubectl("-n", "nri-memqos", "describe", "pods")
		t.Fatalf("%v\n%s\n%s", err, out, desc)
	}
	t.Logf("the DaemonSet's pod ready after %v:\n%s", time.Since(start).Round(100*time.Millisecond),
		k.mustKubectl("-n", "nri-memqos", "get", "pods", "-o", "wide"))
}

// kubeConfigDir is config/ in the VM.
const kubeConfigDir = "/e2e/config"

// daemonSetRepairs counts the DaemonSet plugin's drift repairs in its log
// (kubectl logs: apiserver to kubelet on the node IP).
func (k *kubeNode) daemonSetRepairs() int {
	k.t.Helper()
	return strings.Count(k.mustKubectl("-n", "nri-memqos", "logs", "daemonset/nri-memqos"), repairLine)
}

// uninstallDaemonSet uninstalls the plugin as config/deploy/cleanup-job.yaml
// (and the README) say: the DaemonSet goes first, then the cleanup Job runs
// on the node, then kubectl delete -k removes the rest.
func (k *kubeNode) uninstallDaemonSet(t *testing.T) {
	t.Helper()
	k.mustKubectl("-n", "nri-memqos", "delete", "daemonset", "nri-memqos", "--cascade=foreground", "--timeout=180s")
	job, err := os.ReadFile(filepath.Join(kubeConfigDir, "deploy", "cleanup-job.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := k.kubectlIn([]byte(strings.ReplaceAll(string(job), "NODE_NAME", kubeNodeName)), "apply", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := k.kubectl("-n", "nri-memqos", "wait", "--for=condition=complete", "job",
		"-l", "app.kubernetes.io/component=cleanup", "--timeout=300s"); err != nil {
		desc, _ := k.kubectl("-n", "nri-memqos", "describe", "job,pods")
		t.Fatalf("%v\n%s\n%s", err, out, desc)
	}
	t.Logf("cleanup:\n%s", k.mustKubectl("-n", "nri-memqos", "logs", "-l", "app.kubernetes.io/component=cleanup", "--prefix", "--tail=-1"))
	k.mustKubectl("delete", "-k", kubeConfigDir, "--ignore-not-found", "--timeout=180s")
}

// repairLine is what the plugin logs for each drift repair.
const repairLine = "a value the plugin set was changed"

// repairs counts the plugin's drift repairs in its log.
func (p *plugin) repairs() int { return strings.Count(p.log.String(), repairLine) }

// useT makes t the test k's helpers report to (a subtest's, so that they
// may fail it) until the returned function restores the previous one.
func (k *kubeNode) useT(t *testing.T) (restore func()) {
	prev := k.t
	k.t = t
	return func() { k.t = prev }
}

// guaranteedCache runs testdata/kube/cache.yaml's two pods, each reading
// twice a file of twice its limit, and checks that the one with kubelet's
// memory.min = limit is OOM-killed while the latency-sensitive one reads
// through and runs on.
func (k *kubeNode) guaranteedCache(t *testing.T) {
	data := filepath.Join(os.Getenv(envDataDir), "kube-cache")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "cache-file"), make([]byte, 128*mi), 0o644); err != nil {
		t.Fatal(err)
	}
	// The file's pages out of the page cache (the VM's), so that the pods'
	// reads charge them to the pods.
	syscall.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0o200); err != nil {
		t.Fatal(err)
	}
	k.apply(strings.ReplaceAll(readTestdata(t, "kube/cache.yaml"), "DATA_DIR", data))
	defer k.deletePods("cache-kubelet", "cache-ls")
	// state is a pod's phase, its container's termination reason and ID,
	// and the container's log.
	type state struct{ phase, reason, id, log string }
	get := func(name string) state {
		out, _ := k.kubectl("get", "pod", name, "-o",
			`jsonpath={.status.phase},{.status.containerStatuses[0].state.terminated.reason},{.status.containerStatuses[0].containerID}`)
		var st state
		if f := strings.Split(strings.TrimSpace(out), ","); len(f) == 3 {
			st.phase, st.reason, st.id = f[0], f[1], strings.TrimPrefix(f[2], "containerd://")
		}
		if st.id != "" {
			st.log, _ = k.r.crictl("logs", st.id)
		}
		return st
	}
	// describe is a pod's state and its cgroups' memory, for the log.
	describe := func(name string, st state) string {
		if st.id == "" {
			return fmt.Sprintf("%s: %+v", name, st)
		}
		dir := k.r.cgroupDir(st.id)
		return fmt.Sprintf("%s: %s %s, container %v, pod %v, log %q", name, st.phase, st.reason,
			optSnapshot(dir, []string{"memory.min", "memory.current", "memory.max"}),
			optSnapshot(filepath.Dir(dir), []string{"memory.current", "memory.max", "memory.events"}), strings.TrimSpace(st.log))
	}
	var kubelet, ls state
	start := time.Now()
	last := start
	wait.Until(t, 4*time.Minute, func() string {
		time.Sleep(2 * time.Second) // kubectl and crictl cost CPU the readers need
		k.checkAlive()
		kubelet, ls = get("cache-kubelet"), get("cache-ls")
		if ls.phase == "Failed" || ls.phase == "Succeeded" {
			t.Fatalf("cache-ls ended: %s", describe("cache-ls", ls))
		}
		msg := describe("cache-kubelet", kubelet) + "; " + describe("cache-ls", ls)
		if time.Since(last) > 30*time.Second {
			last = time.Now()
			t.Logf("%.0fs: %s", time.Since(start).Seconds(), msg)
		}
		if kubelet.phase != "Failed" && kubelet.phase != "Succeeded" || ls.phase != "Running" || !strings.Contains(ls.log, "read-done") {
			return msg
		}
		t.Logf("after %.0fs: %s", time.Since(start).Seconds(), msg)
		return ""
	})
	if kubelet.phase != "Failed" || kubelet.reason != "OOMKilled" {
		t.Errorf("cache-kubelet (kubelet's memory.min = limit): %s %s, want Failed OOMKilled", kubelet.phase, kubelet.reason)
	}
	// 0.9 x 64Mi, page-aligned: the latency-sensitive class's memory.min.
	dir := k.r.cgroupDir(ls.id)
	want := map[string]string{"memory.min": "60395520", "memory.max": strconv.FormatInt(64*mi, 10)}
	if got := snapshot(t, dir, []string{"memory.min", "memory.max"}); !maps.Equal(got, want) {
		t.Errorf("cache-ls: %v, want %v", got, want)
	}
	if n := optEvent(filepath.Dir(dir), "oom_kill"); n != 0 {
		t.Errorf("cache-ls's pod counted %d OOM kills", n)
	}
}

// checkCreated waits for each pod of names to report its first values and
// checks them, and the files a moment later, against explain's decision
// (rep): the keys the plugin sets hold its values, the others what kubelet
// alone gave the pod (alone; nil: what the container saw first). For 5 s
// after the last pod reported, every 100 ms, nothing changes them, and the
// plugin repairs nothing.
func (k *kubeNode) checkCreated(t *testing.T, repairs func() int, rep *explain.Report, names []string, alone map[string]map[string]string) []kubePod {
	t.Helper()
	repairsBefore := repairs()
	v1 := k.r.env.version == 1
	files := kubeFiles(k.r.env.version)
	var pods []kubePod
	for _, name := range names {
		kp := k.waitFirst(name)
		c := explained(t, rep, strings.TrimSuffix(name, "-"+kubeNodeName))
		want := maps.Clone(alone[name])
		if alone == nil {
			want = maps.Clone(kp.first)
		}
		dec := c.V2.Decided
		if v1 {
			dec = c.V1.Decided
			for f, v := range map[string]*int64{"memory.soft_limit_in_bytes": c.V1.SoftLimit, "memory.swappiness": c.V1.Swappiness} {
				if v != nil {
					want[f] = strconv.FormatInt(*v, 10)
				}
			}
			if dec.SetLimit > 0 {
				want["memory.limit_in_bytes"] = strconv.FormatInt(dec.SetLimit, 10)
			}
			if m := c.V1.MemSwLimit; m != nil && *m < 0 {
				want["memory.memsw.limit_in_bytes"] = v1Unlimited
			} else if m != nil {
				want["memory.memsw.limit_in_bytes"] = strconv.FormatInt(*m, 10)
			}
		} else {
			maps.Copy(want, c.V2.Unified)
			if dec.SetLimit > 0 {
				want["memory.max"] = strconv.FormatInt(dec.SetLimit, 10)
			}
		}
		now := snapshot(t, k.r.cgroupDir(kp.ctrID), files)
		t.Logf("%s (%s): class %q, request %d from %s; first %v", name, kp.qos, c.Class, dec.Request, dec.RequestSource, kp.first)
		for _, f := range files {
			if kp.first[f] != want[f] {
				t.Errorf("%s: %s at the first instruction = %q, want %q", name, f, kp.first[f], want[f])
			}
			if now[f] != want[f] {
				t.Errorf("%s: %s now = %q, want %q", name, f, now[f], want[f])
			}
		}
		kp.optedIn = c.OptedIn
		kp.resolved = k.resolvedRequest(kp.ctrID)
		if c.OptedIn && kp.resolved != dec.Request {
			t.Errorf("%s: the plugin resolved the request as %d, explain as %d", name, kp.resolved, dec.Request)
		}
		if c.Spec != nil && c.Spec.MemoryRequest != nil {
			kp.specRequest = *c.Spec.MemoryRequest
		}
		kp.want = want
		pods = append(pods, kp)
	}
	// Nothing takes the values away afterwards (kubelet's pod syncs).
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		for _, kp := range pods {
			if now := snapshot(t, k.r.cgroupDir(kp.ctrID), files); !maps.Equal(now, kp.want) {
				t.Fatalf("%s: %v, want %v", kp.name, now, kp.want)
			}
		}
	}
	if n := repairs() - repairsBefore; n > 0 {
		t.Errorf("the plugin repaired %d values: they did not stick", n)
	}
	return pods
}

// watchAncestors samples memory.min and memory.low of dirs every second
// for d and reports each file that stayed below its floor for longer than
// limit; floor is the value a file holds at the start (files at 0 are not
// watched). restartAt, when non-zero, restarts kubelet that far in (its
// start resets the QoS cgroups' values). It returns how many samples were
// below their floor.
func (k *kubeNode) watchAncestors(t *testing.T, d, limit, restartAt time.Duration, dirs []string) int {
	t.Helper()
	type watched struct {
		floor      int64
		belowSince time.Time
		reported   bool
	}
	files := map[string]*watched{}
	for _, dir := range dirs {
		for _, f := range []string{"memory.min", "memory.low"} {
			if v, err := readCgroupInt(dir, f); err == nil && v > 0 {
				files[filepath.Join(dir, f)] = &watched{floor: v}
			}
		}
	}
	if len(files) == 0 {
		t.Fatalf("no ancestor of %v holds any protection", dirs)
	}
	below := 0
	start := time.Now()
	restarted := restartAt == 0
	for now := start; now.Sub(start) < d; now = time.Now() {
		if !restarted && now.Sub(start) >= restartAt {
			restarted = true
			k.restartKubelet()
		}
		for path, w := range files {
			v, err := readCgroupInt(filepath.Dir(path), filepath.Base(path))
			if err != nil {
				t.Fatal(err)
			}
			if v >= w.floor {
				w.belowSince = time.Time{}
				continue
			}
			below++
			if w.belowSince.IsZero() {
				w.belowSince = now
				t.Logf("%.0fs: %s = %d, below %d", now.Sub(start).Seconds(), path, v, w.floor)
			}
			if gone := now.Sub(w.belowSince); gone > limit && !w.reported {
				w.reported = true
				t.Errorf("%s below %d for %v (more than %v)", path, w.floor, gone.Round(time.Second), limit)
			}
		}
		time.Sleep(time.Second)
	}
	return below
}

// resize changes pod name's container app's memory request and limit in
// place, through the resize subresource.
func (k *kubeNode) resize(name string, request, limit int64) {
	k.t.Helper()
	patch := fmt.Sprintf(`{"spec":{"containers":[{"name":"app","resources":{"requests":{"memory":"%d"},"limits":{"memory":"%d"}}}]}}`, request, limit)
	k.mustKubectl("patch", "pod", name, "--subresource", "resize", "-p", patch)
}

// kubeFiles are the memory files the real-node tests compare: on cgroup v1
// also memory.memsw.limit_in_bytes (the VM's kernel accounts swap; kubelet
// sets it to the limit).
func kubeFiles(version int) []string {
	if version == 1 {
		return append(slices.Clone(v1Files), "memory.memsw.limit_in_bytes")
	}
	return v2Files
}

// kubeAncestors are the cgroups above every pod's, relative to the cgroup
// mount (cgroupfs driver).
var kubeAncestors = []string{"kubepods", "kubepods/burstable", "kubepods/besteffort"}

// readAncestors reads memory.min and memory.low of kubeAncestors.
func readAncestors(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, a := range kubeAncestors {
		for _, f := range []string{"memory.min", "memory.low"} {
			b, err := os.ReadFile(filepath.Join(cgroupMount, a, f))
			if err != nil {
				t.Fatal(err)
			}
			m[a+"/"+f] = strings.TrimSpace(string(b))
		}
	}
	return m
}

// containerID is the ID of pod name's only container.
func (k *kubeNode) containerID(name string) string {
	k.t.Helper()
	out := k.mustKubectl("get", "pod", name, "-o", "jsonpath={.status.containerStatuses[0].containerID}")
	return strings.TrimPrefix(strings.TrimSpace(out), "containerd://")
}

// expectRunning checks that each pod runs and never restarted.
func (k *kubeNode) expectRunning(names ...string) {
	k.t.Helper()
	for _, name := range names {
		out := k.mustKubectl("get", "pod", name, "-o", "jsonpath={.status.phase} {.status.containerStatuses[0].restartCount}")
		if strings.TrimSpace(out) != "Running 0" {
			k.t.Errorf("pod %s: phase and restarts %q, want Running 0", name, out)
		}
	}
}

// kubeFirstScript is /run/e2e/first.sh, which every test pod runs: it prints
// the memory files of its own cgroup (cgroup v2: /sys/fs/cgroup is the
// container's cgroup; v1: /sys/fs/cgroup/memory) as they are at the
// container's first instruction, then sleeps.
const kubeFirstScript = `for f in memory.min memory.low memory.high memory.max memory.swap.max memory.oom.group \
         memory/memory.limit_in_bytes memory/memory.soft_limit_in_bytes memory/memory.swappiness \
         memory/memory.memsw.limit_in_bytes; do
  [ -e "/sys/fs/cgroup/$f" ] && echo "first: ${f#memory/}=$(cat /sys/fs/cgroup/$f)"
done
echo "first: done"
exec sleep 1000000
`

func writeFirstScript(t *testing.T) {
	t.Helper()
	if err := os.MkdirAll("/run/e2e", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/run/e2e/first.sh", []byte(kubeFirstScript), 0o755); err != nil {
		t.Fatal(err)
	}
}

// addStatic puts a static pod's manifest into kubelet's staticPodPath.
func (k *kubeNode) addStatic(manifest string) {
	k.t.Helper()
	if err := os.WriteFile(filepath.Join(k.dir, "manifests", "static.yaml"), []byte(manifest), 0o644); err != nil {
		k.t.Fatal(err)
	}
}

// removeStatic removes the static pod and waits until its mirror pod is gone.
func (k *kubeNode) removeStatic(mirror string) {
	k.t.Helper()
	if err := os.Remove(filepath.Join(k.dir, "manifests", "static.yaml")); err != nil {
		k.t.Fatal(err)
	}
	wait.For(k.t, 2*time.Minute, "static pod "+mirror+" to go", func() bool {
		_, err := k.kubectl("get", "pod", mirror)
		return err != nil && strings.Contains(err.Error(), "NotFound")
	})
}

// readTestdata reads testdata/<rel>.
func readTestdata(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitFirst waits until pod name's container has printed its first values
// and returns them with the pod's facts.
func (k *kubeNode) waitFirst(name string) kubePod {
	t := k.t
	t.Helper()
	var kp kubePod
	wait.For(t, 3*time.Minute, "pod "+name+" to report its first values", func() bool {
		k.checkAlive()
		out, err := k.kubectl("get", "pod", name, "-o", "json")
		if err != nil {
			return false
		}
		var v struct {
			Metadata struct {
				UID string `json:"uid"`
			} `json:"metadata"`
			Status struct {
				QOSClass          string `json:"qosClass"`
				ContainerStatuses []struct {
					ContainerID string `json:"containerID"`
					State       struct {
						Running *struct{} `json:"running"`
					} `json:"state"`
				} `json:"containerStatuses"`
			} `json:"status"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("kubectl get pod %s: %v", name, err)
		}
		if len(v.Status.ContainerStatuses) == 0 || v.Status.ContainerStatuses[0].State.Running == nil {
			return false
		}
		id := strings.TrimPrefix(v.Status.ContainerStatuses[0].ContainerID, "containerd://")
		logs, err := k.r.crictl("logs", id)
		if err != nil || !strings.Contains(logs, "first: done") {
			return false
		}
		kp = kubePod{name: name, uid: v.Metadata.UID, qos: v.Status.QOSClass, ctrID: id, first: map[string]string{}}
		for _, line := range strings.Split(logs, "\n") {
			if kv, ok := strings.CutPrefix(strings.TrimSpace(line), "first: "); ok {
				if key, val, ok := strings.Cut(kv, "="); ok {
					kp.first[key] = val
				}
			}
		}
		return true
	})
	return kp
}

// deletePods deletes pods and waits until they are gone.
func (k *kubeNode) deletePods(names ...string) {
	k.t.Helper()
	k.mustKubectl(append([]string{"delete", "pod", "--wait=true", "--timeout=120s"}, names...)...)
}

// explain runs nri-memqos explain on manifest as kubelet with the given
// memoryReservationPolicy would hand its pods to the plugin.
func (k *kubeNode) explain(manifest string, memoryQoS bool, reservation string) *explain.Report {
	t := k.t
	t.Helper()
	path := filepath.Join(k.dir, "explain-input.yaml")
	if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"explain", "-o", "json"}
	if memoryQoS {
		args = append(args, "-kubelet-memory-qos")
	}
	if reservation != "" {
		args = append(args, "-kubelet-memory-reservation", reservation)
	}
	out, err := exec.Command(k.r.bin("nri-memqos"), append(args, path)...).Output()
	if err != nil && len(out) == 0 {
		t.Fatalf("explain: %v", err)
	}
	var rep explain.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("explain output: %v\n%s", err, out)
	}
	return &rep
}

// explained is explain's result for pod name's only container.
func explained(t *testing.T, rep *explain.Report, name string) explain.ContainerResult {
	t.Helper()
	for _, p := range rep.Pods {
		if p.Name == name {
			if len(p.Containers) != 1 {
				t.Fatalf("explain: pod %s has %d containers", name, len(p.Containers))
			}
			return p.Containers[0]
		}
	}
	t.Fatalf("explain: no pod %s", name)
	return explain.ContainerResult{}
}

// resolvedRequest is the request the plugin resolved for a container, from
// the annotation it adds at creation (0: none).
func (k *kubeNode) resolvedRequest(ctrID string) int64 {
	k.t.Helper()
	out := k.r.mustCrictl("inspect", "-o", "json", ctrID)
	var v struct {
		Info struct {
			RuntimeSpec struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"runtimeSpec"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		k.t.Fatalf("crictl inspect: %v", err)
	}
	s, ok := v.Info.RuntimeSpec.Annotations["memqos.nri.io/resolved-request"]
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		k.t.Fatalf("resolved-request %q: %v", s, err)
	}
	return n
}
