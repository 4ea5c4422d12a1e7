package policy_test

import (
	"math"
	"strings"
	"testing"

	"nri-memqos/pkg/config"
	"nri-memqos/pkg/policy"
)

// A request is bounded by the limit, else by the node's allocatable memory:
// without a limit a pod must not be able to ask for more than the node has
// (issue 10, item 1: the huge request overflowed the node cap's sum).
func TestRequestBoundedByAllocatable(t *testing.T) {
	tests := []struct {
		name    string
		cfg     func() *config.Config
		ann     string
		wantErr string // substring; "" means accepted
		want    int64
	}{
		{name: "MaxInt64 page-aligned without a limit", ann: "9223372036854771712",
			wantErr: `annotation memqos.nri.io/memory-request.container.app "9223372036854771712": above the node's allocatable memory 8589934592; allowed: at most 8589934592`},
		{name: "7Ei without a limit", ann: "7Ei", wantErr: "above the node's allocatable memory 8589934592"},
		{name: "one byte above MemTotal", ann: "8589934593", wantErr: "above the node's allocatable memory"},
		{name: "exactly MemTotal", ann: "8Gi", want: 8 * Gi},
		{name: "nodeAllocatable bounds it", cfg: alloc(config.Default, "4Gi"), ann: "5Gi",
			wantErr: "above the node's allocatable memory 4294967296; allowed: at most 4294967296"},
		{name: "within nodeAllocatable", cfg: alloc(config.Default, "4Gi"), ann: "4Gi", want: 4 * Gi},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := run(t, in{cfg: tc.cfg, class: "burstable", ann: req(tc.ann), node: node8G})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Decide = %+v, %v; want an error containing %q", d, err, tc.wantErr)
				}
				checkInputError(t, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Request != tc.want {
				t.Errorf("Request = %d; want %d", d.Request, tc.want)
			}
		})
	}
}

// Requests from kubelet's unified map, the saved request and oom_score_adj
// are not the pod's own input: they are clamped to the bound, not refused.
func TestRequestFromKubeletClamped(t *testing.T) {
	cfg := mustValidate(t, config.Default())
	p := policy.Pod{Namespace: "default", Name: "web", CgroupParent: "/kubepods/burstable/pod1"}
	huge := int64(math.MaxInt64 - 4095)
	for _, c := range []policy.Container{
		{Name: "app", Unified: map[string]string{"memory.min": "9223372036854771712"}, UnifiedFromKubelet: true},
		{Name: "app", Recorded: &huge},
	} {
		got, _, err := policy.ResolveRequest(cfg, p, c, policy.QOSBurstable, node8G)
		if err != nil || got != 8*Gi {
			t.Errorf("ResolveRequest(%+v) = %d, %v; want 8Gi (MemTotal)", c, got, err)
		}
	}
}

// memory.low is capped like memory.min: a fraction of the limit, else of
// the node's allocatable memory (issue 10, item 2: 7Ei of memory.low).
func TestLowCappedWithoutLimit(t *testing.T) {
	d, err := run(t, in{class: "burstable", ann: req("8Gi"), node: node8G})
	if err != nil {
		t.Fatal(err)
	}
	// 0.9 × 8Gi, page aligned.
	if want := int64(7730941132) / page * page; !eqPtr(d.Low, &want) { // 0.9 × 8Gi
		t.Errorf("Low = %s; want %d (maxProtectionFraction of allocatable)", fmtPtr(d.Low), want)
	}
	d, err = run(t, in{class: "latency-sensitive", ann: req("8Gi"), node: node8G})
	if err != nil {
		t.Fatal(err)
	}
	// memory.min: the same bound, then the node cap 0.75 × 8Gi takes it all back.
	if !eqPtr(d.Min, i64(0)) || len(d.Warnings) != 1 {
		t.Errorf("Min = %s, warnings %q; want 0 and the node-cap warning", fmtPtr(d.Min), d.Warnings)
	}
}

// The node cap sums cannot wrap: a promised total near MaxInt64 still
// exceeds the cap.
func TestNodeCapNoOverflow(t *testing.T) {
	n := node8G
	n.PromisedMin = math.MaxInt64 - 100
	d, err := run(t, in{class: "latency-sensitive", ann: req("256Mi"), limit: 512 * Mi, node: n})
	if err != nil {
		t.Fatal(err)
	}
	if !eqPtr(d.Min, i64(0)) || len(d.Warnings) != 1 {
		t.Errorf("Min = %s, warnings %q; want 0 and the node-cap warning", fmtPtr(d.Min), d.Warnings)
	}
}

// memory.low has a node cap of its own, nodeLowProtectionFraction of
// MemTotal (default 0.9), first come first served.
func TestNodeLowCap(t *testing.T) {
	n := node8G
	n.PromisedLow = 6*Gi + 768*Mi // 0.9 × 8Gi = 7.2Gi: 256Mi more fits, 512Mi does not
	d, err := run(t, in{class: "burstable", ann: req("256Mi"), limit: 1 * Gi, node: n})
	if err != nil {
		t.Fatal(err)
	}
	if !eqPtr(d.Low, i64(256*Mi)) || len(d.Warnings) != 0 {
		t.Errorf("Low = %s, warnings %q; want 256Mi and no warning", fmtPtr(d.Low), d.Warnings)
	}
	d, err = run(t, in{class: "burstable", ann: req("512Mi"), limit: 1 * Gi, node: n})
	if err != nil {
		t.Fatal(err)
	}
	if !eqPtr(d.Low, i64(0)) || len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], "nodeLowProtectionFraction") {
		t.Errorf("Low = %s, warnings %q; want 0 and one warning naming nodeLowProtectionFraction", fmtPtr(d.Low), d.Warnings)
	}
	cfg := func() *config.Config { c := config.Default(); c.NodeLowProtectionFraction = 1; return c }
	d, err = run(t, in{cfg: cfg, class: "burstable", ann: req("512Mi"), limit: 1 * Gi, node: n})
	if err != nil {
		t.Fatal(err)
	}
	if !eqPtr(d.Low, i64(512*Mi)) {
		t.Errorf("with nodeLowProtectionFraction 1: Low = %s; want 512Mi", fmtPtr(d.Low))
	}
}
