package integration

import (
	"path/filepath"
	"testing"

	"nri-memqos/test/internal/cgtest"
)

// TestNoSwapAccounting is issue 10's item 4: on a kernel without swap
// accounting a cgroup has no memory.swap.max, and runc fails a container
// whose unified map sets it. The plugin must leave the key out (one warning
// at start), never fail the container.
func TestNoSwapAccounting(t *testing.T) {
	e := newEnv(t)
	// kubepods as such a kernel shows it: every memory file but swap.
	for _, f := range []string{"memory.current", "memory.min", "memory.low", "memory.high", "memory.oom.group"} {
		cgtest.Write(t, filepath.Join(e.cgRoot, "kubepods", f), "0\n")
	}
	e.mustStartNRI()
	p := e.startPlugin(e.writeConfig("memqos.yaml", 2, ""))
	e.waitSync(p)

	uid, id := "5d3c1e0a-0b1c-4d2e-9f3a-4b5c6d7e8f90", "ctr-noswap"
	e.v2Tree(uid, id)
	pod := newPod("noswap", uid, false, map[string]string{labelClass: "latency-sensitive"}, map[string]string{annRequest: "256Mi"})
	ctr := newContainer(pod, "app", id, limit512Mi, nil)
	e.runPod(pod)
	rsp := e.mustCreate(pod, ctr)
	// latency-sensitive: memory.min = request, and memory.swap.max = 0 left out.
	checkMap(t, "unified keys of the adjustment", rsp.GetAdjust().GetLinux().GetResources().GetUnified(),
		map[string]string{"memory.min": cgtest.Itoa(request256Mi)})
	if n := len(p.log.LinesWith("the kernel offers no memory.swap.max")); n != 1 {
		t.Errorf("%d warnings about memory.swap.max; want 1:\n%s", n, p.log.String())
	}
	// A second container: still left out, no second warning.
	id2 := "ctr-noswap-2"
	e.v2Tree(uid, id2)
	rsp = e.mustCreate(pod, newContainer(pod, "side", id2, limit512Mi, nil))
	if _, ok := rsp.GetAdjust().GetLinux().GetResources().GetUnified()["memory.swap.max"]; ok {
		t.Error("the second container's adjustment sets memory.swap.max")
	}
	if n := len(p.log.LinesWith("the kernel offers no memory.swap.max")); n != 1 {
		t.Errorf("%d warnings about memory.swap.max after two containers; want 1", n)
	}
}
