package integration

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"nri-memqos/test/internal/cgtest"
)

// kubeletUnified is what kubelet may already have put in a container's
// unified map on cgroup v2 (memory.oom.group=1 when singleProcessOOMKill is
// off); cpu.weight stands for any key the plugin does not own.
var kubeletUnified = map[string]string{"cpu.weight": "79", "memory.oom.group": "1"}

// startExternal starts an adaptation and the plugin as an external plugin
// with a config for the fake tree, and waits until it synchronized.
func startExternal(t *testing.T, version int, extraConfig string, flags ...string) (*env, *pluginProc) {
	t.Helper()
	e := newEnv(t)
	e.mustStartNRI()
	p := e.startPlugin(e.writeConfig("memqos.yaml", version, extraConfig), flags...)
	e.waitSync(p)
	return e, p
}

// ancestorFiles maps the memory.min and memory.low files of a pod's three
// v2 ancestors to the given values.
func (e *env) ancestorFiles(uid, podMin, podLow, qosMin, qosLow string) map[string]string {
	a := e.ancestors(uid)
	return map[string]string{
		filepath.Join(a["kubepods"], "memory.min"):           qosMin,
		filepath.Join(a["kubepods"], "memory.low"):           qosLow,
		filepath.Join(a["kubepods/burstable"], "memory.min"): qosMin,
		filepath.Join(a["kubepods/burstable"], "memory.low"): qosLow,
		filepath.Join(a["pod"], "memory.min"):                podMin,
		filepath.Join(a["pod"], "memory.low"):                podLow,
	}
}

// TestCreateV2Classes creates one container per built-in class on cgroup
// v2, applies the returned adjustment to an OCI spec with NRI's spec
// generator and checks the spec and the ancestor cgroups byte for byte.
func TestCreateV2Classes(t *testing.T) {
	cases := []struct {
		class       string
		uid         string
		annotations map[string]string
		kubelet     map[string]string
		// want is what the plugin puts in the unified map.
		want     map[string]string
		resolved string
		// ancestor memory.min and memory.low while the container lives.
		ancMin, ancLow string
		// stop withdraws the protection with StopContainer (else RemoveContainer).
		stop bool
	}{
		{
			class:       "latency-sensitive",
			uid:         "5d0f6a52-7c1e-4f0a-9a1b-2c3d4e5f6a7b",
			annotations: map[string]string{annRequest: "256Mi"},
			kubelet:     kubeletUnified,
			want:        map[string]string{"memory.min": "268435456", "memory.swap.max": "0"},
			resolved:    "268435456",
			ancMin:      "268435456", ancLow: "0",
			stop: true,
		},
		{
			class:       "burstable",
			uid:         "6e1a7b63-8d2f-4a1b-8b2c-3d4e5f6a7b8c",
			annotations: map[string]string{annRequest: "256Mi"},
			kubelet:     kubeletUnified,
			want:        map[string]string{"memory.low": "268435456", "memory.high": cgtest.Itoa(burstableHigh512Mi)},
			resolved:    "268435456",
			ancMin:      "0", ancLow: "268435456",
		},
		{
			// No request anywhere (no annotation, no memory.min/low from
			// kubelet, no oom_score_adj): request 0.
			class:    "best-effort",
			uid:      "7f2b8c74-9e3a-4b2c-9c3d-4e5f6a7b8c9d",
			kubelet:  map[string]string{"cpu.weight": "79"},
			want:     map[string]string{"memory.high": cgtest.Itoa(bestEffortHigh512Mi), "memory.oom.group": "1"},
			resolved: "0",
			ancMin:   "0", ancLow: "0",
		},
	}
	if burstableHigh512Mi != 510025728 || bestEffortHigh512Mi != 429494272 {
		t.Fatal("expected values miscomputed")
	}
	for _, tc := range cases {
		t.Run(tc.class, func(t *testing.T) {
			e, _ := startExternal(t, 2, "")
			uid, id := tc.uid, "ctr-"+tc.class
			e.v2Tree(uid, id)
			pod := newPod("app-"+tc.class, uid, false, map[string]string{labelClass: tc.class}, tc.annotations)
			ctr := newContainer(pod, "app", id, limit512Mi, tc.kubelet)
			e.runPod(pod)

			rsp := e.mustCreate(pod, ctr)
			adj := rsp.GetAdjust()
			checkMap(t, "unified keys of the adjustment", adj.GetLinux().GetResources().GetUnified(), tc.want)
			checkMap(t, "annotations of the adjustment", adj.GetAnnotations(), map[string]string{annResolved: tc.resolved})
			if l := adj.GetLinux().GetResources().GetMemory().GetLimit(); l != nil {
				t.Errorf("adjustment sets memory limit %d, want it left alone", l.GetValue())
			}
			if n := len(rsp.GetUpdate()); n != 0 {
				t.Errorf("response has %d container updates, want none", n)
			}

			spec := containerSpec(ctr)
			applyAdjustment(t, spec, adj)
			checkMap(t, "OCI spec unified", spec.Linux.Resources.Unified, union(tc.kubelet, tc.want))
			if l := spec.Linux.Resources.Memory.Limit; l == nil || *l != limit512Mi {
				t.Errorf("OCI spec memory limit = %v, want %d", l, limit512Mi)
			}
			if got := spec.Annotations[annResolved]; got != tc.resolved {
				t.Errorf("OCI spec annotation %s = %q, want %q", annResolved, got, tc.resolved)
			}

			// Ancestors are raised so the kernel grants the protection.
			checkFiles(t, e.ancestorFiles(uid, tc.ancMin, tc.ancLow, tc.ancMin, tc.ancLow))
			e.start(id)
			checkFiles(t, e.ancestorFiles(uid, tc.ancMin, tc.ancLow, tc.ancMin, tc.ancLow))

			if tc.stop {
				e.stop(id)
				checkFiles(t, e.ancestorFiles(uid, "0", "0", "0", "0"))
			}
			e.remove(id)
			checkFiles(t, e.ancestorFiles(uid, "0", "0", "0", "0"))
		})
	}
}

// TestCreateWithoutOptIn checks that a pod without the class label gets
// nothing from the plugin, even with a request annotation.
func TestCreateWithoutOptIn(t *testing.T) {
	e, _ := startExternal(t, 2, "")
	uid, id := "0c2f7b9e-3d4a-4b5c-8d6e-7f8091a2b3c4", "ctr-plain"
	e.v2Tree(uid, id)
	pod := newPod("plain", uid, false, map[string]string{"app": "plain"}, map[string]string{annRequest: "256Mi"})
	ctr := newContainer(pod, "app", id, limit512Mi, kubeletUnified)
	e.runPod(pod)

	rsp := e.mustCreate(pod, ctr)
	checkNoAdjustment(t, rsp)

	spec := containerSpec(ctr)
	before, _ := json.Marshal(spec)
	applyAdjustment(t, spec, rsp.GetAdjust())
	after, _ := json.Marshal(spec)
	if string(before) != string(after) {
		t.Errorf("the adjustment changed the OCI spec:\n before %s\n after  %s", before, after)
	}

	e.start(id)
	checkFiles(t, e.ancestorFiles(uid, "0", "0", "0", "0"))
	e.remove(id)
}

// TestInvalidAnnotation checks that a bad annotation fails that container
// with a message naming the pod, the container, the key, the value and what
// is allowed, and that the plugin keeps serving other containers.
func TestInvalidAnnotation(t *testing.T) {
	e, p := startExternal(t, 2, "")

	badUID, badID := "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a", "ctr-bad"
	e.v2Tree(badUID, badID)
	bad := newPod("bad-pod", badUID, false, map[string]string{labelClass: "burstable"}, map[string]string{annRequest: "lots"})
	e.runPod(bad)
	_, err := e.create(bad, newContainer(bad, "web", badID, limit512Mi, kubeletUnified))
	if err == nil {
		t.Fatal("CreateContainer with memory-request \"lots\" succeeded, want an error")
	}
	for _, want := range []string{testNamespace + "/bad-pod", `"web"`, annRequest, "lots", "allowed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	checkFiles(t, e.ancestorFiles(badUID, "0", "0", "0", "0"))

	goodUID, goodID := "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "ctr-good"
	e.v2Tree(goodUID, goodID)
	good := newPod("good-pod", goodUID, false, map[string]string{labelClass: "burstable"}, map[string]string{annRequest: "256Mi"})
	e.runPod(good)
	rsp := e.mustCreate(good, newContainer(good, "web", goodID, limit512Mi, kubeletUnified))
	checkMap(t, "unified keys of the adjustment", rsp.GetAdjust().GetLinux().GetResources().GetUnified(),
		map[string]string{"memory.low": "268435456", "memory.high": cgtest.Itoa(burstableHigh512Mi)})
	checkMap(t, "annotations of the adjustment", rsp.GetAdjust().GetAnnotations(), map[string]string{annResolved: "268435456"})
	checkFiles(t, e.ancestorFiles(goodUID, "0", "268435456", "0", "268435456"))
	if p.Exited() {
		t.Errorf("plugin exited: %v", p.Err())
	}
}

// TestCreateV2SystemdDriver checks the ancestors of a container of the
// systemd cgroup driver on cgroup v2: the slices of its pod, QoS class and
// kubepods.
func TestCreateV2SystemdDriver(t *testing.T) {
	e, _ := startExternal(t, 2, "")
	uid, id := "8a9b0c1d-2e3f-4a5b-9c6d-7e8f9a0b1c2d", "fedcba9876543210"
	levels := []string{
		"kubepods.slice",
		"kubepods.slice/kubepods-burstable.slice",
		"kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8a9b0c1d_2e3f_4a5b_9c6d_7e8f9a0b1c2d.slice",
	}
	files := func(min string) map[string]string {
		m := map[string]string{}
		for _, l := range levels {
			m[filepath.Join(e.cgRoot, l, "memory.min")] = min
			m[filepath.Join(e.cgRoot, l, "memory.low")] = "0"
		}
		return m
	}
	for path := range files("") {
		cgtest.Write(t, path, "0\n")
	}
	pod := newPod("ls-systemd", uid, true, map[string]string{labelClass: "latency-sensitive"}, map[string]string{annRequest: "256Mi"})
	ctr := newContainer(pod, "app", id, limit512Mi, kubeletUnified)
	e.runPod(pod)
	rsp := e.mustCreate(pod, ctr)
	checkMap(t, "unified keys of the adjustment", rsp.GetAdjust().GetLinux().GetResources().GetUnified(),
		map[string]string{"memory.min": "268435456", "memory.swap.max": "0"})
	checkFiles(t, files("268435456"))
	e.start(id)
	e.remove(id)
	checkFiles(t, files("0"))
}
