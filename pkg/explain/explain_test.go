package explain_test

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"

	"nri-memqos/pkg/config"
	"nri-memqos/pkg/explain"
	"nri-memqos/pkg/policy"
)

func TestExplain(t *testing.T) {
	lsV2 := map[string]string{"memory.min": "268435456", "memory.swap.max": "0"}
	for _, tc := range []struct {
		name string
		docs []string
		opts explain.Options
		want wantPod
	}{
		{
			name: "latency-sensitive, kubelet MemoryQoS: exact on v2, oom_score_adj on v1",
			docs: []string{latencyPod},
			opts: explain.Options{KubeletMemoryQoS: true},
			want: wantPod{ns: "default", name: "web", uid: "1f7c0a42", qos: "Burstable", parent: "/kubepods/burstable/pod1f7c0a42",
				ctrs: []wantCtr{{
					name: "app", optedIn: true, class: "latency-sensitive", classSrc: "pod label", oomAdj: 969,
					unifiedV2: map[string]string{"memory.min": "268435456"}, limit: 512 * mi,
					v2Req: 268435456, v2Src: policy.RequestFromUnifiedMin,
					// 1000-969 = 31 thousandths of 8Gi, page-aligned down
					v1Req: 266285056, v1Src: policy.RequestFromOOMScoreAdj,
					v2:   lsV2,
					soft: p64(266285056), swp: p64(0), memsw: p64(536870912),
					notes: 2, specReq: p64(256 * mi), specLimt: p64(512 * mi),
				}}},
		},
		{
			name: "latency-sensitive, kubelet 1.36+ memoryReservationPolicy None: kubelet passes zeros, the request comes from oom_score_adj",
			docs: []string{latencyPod},
			opts: explain.Options{KubeletMemoryQoS: true, KubeletReservation: explain.ReservationNone},
			want: wantPod{ns: "default", name: "web", uid: "1f7c0a42", qos: "Burstable", parent: "/kubepods/burstable/pod1f7c0a42",
				ctrs: []wantCtr{{
					name: "app", optedIn: true, class: "latency-sensitive", classSrc: "pod label", oomAdj: 969,
					unifiedV2: map[string]string{"memory.min": "0", "memory.low": "0"}, limit: 512 * mi,
					v2Req: 266285056, v2Src: policy.RequestFromOOMScoreAdj,
					v1Req: 266285056, v1Src: policy.RequestFromOOMScoreAdj,
					v2:   map[string]string{"memory.min": "266285056", "memory.swap.max": "0"},
					soft: p64(266285056), swp: p64(0), memsw: p64(536870912),
					notes: 1, specReq: p64(256 * mi), specLimt: p64(512 * mi),
				}}},
		},
		{
			name: "latency-sensitive, kubelet TieredReservation: a Burstable container's memory.low is its request, exact",
			docs: []string{latencyPod},
			opts: explain.Options{KubeletMemoryQoS: true, KubeletReservation: explain.ReservationTiered},
			want: wantPod{ns: "default", name: "web", uid: "1f7c0a42", qos: "Burstable", parent: "/kubepods/burstable/pod1f7c0a42",
				ctrs: []wantCtr{{
					name: "app", optedIn: true, class: "latency-sensitive", classSrc: "pod label", oomAdj: 969,
					unifiedV2: map[string]string{"memory.low": "268435456"}, limit: 512 * mi,
					v2Req: 268435456, v2Src: policy.RequestFromUnifiedLow,
					v1Req: 266285056, v1Src: policy.RequestFromOOMScoreAdj,
					v2:   map[string]string{"memory.min": "268435456", "memory.swap.max": "0"},
					soft: p64(266285056), swp: p64(0), memsw: p64(536870912),
					notes: 1, specReq: p64(256 * mi), specLimt: p64(512 * mi),
				}}},
		},
		{
			name: "latency-sensitive, request annotation: exact on both",
			docs: []string{latencyPodAnnotated},
			want: wantPod{ns: "default", name: "web", uid: "1f7c0a42", qos: "Burstable", parent: "/kubepods/burstable/pod1f7c0a42",
				ctrs: []wantCtr{{
					name: "app", optedIn: true, class: "latency-sensitive", classSrc: "pod label", oomAdj: 969, limit: 512 * mi,
					v2Req: 268435456, v2Src: policy.RequestFromPodAnnotation,
					v1Req: 268435456, v1Src: policy.RequestFromPodAnnotation,
					v2:   lsV2,
					soft: p64(268435456), swp: p64(0), memsw: p64(536870912),
					specReq: p64(256 * mi), specLimt: p64(512 * mi),
				}}},
		},
		{
			name: "latency-sensitive, oom_score_adj only",
			docs: []string{latencyPod},
			want: wantPod{ns: "default", name: "web", uid: "1f7c0a42", qos: "Burstable", parent: "/kubepods/burstable/pod1f7c0a42",
				ctrs: []wantCtr{{
					name: "app", optedIn: true, class: "latency-sensitive", classSrc: "pod label", oomAdj: 969, limit: 512 * mi,
					v2Req: 266285056, v2Src: policy.RequestFromOOMScoreAdj,
					v1Req: 266285056, v1Src: policy.RequestFromOOMScoreAdj,
					v2:   map[string]string{"memory.min": "266285056", "memory.swap.max": "0"},
					soft: p64(266285056), swp: p64(0), memsw: p64(536870912),
					notes: 1, specReq: p64(256 * mi), specLimt: p64(512 * mi),
				}}},
		},
		{
			name: "Guaranteed (JSON): request is the limit, low capped at 0.9 of it",
			docs: []string{guaranteedPod},
			want: wantPod{ns: "prod", name: "db", uid: "aaaa", qos: "Guaranteed", parent: "/kubepods/podaaaa",
				ctrs: []wantCtr{{
					name: "db", optedIn: true, class: "burstable", classSrc: "pod label", oomAdj: -997, limit: gi,
					v2Req: gi, v2Src: policy.RequestFromGuaranteedLimit,
					v1Req: gi, v1Src: policy.RequestFromGuaranteedLimit,
					v2:      map[string]string{"memory.low": "966365184"},
					soft:    p64(966365184),
					specReq: p64(gi), specLimt: p64(gi),
				}}},
		},
		{
			name: "BestEffort: memory.high from allocatable, oom group",
			docs: []string{bestEffortPod},
			want: wantPod{ns: "default", name: "batch", uid: "bbbb", qos: "BestEffort", parent: "/kubepods/besteffort/podbbbb",
				ctrs: []wantCtr{{
					name: "job", optedIn: true, class: "best-effort", classSrc: "pod label", oomAdj: 1000,
					v2Src: policy.RequestUnknown, v1Src: policy.RequestUnknown,
					v2:   map[string]string{"memory.high": "6871945216", "memory.oom.group": "1"},
					soft: p64(0), // managed, unprotected: reclaimed first
				}}},
		},
		{
			name: "CRI pair",
			docs: []string{criSandbox, criContainer},
			want: wantPod{ns: "e2e", name: "cri-pod", uid: "cccc", qos: "Burstable", parent: "/kubepods/burstable/podcccc",
				ctrs: []wantCtr{{
					name: "app", optedIn: true, class: "burstable", classSrc: "pod label", oomAdj: 900, limit: gi,
					v2Req: 858992640, v2Src: policy.RequestFromOOMScoreAdj,
					v1Req: 858992640, v1Src: policy.RequestFromOOMScoreAdj,
					v2:   map[string]string{"memory.low": "858992640", "memory.high": "1052266496"},
					soft: p64(858992640),
				}}},
		},
		{
			name: "CRI pair in crictl create's order (container first)",
			docs: []string{criContainer, criSandbox},
			want: wantPod{ns: "e2e", name: "cri-pod", uid: "cccc", qos: "Burstable", parent: "/kubepods/burstable/podcccc",
				ctrs: []wantCtr{{
					name: "app", optedIn: true, class: "burstable", classSrc: "pod label", oomAdj: 900, limit: gi,
					v2Req: 858992640, v2Src: policy.RequestFromOOMScoreAdj,
					v1Req: 858992640, v1Src: policy.RequestFromOOMScoreAdj,
					v2:   map[string]string{"memory.low": "858992640", "memory.high": "1052266496"},
					soft: p64(858992640),
				}}},
		},
		{
			name: "CRI pair with kubelet's unified memory.min",
			docs: []string{criSandbox, criContainerUnified},
			want: wantPod{ns: "e2e", name: "cri-pod", uid: "cccc", qos: "Burstable", parent: "/kubepods/burstable/podcccc",
				ctrs: []wantCtr{{
					name: "app", optedIn: true, class: "burstable", classSrc: "pod label", oomAdj: 900, limit: gi,
					unifiedV2: map[string]string{"memory.min": "536870912"},
					v2Req:     512 * mi, v2Src: policy.RequestFromUnifiedMin,
					v1Req: 512 * mi, v1Src: policy.RequestFromUnifiedMin,
					// floor(512Mi + 0.9*512Mi) page-aligned
					v2:    map[string]string{"memory.low": "536870912", "memory.high": "1020051456"},
					soft:  p64(536870912),
					notes: 1, // runc refuses unified keys on v1
				}}},
		},
		{
			name: "multi-container: one opted out, one invalid",
			docs: []string{multiPod},
			want: wantPod{ns: "default", name: "shop", uid: "dddd", qos: "Burstable", parent: "/kubepods/burstable/poddddd",
				ctrs: []wantCtr{
					{
						name: "app", optedIn: true, class: "latency-sensitive", classSrc: "pod label", oomAdj: 969, limit: 512 * mi,
						v2Req: 268435456, v2Src: policy.RequestFromContainerAnnotation,
						v1Req: 268435456, v1Src: policy.RequestFromContainerAnnotation,
						v2:   lsV2,
						soft: p64(268435456), swp: p64(0), memsw: p64(536870912),
						specReq: p64(256 * mi), specLimt: p64(512 * mi),
					},
					{name: "logger", oomAdj: 993, specReq: p64(64 * mi)},
					{name: "cache", oomAdj: 985, err: goldErr, specReq: p64(128 * mi)},
				}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := explainDocs(t, tc.opts, tc.docs...)
			if len(rep.Pods) != 1 {
				t.Fatalf("%d pods, want 1", len(rep.Pods))
			}
			p, w := rep.Pods[0], tc.want
			if p.Namespace != w.ns || p.Name != w.name || p.UID != w.uid || p.QOS != w.qos || p.CgroupParent != w.parent {
				t.Errorf("pod = %s/%s uid %s %s %s, want %s/%s uid %s %s %s",
					p.Namespace, p.Name, p.UID, p.QOS, p.CgroupParent, w.ns, w.name, w.uid, w.qos, w.parent)
			}
			if len(p.Containers) != len(w.ctrs) {
				t.Fatalf("%d containers, want %d", len(p.Containers), len(w.ctrs))
			}
			for i, c := range p.Containers {
				checkContainer(t, c, w.ctrs[i])
			}
		})
	}
}

func checkContainer(t *testing.T, c explain.ContainerResult, w wantCtr) {
	t.Helper()
	errorf := func(format string, a ...any) { t.Helper(); t.Errorf(c.Name+": "+format, a...) }
	if c.Name != w.name {
		errorf("name %q, want %q", c.Name, w.name)
	}
	if c.OptedIn != w.optedIn || c.Class != w.class || c.ClassSource != w.classSrc {
		errorf("class = %v %q (%q), want %v %q (%q)", c.OptedIn, c.Class, c.ClassSource, w.optedIn, w.class, w.classSrc)
	}
	if !eqPtr(c.Runtime.OOMScoreAdj, &w.oomAdj) {
		errorf("oom_score_adj = %s, want %d", fmtPtr(c.Runtime.OOMScoreAdj), w.oomAdj)
	}
	if c.Runtime.MemoryLimit != w.limit {
		errorf("runtime limit = %d, want %d", c.Runtime.MemoryLimit, w.limit)
	}
	if want := w.unifiedV2; !maps.Equal(c.Runtime.UnifiedV2, want) && (len(want) != 0 || len(c.Runtime.UnifiedV2) != 0) {
		errorf("runtime unified v2 = %v, want %v", c.Runtime.UnifiedV2, want)
	}
	if c.Spec != nil && (!eqPtr(c.Spec.MemoryRequest, w.specReq) || !eqPtr(c.Spec.MemoryLimit, w.specLimt)) {
		errorf("spec = %s/%s, want %s/%s", fmtPtr(c.Spec.MemoryRequest), fmtPtr(c.Spec.MemoryLimit), fmtPtr(w.specReq), fmtPtr(w.specLimt))
	}
	if w.err != "" {
		for v, e := range map[string]*explain.Error{"v2": c.V2.Error, "v1": c.V1.Error} {
			if e == nil || e.Message != w.err {
				errorf("%s error = %+v, want %q", v, e, w.err)
			}
		}
		return
	}
	if c.V2.Error != nil || c.V1.Error != nil {
		errorf("unexpected errors %+v %+v", c.V2.Error, c.V1.Error)
	}
	if c.V2.Request != w.v2Req || c.V2.RequestSource != string(w.v2Src) {
		errorf("v2 request = %d (%s), want %d (%s)", c.V2.Request, c.V2.RequestSource, w.v2Req, w.v2Src)
	}
	if c.V1.Request != w.v1Req || c.V1.RequestSource != string(w.v1Src) {
		errorf("v1 request = %d (%s), want %d (%s)", c.V1.Request, c.V1.RequestSource, w.v1Req, w.v1Src)
	}
	if w.optedIn && (c.V2.Limit != w.limit || c.V1.Limit != w.limit || c.V2.SetLimit != 0) {
		errorf("decided limit = %d/%d set %d, want %d", c.V2.Limit, c.V1.Limit, c.V2.SetLimit, w.limit)
	}
	if want := w.v2; !maps.Equal(c.V2.Unified, want) && (len(want) != 0 || len(c.V2.Unified) != 0) {
		errorf("v2 unified = %v, want %v", c.V2.Unified, want)
	}
	if !eqPtr(c.V1.SoftLimit, w.soft) || !eqPtr(c.V1.Swappiness, w.swp) || !eqPtr(c.V1.MemSwLimit, w.memsw) {
		errorf("v1 soft/swappiness/memsw = %s/%s/%s, want %s/%s/%s", fmtPtr(c.V1.SoftLimit), fmtPtr(c.V1.Swappiness),
			fmtPtr(c.V1.MemSwLimit), fmtPtr(w.soft), fmtPtr(w.swp), fmtPtr(w.memsw))
	}
	if len(c.Notes) != w.notes {
		errorf("notes = %q, want %d", c.Notes, w.notes)
	}
	if len(c.V2.Warnings)+len(c.V1.Warnings) != 0 {
		errorf("warnings = %q %q", c.V2.Warnings, c.V1.Warnings)
	}
}

// The invalid annotation fails only its container, with one line naming
// key, value and what is allowed.
func TestExplainInvalidAnnotation(t *testing.T) {
	rep := explainDocs(t, explain.Options{}, multiPod)
	if n := rep.Failing(); n != 1 {
		t.Fatalf("Failing() = %d, want 1", n)
	}
	cache := rep.Pods[0].Containers[2]
	e := cache.V2.Error
	if e == nil {
		t.Fatal("no error for container cache")
	}
	if strings.Contains(e.Message, "\n") {
		t.Errorf("error is not one line: %q", e.Message)
	}
	if e.Key != "annotation memqos.nri.io/class.container.cache" || e.Value != "gold" ||
		e.Reason != "unknown class" || e.Allowed != "best-effort, burstable, latency-sensitive, none" {
		t.Errorf("error fields = %+v", *e)
	}
	if app := rep.Pods[0].Containers[0]; app.V2.Error != nil || app.V2.Unified["memory.min"] != "268435456" {
		t.Errorf("the other containers must still be decided: %+v", app.V2)
	}
}

// Other invalid annotations, per container.
func TestExplainInvalidRequestAnnotation(t *testing.T) {
	pod := strings.Replace(latencyPodAnnotated, "memqos.nri.io/memory-request: 256Mi", "memqos.nri.io/memory-request: 1Gi", 1)
	rep := explainDocs(t, explain.Options{}, pod)
	want := `memqos: pod default/web container "app": annotation memqos.nri.io/memory-request "1Gi": above the container's memory limit 536870912; allowed: at most the limit`
	c := rep.Pods[0].Containers[0]
	if c.V2.Error == nil || c.V2.Error.Message != want || c.V1.Error == nil || c.V1.Error.Message != want {
		t.Errorf("errors = %+v / %+v, want %q", c.V2.Error, c.V1.Error, want)
	}
	if !c.OptedIn || c.Class != "latency-sensitive" {
		t.Errorf("class = %v %q, want the class even when the request is invalid", c.OptedIn, c.Class)
	}
}

// A memory.min override within the request kubelet reports on v2 but above
// the one oom_score_adj implies on v1 fails only on v1.
func TestExplainErrorOnOneVersion(t *testing.T) {
	cfg, err := config.Parse([]byte("allowedOverrides: [memory.min]\n"))
	if err != nil {
		t.Fatal(err)
	}
	pod := strings.Replace(latencyPod, "  labels:\n", "  annotations:\n    memqos.nri.io/memory.min.container.app: 256Mi\n  labels:\n", 1)
	pods, err := explain.Parse(files(pod)...)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := explain.Explain(cfg, node, pods, explain.Options{KubeletMemoryQoS: true})
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Pods[0].Containers[0]
	if c.V2.Error != nil || c.V2.Unified["memory.min"] != "268435456" || !slices.Equal(c.V2.Overridden, []string{"memory.min"}) {
		t.Errorf("v2 = %+v", c.V2)
	}
	want := `memqos: pod default/web container "app": annotation memqos.nri.io/memory.min.container.app "256Mi": above the container's memory request 266285056; allowed: 0 to 266285056 (the request)`
	if c.V1.Error == nil || c.V1.Error.Message != want {
		t.Errorf("v1 error = %+v, want %q", c.V1.Error, want)
	}
	if rep.Failing() != 1 {
		t.Errorf("Failing() = %d", rep.Failing())
	}
}

// The memory.min of containers created before counts towards the node cap,
// as in the plugin's ledger.
func TestExplainNodeCapAcrossContainers(t *testing.T) {
	pod := `apiVersion: v1
kind: Pod
metadata:
  name: big
  annotations: {memqos.nri.io/memory-request: 3500Mi}
  labels: {memqos.nri.io/class: latency-sensitive}
spec:
  containers:
  - {name: a, resources: {limits: {memory: 4Gi}}}
  - {name: b, resources: {limits: {memory: 4Gi}}}
`
	rep := explainDocs(t, explain.Options{}, pod)
	a, b := rep.Pods[0].Containers[0], rep.Pods[0].Containers[1]
	if a.V2.Unified["memory.min"] != "3670016000" || len(a.V2.Warnings) != 0 {
		t.Errorf("a v2 = %+v", a.V2)
	}
	// 2 * 3500Mi > 0.75 * 8Gi: b gets no protection (an explicit
	// memory.min 0, soft limit 0), and a warning.
	if got, ok := b.V2.Unified["memory.min"]; !ok || got != "0" || len(b.V2.Warnings) != 1 {
		t.Errorf("b v2 = %+v, want memory.min 0 and one warning", b.V2)
	}
	if _, ok := b.V2.Unified["memory.low"]; ok {
		t.Errorf("b v2 = %+v, want no memory.low (the class sets none)", b.V2)
	}
	if b.V1.SoftLimit == nil || *b.V1.SoftLimit != 0 || len(b.V1.Warnings) != 1 {
		t.Errorf("b v1 = %+v (soft limit %s), want soft limit 0 and one warning", b.V1, fmtPtr(b.V1.SoftLimit))
	}
	// The cap counts only running containers: a plain init container
	// before them has exited.
	withInit := strings.Replace(pod, "  containers:\n", "  initContainers:\n  - {name: i, resources: {limits: {memory: 4Gi}}}\n  containers:\n", 1)
	rep2 := explainDocs(t, explain.Options{}, withInit)
	if a := rep2.Pods[0].Containers[1]; a.Name != "a" || a.V2.Unified["memory.min"] != "3670016000" {
		t.Errorf("a after an init container: %+v", a.V2)
	}
	var buf bytes.Buffer
	if err := explain.WriteText(&buf, rep); err != nil {
		t.Fatal(err)
	}
	found := false
	zeros := map[string]bool{}
	for line := range strings.Lines(buf.String()) {
		found = found || strings.HasPrefix(line, "    warning ") && strings.Contains(line, " node protection cap reached: ")
		if f := strings.Fields(line); len(f) == 3 && f[2] == "0" {
			zeros[f[0]+" "+f[1]] = true
		}
	}
	if !found {
		t.Errorf("text output lacks the warning:\n%s", buf.String())
	}
	for _, k := range []string{"v2 memory.min", "v1 memory.soft_limit_in_bytes"} {
		if !zeros[k] {
			t.Errorf("text output lacks %q 0 for b:\n%s", k, buf.String())
		}
	}
}

func TestExplainNilConfigIsDefault(t *testing.T) {
	pods, err := explain.Parse(files(guaranteedPod)...)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := explain.Explain(nil, node, pods, explain.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Pods[0].Containers[0].V2.Unified["memory.low"]; got != "966365184" {
		t.Errorf("memory.low = %q", got)
	}
}

func TestExplainDefaultLimitAndAllocatable(t *testing.T) {
	cfg, err := config.Parse([]byte("nodeAllocatable: 4Gi\nclasses:\n  capped:\n    throttlingFactor: 0.5\n    defaultLimit: 1Gi\n"))
	if err != nil {
		t.Fatal(err)
	}
	pods, err := explain.Parse(files(strings.Replace(bestEffortPod, "best-effort", "capped", 1))...)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := explain.Explain(cfg, node, pods, explain.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Pods[0].Containers[0]
	if rep.Node.Allocatable != 4*gi {
		t.Errorf("allocatable = %d, want 4Gi from the config", rep.Node.Allocatable)
	}
	if c.V2.SetLimit != gi || c.V1.SetLimit != gi || c.V2.Unified["memory.high"] != "536870912" {
		t.Errorf("v2 = %+v", c.V2)
	}
	if c.V1.SoftLimit == nil || *c.V1.SoftLimit != 0 {
		t.Errorf("v1 soft limit = %s, want 0 (the class protects nothing)", fmtPtr(c.V1.SoftLimit))
	}
	var buf bytes.Buffer
	if err := explain.WriteText(&buf, rep); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"    v2 memory.max                  1073741824 (1Gi)\n",
		"    v1 memory.limit_in_bytes       1073741824 (1Gi)\n",
		"    v1 memory.soft_limit_in_bytes  0\n",
		"    limit                          1073741824 (1Gi) (set by the plugin: class defaultLimit)\n",
	} {
		if !strings.Contains(buf.String(), line) {
			t.Errorf("text lacks %q:\n%s", line, buf.String())
		}
	}
}

func TestExplainNeedsMemTotalForBurstable(t *testing.T) {
	pods, err := explain.Parse(files(latencyPod)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := explain.Explain(nil, policy.Node{}, pods, explain.Options{}); err == nil || !strings.Contains(err.Error(), "MemTotal") {
		t.Errorf("err = %v, want one naming MemTotal", err)
	}
	// Guaranteed and CRI input do not need it.
	pods, _ = explain.Parse(files(guaranteedPod)...)
	if _, err := explain.Explain(nil, policy.Node{}, pods, explain.Options{}); err != nil {
		t.Errorf("Guaranteed: %v", err)
	}
}
