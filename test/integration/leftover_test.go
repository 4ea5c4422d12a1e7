package integration

import (
	"testing"

	"nri-memqos/test/internal/proc"
)

// TestMetricsSameNameContainers: containerd sends no StopContainer when a
// container's task fails to start, so the plugin keeps the CREATED
// leftover next to the attempt that replaces it, with the same namespace,
// pod and container name. /metrics served 500 then; now both scrape, told
// apart by container_id. (That the leftover leaves the series a minute
// after its creation is pkg/node's TestMetricsLeftoverCreated.)
func TestMetricsSameNameContainers(t *testing.T) {
	addr := proc.FreeAddr(t)
	e, _ := startExternal(t, 2, "", "-metrics-address", addr)
	w := lsWorkload("retried", "b1b2c3d4-0001-4000-8000-000000000001", "0123456789abcdef-first", lsBuiltin)
	next := w
	next.id = "fedcba9876543210-second"
	e.v2Tree(w.uid, w.id)
	e.v2Tree(next.uid, next.id)
	pod := newPod(w.name, w.uid, false, w.labels, w.annotations)
	e.runPod(pod)
	e.mustCreate(pod, newContainer(pod, "app", w.id, limit512Mi, w.kubelet))
	// Its start fails: no StartContainer, no StopContainer. Kubelet
	// creates the next attempt, which starts.
	e.mustCreate(pod, newContainer(pod, "app", next.id, limit512Mi, w.kubelet))
	e.start(next.id)

	fams := mustScrape(t, addr)
	for _, c := range []workload{w, next} {
		checkSample(t, fams, famMin, ctrLabels(c), float64(request256Mi))
	}
	checkSample(t, fams, famPromised, map[string]string{}, float64(2*request256Mi))
}
