package integration

import (
	"path/filepath"
	"testing"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"

	"nri-memqos/test/internal/cgtest"
)

// TestStaleLimitAfterRuntimeRestart replays what a real CRI-O 1.37 did on
// cgroup v1 (issue 13): `crictl update --memory` resizes a running
// container, CRI-O restarts, and its Synchronize reports the container's
// creation-time limit. memory.memsw.limit_in_bytes must follow the limit in
// force: after a raise a stale memsw below the limit fails in the kernel
// (and the reconciler would retry forever); after a shrink it grants swap
// to a class meant to have none.
func TestStaleLimitAfterRuntimeRestart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int64 // what crictl update sets
	}{
		{"raise", limit1Gi},
		{"shrink", request256Mi},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, p := startExternal(t, 1, "", "-reconnect-max", "500ms")
			uid, id := "6e7f8091-a2b3-4c4d-8e5f-60718293a4b5", "ctr-stale"
			rel := "kubepods/burstable/pod" + uid + "/" + id
			dir := e.v1Tree(rel, limit512Mi)
			pod := newPod("stale", uid, false, map[string]string{labelClass: "latency-sensitive"}, map[string]string{annRequest: "128Mi"})
			e.runPod(pod)
			e.mustCreate(pod, newContainer(pod, "app", id, limit512Mi, nil))
			e.start(id)
			memsw := filepath.Join(dir, "memory.memsw.limit_in_bytes")
			checkFiles(t, map[string]string{memsw: cgtest.Itoa(limit512Mi)}) // swap none: memsw = limit

			// crictl update --memory: the runtime asks the plugin, applies
			// the limit (as runc does), then tells the plugin it landed.
			pod, ctr := e.lookup(id)
			res := &api.LinuxResources{Memory: &api.LinuxMemory{Limit: api.Int64(tc.limit)}}
			if _, err := e.nri.UpdateContainer(ctx(t), &adaptation.UpdateContainerRequest{Pod: pod, Container: ctr, LinuxResources: res}); err != nil {
				t.Fatalf("UpdateContainer: %v", err)
			}
			cgtest.Write(t, filepath.Join(dir, "memory.limit_in_bytes"), cgtest.Itoa(tc.limit)+"\n")
			if err := e.nri.PostUpdateContainer(ctx(t), &adaptation.PostUpdateContainerRequest{Pod: pod, Container: ctr}); err != nil {
				t.Fatalf("PostUpdateContainer: %v", err)
			}
			checkFiles(t, map[string]string{memsw: cgtest.Itoa(tc.limit)})

			// The runtime restarts; its store still holds the creation-time
			// limit (512Mi), which Synchronize reports.
			e.stopNRI()
			e.dropConnections()
			e.mustStartNRI()
			e.waitSync(p)
			checkFiles(t, map[string]string{
				memsw: cgtest.Itoa(tc.limit),
				filepath.Join(dir, "memory.limit_in_bytes"): cgtest.Itoa(tc.limit),
			})
		})
	}
}
