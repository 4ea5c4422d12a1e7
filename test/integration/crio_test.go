package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"

	"nri-memqos/test/internal/cgtest"
)

// Pods and containers as CRI-O (1.37) hands them to NRI, read from its
// source:
//
//   - server/nri-api.go (criPodSandbox, criContainer) and
//     internal/nri/{sandbox,container}_linux.go: the pod's Labels and
//     Annotations are the CRI sandbox config's; Linux.CgroupParent is
//     Sandbox.CgroupParent(), Linux.CgroupsPath the infra container's. A
//     container is its OCI spec: Annotations are the spec's, Labels are
//     decoded from io.kubernetes.cri-o.Labels, Linux.Resources come from
//     spec.Linux.Resources, OomScoreAdj from spec.Process, CgroupsPath from
//     spec.Linux.
//   - server/sandbox_run_linux.go and internal/config/cgmgr: with the
//     systemd driver the cgroup parent is the base name of the slice kubelet
//     passes (kubepods-burstable-pod<uid_>.slice), the infra container's
//     cgroups path <parent>:crio:<sandbox id>; with cgroupfs the parent is
//     kubelet's (/kubepods/burstable/pod<uid>) and the path
//     <parent>/crio-<sandbox id>. Sandbox labels get io.kubernetes.pod.*
//     and io.kubernetes.container.name=POD.
//   - server/container_create.go (setupLinuxResources) and
//     internal/factory/container/container.go: a container's cgroups path is
//     <parent>:crio:<id> (systemd: crio-<id>.scope under the pod slice) or
//     /<parent>/crio-<id> (cgroupfs); its spec annotations are the pod's
//     annotations, then io.kubernetes.cri-o.*, then the container's own CRI
//     annotations and labels (SpecAddAnnotations); memory swap is set to the
//     limit where swap is accounted, unified only on cgroup v2.
//   - internal/config/cgmgr/{systemd,cgroupfs}_linux.go MoveConmonToCgroup:
//     conmon runs in crio-conmon-<id>.scope in system.slice (the systemd
//     default monitor_cgroup) or in the pod slice (conmon_cgroup = "pod"),
//     and with cgroupfs in <parent>/crio-conmon-<id>: a sibling of the
//     container's cgroup, never below it.
//   - server/container_create.go CreateContainer: NRI CreateContainer, then
//     the OCI runtime creates the container (runc create: its cgroup, with
//     the limit), then NRI PostCreateContainer; StartContainer only starts
//     the process.

// crioID is a 64-hex-digit ID, as CRI-O's.
func crioID(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return hex.EncodeToString(sum[:])
}

// crioNode is one node of CRI-O: cgroup version and driver, over an env.
type crioNode struct {
	e       *env
	version int
	systemd bool
}

func (n crioNode) driver() string {
	if n.systemd {
		return "systemd"
	}
	return "cgroupfs"
}

// crioWorkload is one pod with one container ("app"), as kubelet asks
// CRI-O for it.
type crioWorkload struct {
	name, uid string
	// qos is the pod's Kubernetes QoS: "burstable", "besteffort", or ""
	// for Guaranteed.
	qos         string
	labels      map[string]string // the pod's
	annotations map[string]string // the pod's
	limit       int64
	oomScoreAdj int
	kubelet     map[string]string // kubelet's unified map (cgroup v2)
	// conmonInSystemSlice puts conmon in system.slice (the systemd
	// driver's default monitor_cgroup) instead of the pod's cgroup.
	conmonInSystemSlice bool
	// noContainer makes the pod a sandbox without containers.
	noContainer bool

	// Filled by build.
	pod *api.PodSandbox
	ctr *api.Container
	// Cgroup directories relative to the memory hierarchy: the pod's,
	// the container's, its conmon's and the pod's infra container's.
	podRel, ctrRel, conmonRel, infraRel string
	// levels are the ancestors of the container's cgroup, outermost
	// first (kubepods, the QoS level when there is one, the pod).
	levels []string
}

// build makes the workload's pod and container as CRI-O passes them to NRI,
// and its cgroup paths, written out by hand from the layouts above.
func (n crioNode) build(w *crioWorkload) {
	sandboxID, ctrID := crioID("sandbox-"+w.name), crioID("container-"+w.name)
	u := strings.ReplaceAll(w.uid, "-", "_")
	var kubeletParent, parent, infraPath, ctrPath string
	if n.systemd {
		// What kubelet's systemd cgroup driver passes as the CRI cgroup
		// parent; CRI-O keeps its base name.
		if w.qos == "" {
			kubeletParent = "/kubepods.slice/kubepods-pod" + u + ".slice"
			w.levels = []string{"kubepods.slice", "kubepods.slice/kubepods-pod" + u + ".slice"}
		} else {
			q := "kubepods-" + w.qos + ".slice"
			kubeletParent = "/kubepods.slice/" + q + "/kubepods-" + w.qos + "-pod" + u + ".slice"
			w.levels = []string{"kubepods.slice", "kubepods.slice/" + q, "kubepods.slice/" + q + "/kubepods-" + w.qos + "-pod" + u + ".slice"}
		}
		parent = path.Base(kubeletParent)
		infraPath = parent + ":crio:" + sandboxID
		ctrPath = parent + ":crio:" + ctrID
		w.podRel = w.levels[len(w.levels)-1]
		w.ctrRel = w.podRel + "/crio-" + ctrID + ".scope"
		w.infraRel = w.podRel + "/crio-" + sandboxID + ".scope"
		w.conmonRel = w.podRel + "/crio-conmon-" + ctrID + ".scope"
		if w.conmonInSystemSlice {
			w.conmonRel = "system.slice/crio-conmon-" + ctrID + ".scope"
		}
	} else {
		if w.qos == "" {
			kubeletParent = "/kubepods/pod" + w.uid
			w.levels = []string{"kubepods", "kubepods/pod" + w.uid}
		} else {
			kubeletParent = "/kubepods/" + w.qos + "/pod" + w.uid
			w.levels = []string{"kubepods", "kubepods/" + w.qos, "kubepods/" + w.qos + "/pod" + w.uid}
		}
		parent = kubeletParent
		infraPath = parent + "/crio-" + sandboxID
		ctrPath = parent + "/crio-" + ctrID
		w.podRel = w.levels[len(w.levels)-1]
		w.ctrRel = w.podRel + "/crio-" + ctrID
		w.infraRel = w.podRel + "/crio-" + sandboxID
		// cgroupfs accepts only conmon_cgroup = "pod" (or empty).
		w.conmonRel = w.podRel + "/crio-conmon-" + ctrID
	}

	podLabels := maps.Clone(w.labels)
	if podLabels == nil {
		podLabels = map[string]string{}
	}
	maps.Copy(podLabels, map[string]string{
		"io.kubernetes.pod.name":       w.name,
		"io.kubernetes.pod.namespace":  testNamespace,
		"io.kubernetes.pod.uid":        w.uid,
		"io.kubernetes.container.name": "POD",
	})
	podAnnotations := maps.Clone(w.annotations)
	if podAnnotations == nil {
		podAnnotations = map[string]string{}
	}
	maps.Copy(podAnnotations, map[string]string{
		"kubernetes.io/config.seen":   "2026-08-20T10:00:00.000000000Z",
		"kubernetes.io/config.source": "api",
	})
	w.pod = &api.PodSandbox{
		Id:          sandboxID,
		Name:        w.name,
		Uid:         w.uid,
		Namespace:   testNamespace,
		Labels:      podLabels,
		Annotations: podAnnotations,
		Linux:       &api.LinuxPodSandbox{CgroupParent: parent, CgroupsPath: infraPath},
		Pid:         4242,
		Ips:         []string{"10.85.0.7"},
	}
	if w.noContainer {
		return
	}

	// The container's CRI labels and annotations, as kubelet sets them.
	labels := map[string]string{
		"io.kubernetes.container.name": "app",
		"io.kubernetes.pod.name":       w.name,
		"io.kubernetes.pod.namespace":  testNamespace,
		"io.kubernetes.pod.uid":        w.uid,
	}
	kubeAnnotations := map[string]string{
		"io.kubernetes.container.hash":                     "5f1a2b3c",
		"io.kubernetes.container.restartCount":             "0",
		"io.kubernetes.container.terminationMessagePath":   "/dev/termination-log",
		"io.kubernetes.container.terminationMessagePolicy": "File",
		"io.kubernetes.pod.terminationGracePeriod":         "30",
	}
	labelsJSON, _ := json.Marshal(labels)
	kubeJSON, _ := json.Marshal(kubeAnnotations)
	// SpecAddAnnotations: the pod's annotations first, then CRI-O's own,
	// then the container's annotations and labels.
	anns := maps.Clone(w.pod.Annotations)
	maps.Copy(anns, map[string]string{
		"io.kubernetes.cri-o.Image":              "registry.k8s.io/e2e-test-images/agnhost:2.53",
		"io.kubernetes.cri-o.ImageName":          "registry.k8s.io/e2e-test-images/agnhost:2.53",
		"io.kubernetes.cri-o.ImageRef":           crioID("image"),
		"io.kubernetes.cri-o.Name":               "k8s_app_" + w.name + "_" + testNamespace + "_" + w.uid + "_0",
		"io.kubernetes.cri-o.ContainerID":        ctrID,
		"io.kubernetes.cri-o.SandboxID":          sandboxID,
		"io.kubernetes.cri-o.SandboxName":        "k8s_" + w.name + "_" + testNamespace + "_" + w.uid + "_0",
		"io.kubernetes.cri-o.ContainerType":      "container",
		"io.kubernetes.cri-o.LogPath":            "/var/log/pods/" + testNamespace + "_" + w.name + "_" + w.uid + "/app/0.log",
		"io.kubernetes.cri-o.TTY":                "false",
		"io.kubernetes.cri-o.Stdin":              "false",
		"io.kubernetes.cri-o.StdinOnce":          "false",
		"io.kubernetes.cri-o.ResolvPath":         "/run/containers/storage/overlay-containers/" + sandboxID + "/userdata/resolv.conf",
		"io.container.manager":                   "cri-o",
		"io.kubernetes.cri-o.MountPoint":         "/var/lib/containers/storage/overlay/" + crioID("layer-"+w.name) + "/merged",
		"io.kubernetes.cri-o.SeccompProfilePath": "RuntimeDefault",
		"io.kubernetes.cri-o.Created":            "2026-08-20T10:00:01.000000000Z",
		"io.kubernetes.cri-o.Metadata":           `{"name":"app"}`,
		"io.kubernetes.cri-o.Labels":             string(labelsJSON),
		"io.kubernetes.cri-o.Volumes":            "[]",
		"io.kubernetes.cri-o.Annotations":        string(kubeJSON),
	})
	maps.Copy(anns, kubeAnnotations)
	maps.Copy(anns, labels)
	anns["io.kubernetes.cri-o.IP.0"] = "10.85.0.7"
	if n.systemd {
		anns["org.systemd.property.TimeoutStopUSec"] = "uint64 30000000"
		anns["org.systemd.property.DefaultDependencies"] = "true"
		anns["org.systemd.property.After"] = "['crio.service']"
	}

	res := &api.LinuxResources{
		Cpu: &api.LinuxCPU{Shares: api.UInt64(uint64(102)), Quota: api.Int64(int64(50000)), Period: api.UInt64(uint64(100000))},
	}
	if w.limit > 0 {
		// Swap = limit (no swap) where the kernel accounts swap.
		res.Memory = &api.LinuxMemory{Limit: api.Int64(w.limit), Swap: api.Int64(w.limit)}
	}
	if n.version == 2 {
		res.Unified = maps.Clone(w.kubelet)
	}
	w.ctr = &api.Container{
		Id:           ctrID,
		PodSandboxId: sandboxID,
		Name:         "app",
		State:        api.ContainerState_CONTAINER_UNKNOWN,
		Labels:       labels,
		Annotations:  anns,
		Linux: &api.LinuxContainer{
			CgroupsPath: ctrPath,
			Resources:   res,
			OomScoreAdj: api.Int(&w.oomScoreAdj),
		},
	}
}

// dir is the memory directory of rel in the fake tree.
func (n crioNode) dir(rel string) string {
	if n.version == 1 {
		return filepath.Join(n.e.cgRoot, "memory", rel)
	}
	return filepath.Join(n.e.cgRoot, rel)
}

// cgroup lays out a cgroup directory as the kernel shows it fresh, with a
// memory limit (0: none).
func (n crioNode) cgroup(rel string, limit int64) {
	n.e.t.Helper()
	dir := n.dir(rel)
	if n.version == 1 {
		max, memsw := v1Unlimited, v1Unlimited
		if limit > 0 {
			// runc sets memsw to the spec's swap, CRI-O's limit.
			max, memsw = cgtest.Itoa(limit), cgtest.Itoa(limit)
		}
		cgtest.Write(n.e.t, filepath.Join(dir, "memory.soft_limit_in_bytes"), v1SoftLimitDefault+"\n")
		cgtest.Write(n.e.t, filepath.Join(dir, "memory.swappiness"), v1SwappinessDefault+"\n")
		cgtest.Write(n.e.t, filepath.Join(dir, "memory.limit_in_bytes"), max+"\n")
		cgtest.Write(n.e.t, filepath.Join(dir, "memory.memsw.limit_in_bytes"), memsw+"\n")
		return
	}
	max := "max"
	if limit > 0 {
		max = cgtest.Itoa(limit)
	}
	cgtest.ZeroProtection(n.e.t, dir)
	cgtest.Write(n.e.t, filepath.Join(dir, "memory.max"), max+"\n")
	cgtest.Write(n.e.t, filepath.Join(dir, "memory.high"), "max\n")
}

// runPod is RunPodSandbox: kubelet made the pod's cgroup (and on v2 its
// ancestors hold no protection), CRI-O starts the infra container.
func (n crioNode) runPod(w *crioWorkload) {
	n.e.t.Helper()
	if n.version == 2 {
		for _, l := range w.levels {
			cgtest.ZeroProtection(n.e.t, n.dir(l))
		}
	}
	n.cgroup(w.infraRel, 0)
	n.e.runPod(w.pod)
}

// runtimeCreate is what CRI-O does between NRI CreateContainer and
// PostCreateContainer: the OCI runtime creates the container's cgroup with
// its limit, conmon gets its own cgroup next to it.
func (n crioNode) runtimeCreate(w *crioWorkload) {
	n.e.t.Helper()
	n.cgroup(w.ctrRel, w.limit)
	n.cgroup(w.conmonRel, 0)
}

// postCreate relays PostCreateContainer for a created container.
func (e *env) postCreate(id string) {
	e.t.Helper()
	pod, c := e.lookup(id)
	if err := e.nri.PostCreateContainer(ctx(e.t), &adaptation.PostCreateContainerRequest{Pod: pod, Container: c}); err != nil {
		e.t.Fatalf("PostCreateContainer %s: %v", id, err)
	}
}

// deploy runs the workload's pod and, unless it has none, creates its
// container (checking the creation adjustment holds want, on cgroup v2,
// and the resolved request) and, when start, starts it.
func (n crioNode) deploy(w *crioWorkload, want map[string]string, resolved string, start bool) {
	t := n.e.t
	t.Helper()
	n.build(w)
	n.runPod(w)
	if w.noContainer {
		return
	}
	rsp := n.e.mustCreate(w.pod, w.ctr)
	adj := rsp.GetAdjust()
	wantUnified := want
	if n.version == 1 {
		wantUnified = nil
	}
	checkMap(t, w.name+": unified keys of the creation adjustment", adj.GetLinux().GetResources().GetUnified(), wantUnified)
	var wantAnn map[string]string
	if resolved != "" {
		wantAnn = map[string]string{annResolved: resolved}
	}
	checkMap(t, w.name+": annotations of the creation adjustment", adj.GetAnnotations(), wantAnn)
	spec := containerSpec(w.ctr)
	applyAdjustment(t, spec, adj)
	checkMap(t, w.name+": OCI spec unified", spec.Linux.Resources.Unified, union(w.ctr.GetLinux().GetResources().GetUnified(), wantUnified))
	if l := spec.Linux.Resources.Memory.Limit; l == nil || *l != w.limit {
		t.Errorf("%s: OCI spec memory limit = %v, want %d", w.name, l, w.limit)
	}
	n.runtimeCreate(w)
	n.e.postCreate(w.ctr.Id)
	if start {
		n.e.start(w.ctr.Id)
	}
}

// v1Files are the cgroup v1 files of a container: soft limit, swappiness,
// memsw and limit.
func (n crioNode) v1Files(w *crioWorkload, soft, swappiness, memsw string) map[string]string {
	dir := n.dir(w.ctrRel)
	return map[string]string{
		filepath.Join(dir, "memory.soft_limit_in_bytes"):  soft,
		filepath.Join(dir, "memory.swappiness"):           swappiness,
		filepath.Join(dir, "memory.memsw.limit_in_bytes"): memsw,
		filepath.Join(dir, "memory.limit_in_bytes"):       cgtest.Itoa(w.limit),
	}
}

// protection maps memory.min and memory.low of each of dirs (relative) to
// min and low.
func (n crioNode) protection(want map[string]string, min, low string, dirs ...string) {
	for _, d := range dirs {
		want[filepath.Join(n.dir(d), "memory.min")] = min
		want[filepath.Join(n.dir(d), "memory.low")] = low
	}
}

// siblings snapshots every file of the cgroups CRI-O keeps next to the
// workloads' containers (conmon's and the infra containers'), which the
// plugin must never write.
func (n crioNode) siblings(ws ...*crioWorkload) map[string]string {
	n.e.t.Helper()
	out := map[string]string{}
	for _, w := range ws {
		dirs := []string{w.infraRel}
		if !w.noContainer {
			dirs = append(dirs, w.conmonRel)
		}
		for _, d := range dirs {
			maps.Copy(out, snapshotFiles(n.e.t, n.dir(d)))
		}
	}
	return out
}

// checkNoWarnings asserts that the plugin logged no warning or error
// beyond the one about the fake cgroup tree.
func checkNoWarnings(t *testing.T, p *pluginProc) {
	t.Helper()
	var bad []string
	for _, level := range []string{"level=warning", "level=error"} {
		for _, l := range p.log.LinesWith(level) {
			if !strings.Contains(l, "writing it as a plain test tree") {
				bad = append(bad, l)
			}
		}
	}
	if len(bad) > 0 {
		t.Errorf("plugin warned:\n%s", strings.Join(bad, "\n"))
	}
}

var crioNodes = []crioNode{{version: 1}, {version: 1, systemd: true}, {version: 2}, {version: 2, systemd: true}}

// TestCRIOClasses creates one container of each built-in class in
// CRI-O's shape, for the cgroupfs and the systemd driver on cgroup v1 and
// v2: on v2 the creation adjustment carries the class's unified keys and
// every ancestor (kubepods.slice, kubepods-burstable.slice and the pod
// slice with systemd) protects what was promised below; on v1 the values
// land in the container's cgroup at PostCreateContainer already, since
// CRI-O created it, and StartContainer finds nothing left to write.
// Neither conmon's cgroup nor the infra container's is ever touched.
func TestCRIOClasses(t *testing.T) {
	for _, n := range crioNodes {
		t.Run(fmt.Sprintf("v%d/%s", n.version, n.driver()), func(t *testing.T) {
			e, p := startExternal(t, n.version, "")
			n.e = e
			ls := &crioWorkload{
				name: "crio-ls", uid: "c1a0b2c3-0001-4d5e-8f60-718293a4b5c6", qos: "burstable",
				labels: map[string]string{labelClass: "latency-sensitive"}, annotations: map[string]string{annRequest: "256Mi"},
				limit: limit512Mi, oomScoreAdj: 969, kubelet: kubeletUnified,
			}
			bu := &crioWorkload{
				name: "crio-bu", uid: "c1a0b2c3-0002-4d5e-8f60-718293a4b5c6", qos: "burstable",
				labels: map[string]string{labelClass: "burstable"}, annotations: map[string]string{annRequest: "256Mi"},
				limit: limit512Mi, oomScoreAdj: 969, kubelet: kubeletUnified,
			}
			// No request anywhere: kubelet's oom_score_adj of a tiny
			// request (999) tells nothing, request 0.
			be := &crioWorkload{
				name: "crio-be", uid: "c1a0b2c3-0003-4d5e-8f60-718293a4b5c6", qos: "burstable",
				labels: map[string]string{labelClass: "best-effort"},
				limit:  limit512Mi, oomScoreAdj: 999, kubelet: map[string]string{"cpu.weight": "79"},
				conmonInSystemSlice: n.systemd,
			}
			all := []*crioWorkload{ls, bu, be}
			n.deploy(ls, map[string]string{"memory.min": "268435456", "memory.swap.max": "0"}, "268435456", false)
			n.deploy(bu, map[string]string{"memory.low": "268435456", "memory.high": cgtest.Itoa(burstableHigh512Mi)}, "268435456", false)
			n.deploy(be, map[string]string{"memory.high": cgtest.Itoa(bestEffortHigh512Mi), "memory.oom.group": "1"}, "0", false)
			if n.systemd && !strings.HasSuffix(ls.ctr.Linux.CgroupsPath, ":crio:"+ls.ctr.Id) {
				t.Fatalf("not CRI-O's systemd cgroups path: %s", ls.ctr.Linux.CgroupsPath)
			}
			siblings := n.siblings(all...)

			// After PostCreateContainer, before any start.
			want := map[string]string{}
			if n.version == 1 {
				// Soft limit = the protected request; latency-sensitive:
				// swappiness 0 and memsw = limit + 0; best-effort: soft
				// limit 0 (reclaimed first).
				maps.Copy(want, n.v1Files(ls, "268435456", "0", cgtest.Itoa(limit512Mi)))
				maps.Copy(want, n.v1Files(bu, "268435456", v1SwappinessDefault, cgtest.Itoa(limit512Mi)))
				maps.Copy(want, n.v1Files(be, "0", v1SwappinessDefault, cgtest.Itoa(limit512Mi)))
			} else {
				// Shared levels: min 256Mi (ls), low 256Mi (bu).
				n.protection(want, "268435456", "268435456", ls.levels[:2]...)
				n.protection(want, "268435456", "0", ls.podRel)
				n.protection(want, "0", "268435456", bu.podRel)
				n.protection(want, "0", "0", be.podRel)
				if n.systemd && ls.levels[1] != "kubepods.slice/kubepods-burstable.slice" {
					t.Fatalf("levels %v", ls.levels)
				}
			}
			checkFiles(t, want)

			for _, w := range all {
				e.start(w.ctr.Id)
			}
			checkFiles(t, want)
			if n.version == 1 {
				// One write per container, at PostCreateContainer: Start
				// found every value in place.
				if _, ok := waitLog(t, p, len(all)-1, "cgroup v1 values written"); !ok {
					t.Fatal("the plugin did not log its v1 writes")
				}
				if got := p.log.LinesWith("cgroup v1 values written"); len(got) != len(all) {
					t.Errorf("plugin logged %d v1 writes, want %d (one per container, at PostCreateContainer):\n%s", len(got), len(all), strings.Join(got, "\n"))
				}
				checkNoWarnings(t, p)
			}
			checkMap(t, "conmon and infra cgroups", n.siblings(all...), siblings)

			for _, w := range all {
				e.stop(w.ctr.Id)
				e.remove(w.ctr.Id)
			}
			if n.version == 2 {
				zero := map[string]string{}
				n.protection(zero, "0", "0", ls.levels...)
				n.protection(zero, "0", "0", bu.podRel, be.podRel)
				checkFiles(t, zero)
			}
			checkMap(t, "conmon and infra cgroups", n.siblings(all...), siblings)
		})
	}
}

// TestV1WritesAtFirstEventWithCgroup checks containerd's order on cgroup
// v1: at PostCreateContainer the container has no cgroup yet (containerd
// creates it in CRI StartContainer), so nothing is written and nothing is
// logged; StartContainer writes the values.
func TestV1WritesAtFirstEventWithCgroup(t *testing.T) {
	for _, systemd := range []bool{false, true} {
		name := map[bool]string{false: "cgroupfs", true: "systemd"}[systemd]
		t.Run(name, func(t *testing.T) {
			e, p := startExternal(t, 1, "")
			uid, id := "d2b1c3d4-0001-4e5f-8a6b-7c8d9e0f1a2b", "0123456789abcdef0123456789abcdef"
			pod := newPod("ctrd-"+name, uid, systemd, map[string]string{labelClass: "latency-sensitive"}, map[string]string{annRequest: "256Mi"})
			ctr := newContainer(pod, "app", id, limit512Mi, nil)
			rel := "kubepods/burstable/pod" + uid + "/" + id
			if systemd {
				rel = "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice/cri-containerd-" + id + ".scope"
			}
			e.runPod(pod)
			e.mustCreate(pod, ctr)
			e.postCreate(id)
			dir := filepath.Join(e.cgRoot, "memory", rel)
			if entries := snapshotFiles(t, e.cgRoot); len(entries) != 0 {
				t.Errorf("PostCreateContainer without a cgroup wrote %v", entries)
			}

			// CRI StartContainer: containerd creates the task, its cgroup,
			// then relays NRI StartContainer.
			e.v1Tree(rel, limit512Mi)
			e.start(id)
			checkFiles(t, map[string]string{
				filepath.Join(dir, "memory.soft_limit_in_bytes"):  "268435456",
				filepath.Join(dir, "memory.swappiness"):           "0",
				filepath.Join(dir, "memory.memsw.limit_in_bytes"): cgtest.Itoa(limit512Mi),
			})
			if _, ok := waitLog(t, p, 0, "cgroup v1 values written"); !ok {
				t.Fatal("the plugin did not log its v1 writes")
			}
			checkNoWarnings(t, p)
			e.remove(id)
		})
	}
}

// TestCRIOSynchronize restarts the plugin under CRI-O-shaped pods, with
// its state file kept and lost: CRI-O's Synchronize lists every sandbox
// (one has no container), and containers whose annotations hold the pod's
// annotations next to CRI-O's and the plugin's resolved request, one of
// them created and not started (its cgroup exists). The plugin must decide
// each as at creation (a Guaranteed pod, a class picked per container by
// pod annotation, a request kubelet put in memory.min on v2 that the plugin
// must not take back from its own value), write back what drifted while it
// was down, and leave conmon's and the infra containers' cgroups alone.
func TestCRIOSynchronize(t *testing.T) {
	for _, n := range crioNodes {
		for _, keep := range []bool{true, false} {
			name := fmt.Sprintf("v%d/%s/state-%s", n.version, n.driver(), map[bool]string{true: "kept", false: "lost"}[keep])
			t.Run(name, func(t *testing.T) { testCRIOSynchronize(t, n, keep) })
		}
	}
}

func testCRIOSynchronize(t *testing.T, n crioNode, keep bool) {
	e := newEnv(t)
	n.e = e
	e.mustStartNRI()
	cfg := e.writeConfig("memqos.yaml", n.version, "classes:\n  protect-half:\n    min: 0.5\n")
	p1 := e.startPlugin(cfg)
	e.waitSync(p1)

	ls := &crioWorkload{
		name: "sync-ls", uid: "e3c2d4e5-0001-4f60-8a7b-8c9d0e1f2a3b", qos: "burstable",
		labels: map[string]string{labelClass: "latency-sensitive"}, annotations: map[string]string{annRequest: "256Mi"},
		limit: limit512Mi, oomScoreAdj: 969, kubelet: kubeletUnified,
	}
	// Guaranteed: the request is the limit, memory.min capped at
	// maxProtectionFraction (0.9) of it: floor(0.9*256Mi / 4096) pages.
	gu := &crioWorkload{
		name: "sync-gu", uid: "e3c2d4e5-0002-4f60-8a7b-8c9d0e1f2a3b",
		labels: map[string]string{labelClass: "latency-sensitive"},
		limit:  request256Mi, oomScoreAdj: -997, kubelet: kubeletUnified,
	}
	const guMin = "241590272" // 58982 * 4096
	// The pod says best-effort, the container annotation burstable.
	bu := &crioWorkload{
		name: "sync-bu", uid: "e3c2d4e5-0003-4f60-8a7b-8c9d0e1f2a3b", qos: "burstable",
		labels:      map[string]string{labelClass: "best-effort"},
		annotations: map[string]string{"memqos.nri.io/class.container.app": "burstable", annRequest: "256Mi"},
		limit:       limit512Mi, oomScoreAdj: 969, kubelet: kubeletUnified,
		conmonInSystemSlice: n.systemd,
	}
	plain := &crioWorkload{
		name: "sync-plain", uid: "e3c2d4e5-0004-4f60-8a7b-8c9d0e1f2a3b", qos: "burstable",
		labels: map[string]string{"app": "plain"}, annotations: map[string]string{annRequest: "256Mi"},
		limit: limit512Mi, oomScoreAdj: 969, kubelet: kubeletUnified,
	}
	created := &crioWorkload{
		name: "sync-created", uid: "e3c2d4e5-0005-4f60-8a7b-8c9d0e1f2a3b", qos: "burstable",
		labels: map[string]string{labelClass: "latency-sensitive"}, annotations: map[string]string{annRequest: "64Mi"},
		limit: limit512Mi, oomScoreAdj: 969, kubelet: kubeletUnified,
	}
	empty := &crioWorkload{
		name: "sync-empty", uid: "e3c2d4e5-0006-4f60-8a7b-8c9d0e1f2a3b", qos: "burstable",
		labels: map[string]string{labelClass: "latency-sensitive"}, noContainer: true,
	}
	lsWant := map[string]string{"memory.min": "268435456", "memory.swap.max": "0"}
	guWant := map[string]string{"memory.min": guMin, "memory.swap.max": "0"}
	buWant := map[string]string{"memory.low": "268435456", "memory.high": cgtest.Itoa(burstableHigh512Mi)}
	createdWant := map[string]string{"memory.min": "67108864", "memory.swap.max": "0"}
	n.deploy(ls, lsWant, "268435456", true)
	n.deploy(gu, guWant, "268435456", true)
	n.deploy(bu, buWant, "268435456", true)
	n.deploy(plain, nil, "", true)
	n.deploy(created, createdWant, "67108864", false)
	n.deploy(empty, nil, "", false)
	all := []*crioWorkload{ls, gu, bu, plain, created, empty}
	// On v2, a request from kubelet's memory.min (MemoryQoS): 256Mi, of
	// which protect-half protects 128Mi. The runtime's view of it holds
	// the plugin's memory.min after creation.
	var half *crioWorkload
	halfWant := map[string]string{"memory.min": "134217728"}
	if n.version == 2 {
		half = &crioWorkload{
			name: "sync-half", uid: "e3c2d4e5-0007-4f60-8a7b-8c9d0e1f2a3b", qos: "burstable",
			labels: map[string]string{labelClass: "protect-half"},
			limit:  limit512Mi, oomScoreAdj: 969, kubelet: map[string]string{"cpu.weight": "79", "memory.min": "268435456"},
		}
		n.deploy(half, halfWant, "268435456", true)
		all = append(all, half)
	}
	siblings := n.siblings(all...)

	want := map[string]string{}
	if n.version == 1 {
		maps.Copy(want, n.v1Files(ls, "268435456", "0", cgtest.Itoa(limit512Mi)))
		maps.Copy(want, n.v1Files(gu, guMin, "0", cgtest.Itoa(request256Mi)))
		maps.Copy(want, n.v1Files(bu, "268435456", v1SwappinessDefault, cgtest.Itoa(limit512Mi)))
		maps.Copy(want, n.v1Files(plain, v1SoftLimitDefault, v1SwappinessDefault, cgtest.Itoa(limit512Mi)))
		maps.Copy(want, n.v1Files(created, "67108864", "0", cgtest.Itoa(limit512Mi)))
	} else {
		// kubepods: ls 256Mi + gu 230.4Mi + created 64Mi + half 128Mi;
		// the burstable level without gu; memory.low: bu's 256Mi.
		n.protection(want, "711352320", "268435456", ls.levels[0])
		n.protection(want, "469762048", "268435456", ls.levels[1])
		n.protection(want, "268435456", "0", ls.podRel)
		n.protection(want, guMin, "0", gu.podRel)
		n.protection(want, "0", "268435456", bu.podRel)
		n.protection(want, "0", "0", plain.podRel, empty.podRel)
		n.protection(want, "67108864", "0", created.podRel)
		n.protection(want, "134217728", "0", half.podRel)
		if len(gu.levels) != 2 {
			t.Fatalf("Guaranteed pod levels %v", gu.levels)
		}
	}
	checkFiles(t, want)

	// CRI-O copied the pod's annotations into the container's, next to
	// its own and the plugin's.
	_, c := e.lookup(bu.ctr.Id)
	for k, v := range map[string]string{
		"memqos.nri.io/class.container.app": "burstable", annRequest: "256Mi", annResolved: "268435456",
		"io.kubernetes.cri-o.ContainerType": "container",
	} {
		if got := c.GetAnnotations()[k]; got != v {
			t.Fatalf("runtime's container %s: annotation %s = %q, want %q", bu.name, k, got, v)
		}
	}

	p1.Kill()
	// Behind the plugin's back.
	if n.version == 1 {
		cgtest.Write(t, filepath.Join(n.dir(ls.ctrRel), "memory.soft_limit_in_bytes"), v1SoftLimitDefault+"\n")
		cgtest.Write(t, filepath.Join(n.dir(gu.ctrRel), "memory.swappiness"), v1SwappinessDefault+"\n")
		cgtest.Write(t, filepath.Join(n.dir(created.ctrRel), "memory.soft_limit_in_bytes"), v1SoftLimitDefault+"\n")
	} else {
		cgtest.Write(t, filepath.Join(n.dir(ls.podRel), "memory.min"), "0\n")
		cgtest.Write(t, filepath.Join(n.dir(ls.levels[0]), "memory.low"), "0\n")
	}

	var flags []string
	if !keep {
		flags = []string{"-state-dir", ""}
	}
	p2 := e.startPlugin(cfg, flags...)
	ev := e.waitSync(p2)
	if ev.Pods != len(all) || ev.Ctrs != len(all)-1 {
		t.Errorf("synchronization delivered %d pods and %d containers, want %d and %d", ev.Pods, ev.Ctrs, len(all), len(all)-1)
	}
	sync := []workload{{name: plain.name, id: plain.ctr.Id}}
	if n.version == 2 {
		sync = append(sync,
			workload{name: ls.name, id: ls.ctr.Id, want: lsWant},
			workload{name: gu.name, id: gu.ctr.Id, want: guWant},
			workload{name: bu.name, id: bu.ctr.Id, want: buWant},
			workload{name: created.name, id: created.ctr.Id, want: createdWant},
			workload{name: half.name, id: half.ctr.Id, want: halfWant})
	}
	// On v1 the plugin writes the values itself: no update at all.
	checkSyncUpdates(t, ev.Updates, sync...)
	checkFiles(t, want)
	checkMap(t, "conmon and infra cgroups", n.siblings(all...), siblings)

	// The new plugin serves the containers it learned from Synchronize:
	// the created one starts, ls goes.
	e.start(created.ctr.Id)
	e.stop(ls.ctr.Id)
	e.remove(ls.ctr.Id)
	if n.version == 2 && keep {
		// Its protection leaves the pod and, known from the state file,
		// the shared levels.
		after := map[string]string{}
		n.protection(after, "442916864", "268435456", ls.levels[0])
		n.protection(after, "201326592", "268435456", ls.levels[1])
		n.protection(after, "0", "0", ls.podRel)
		checkFiles(t, after)
	}
	if n.version == 1 {
		checkFiles(t, n.v1Files(created, "67108864", "0", cgtest.Itoa(limit512Mi)))
	}
	checkMap(t, "conmon and infra cgroups", n.siblings(all...), siblings)
	checkNoWarnings(t, p2)
}
