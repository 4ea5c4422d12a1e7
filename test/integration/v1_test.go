package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nri-memqos/test/internal/cgtest"
)

// TestCgroupV1 creates a latency-sensitive container on cgroup v1, with the
// cgroupfs and the systemd cgroup driver: the creation adjustment carries no
// unified key at all (runc refuses unified on v1), and StartContainer writes
// the v1 files of the container's memory cgroup directly.
func TestCgroupV1(t *testing.T) {
	cases := []struct {
		name    string
		systemd bool
		uid, id string
		// rel is the container's directory below <root>/memory.
		rel string
	}{
		{
			name: "cgroupfs",
			uid:  "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f", id: "ctr-v1",
			rel: "kubepods/burstable/pod3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f/ctr-v1",
		},
		{
			name: "systemd", systemd: true,
			uid: "4d5e6f7a-8b9c-4d0e-9f1a-2b3c4d5e6f7a", id: "0123456789abcdef",
			rel: "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod4d5e6f7a_8b9c_4d0e_9f1a_2b3c4d5e6f7a.slice/cri-containerd-0123456789abcdef.scope",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := startExternal(t, 1, "")
			dir := e.v1Tree(tc.rel, limit512Mi)
			pod := newPod("v1-"+tc.name, tc.uid, tc.systemd, map[string]string{labelClass: "latency-sensitive"}, map[string]string{annRequest: "256Mi"})
			ctr := newContainer(pod, "app", tc.id, limit512Mi, nil)
			if tc.systemd && !strings.Contains(ctr.Linux.CgroupsPath, ":cri-containerd:") {
				t.Fatalf("not a systemd cgroups path: %s", ctr.Linux.CgroupsPath)
			}
			e.runPod(pod)

			rsp := e.mustCreate(pod, ctr)
			adj := rsp.GetAdjust()
			if u := adj.GetLinux().GetResources().GetUnified(); len(u) != 0 {
				t.Errorf("creation adjustment on cgroup v1 has unified keys %s, want none", fmtMap(u))
			}
			checkMap(t, "annotations of the adjustment", adj.GetAnnotations(), map[string]string{annResolved: "268435456"})
			if m := adj.GetLinux().GetResources().GetMemory(); m.GetLimit() != nil || m.GetSwap() != nil || m.GetSwappiness() != nil || m.GetReservation() != nil {
				t.Errorf("creation adjustment sets memory %v, want nothing", m)
			}
			spec := containerSpec(ctr)
			applyAdjustment(t, spec, adj)
			if u := spec.Linux.Resources.Unified; len(u) != 0 {
				t.Errorf("OCI spec on cgroup v1 has unified %s, want none", fmtMap(u))
			}
			if l := spec.Linux.Resources.Memory.Limit; l == nil || *l != limit512Mi {
				t.Errorf("OCI spec memory limit = %v, want %d", l, limit512Mi)
			}

			files := func(soft, swappiness, memsw string) map[string]string {
				return map[string]string{
					filepath.Join(dir, "memory.soft_limit_in_bytes"):  soft,
					filepath.Join(dir, "memory.swappiness"):           swappiness,
					filepath.Join(dir, "memory.memsw.limit_in_bytes"): memsw,
					filepath.Join(dir, "memory.limit_in_bytes"):       cgtest.Itoa(limit512Mi),
				}
			}
			// Nothing is written before the container's cgroup is live.
			checkFiles(t, files(v1SoftLimitDefault, v1SwappinessDefault, v1Unlimited))

			e.start(tc.id)
			// soft limit = the protected request; swappiness 0; swap
			// "none": memsw = limit + 0.
			checkFiles(t, files("268435456", "0", "536870912"))

			if _, err := os.Stat(filepath.Join(e.cgRoot, "kubepods")); err == nil {
				t.Errorf("plugin created v2 ancestor files on cgroup v1 under %s", e.cgRoot)
			}
			e.remove(tc.id)
		})
	}
}
