package explain_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"nri-memqos/pkg/config"
	"nri-memqos/pkg/explain"
	"nri-memqos/pkg/policy"
)

const (
	mi       = int64(1) << 20
	gi       = int64(1) << 30
	memTotal = 8 * gi
)

func p64(v int64) *int64 { return &v }

var node = policy.Node{MemTotal: memTotal, PageSize: 4096}

const latencyPod = `apiVersion: v1
kind: Pod
metadata:
  name: web
  uid: 1f7c0a42
  labels:
    memqos.nri.io/class: latency-sensitive
spec:
  containers:
  - name: app
    image: nginx
    resources:
      requests:
        cpu: 100m
        memory: 256Mi
      limits:
        memory: 512Mi
`

const latencyPodAnnotated = `apiVersion: v1
kind: Pod
metadata:
  name: web
  uid: 1f7c0a42
  labels:
    memqos.nri.io/class: latency-sensitive
  annotations:
    memqos.nri.io/memory-request: 256Mi
spec:
  containers:
  - name: app
    resources:
      requests: {memory: 256Mi}
      limits: {memory: 512Mi}
`

// guaranteedPod is JSON: requests default to the limits.
const guaranteedPod = `{
  "apiVersion": "v1",
  "kind": "Pod",
  "metadata": {"name": "db", "namespace": "prod", "uid": "aaaa", "labels": {"memqos.nri.io/class": "burstable"}},
  "spec": {"containers": [{"name": "db", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}
}`

const bestEffortPod = `apiVersion: v1
kind: Pod
metadata:
  name: batch
  uid: bbbb
  labels:
    memqos.nri.io/class: best-effort
spec:
  containers:
  - name: job
    image: busybox
`

const criSandbox = `{
  "metadata": {"name": "cri-pod", "namespace": "e2e", "uid": "cccc", "attempt": 0},
  "labels": {"memqos.nri.io/class": "burstable"},
  "log_directory": "",
  "linux": {"cgroup_parent": "/kubepods/burstable/podcccc"}
}`

const criContainer = `metadata:
  name: app
image:
  image: busybox
command: [/bin/sleep, "3600"]
linux:
  resources:
    memory_limit_in_bytes: 1073741824
    oom_score_adj: 900
`

const criContainerUnified = `{"metadata": {"name": "app"}, "image": {"image": "busybox"},
 "linux": {"resources": {"memory_limit_in_bytes": 1073741824, "oom_score_adj": 900,
   "unified": {"memory.min": "536870912"}}}}`

// multiPod has one container opted in, one opted out by annotation and one
// with an unknown class.
const multiPod = `apiVersion: v1
kind: Pod
metadata:
  name: shop
  uid: dddd
  labels:
    memqos.nri.io/class: latency-sensitive
  annotations:
    memqos.nri.io/class.container.logger: none
    memqos.nri.io/class.container.cache: gold
    memqos.nri.io/memory-request.container.app: 256Mi
spec:
  containers:
  - name: app
    resources:
      requests: {memory: 256Mi}
      limits: {memory: 512Mi}
  - name: logger
    resources:
      requests: {memory: 64Mi}
  - name: cache
    resources:
      requests: {memory: 128Mi}
`

const goldErr = `memqos: pod default/shop container "cache": annotation memqos.nri.io/class.container.cache "gold": unknown class; allowed: best-effort, burstable, latency-sensitive, none`

type wantCtr struct {
	name              string
	optedIn           bool
	class, classSrc   string
	oomAdj            int64
	unifiedV2         map[string]string // what the runtime gives on v2
	limit             int64
	v2Req             int64
	v2Src             policy.RequestSource
	v1Req             int64
	v1Src             policy.RequestSource
	v2                map[string]string
	soft, swp, memsw  *int64
	err               string // the same on both versions
	notes             int
	specReq, specLimt *int64
}

type wantPod struct {
	ns, name, uid, qos, parent string
	ctrs                       []wantCtr
}

func files(docs ...string) []explain.File {
	var fs []explain.File
	for i, d := range docs {
		fs = append(fs, explain.File{Name: "in" + string(rune('0'+i)), Data: []byte(d)})
	}
	return fs
}

func explainDocs(t *testing.T, opts explain.Options, docs ...string) *explain.Report {
	t.Helper()
	pods, err := explain.Parse(files(docs...)...)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	rep, err := explain.Explain(config.Default(), node, pods, opts)
	if err != nil {
		t.Fatalf("Explain: %v", err)
	}
	return rep
}

func eqPtr(a, b *int64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func fmtPtr(p *int64) string {
	if p == nil {
		return "nil"
	}
	b, _ := json.Marshal(*p)
	return string(b)
}

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
	if want := w.unifiedV2; !maps.Equal(c.Runtime.UnifiedV2, want) && !(len(want) == 0 && len(c.Runtime.UnifiedV2) == 0) {
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
	if want := w.v2; !maps.Equal(c.V2.Unified, want) && !(len(want) == 0 && len(c.V2.Unified) == 0) {
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

const goldenText = `node: MemTotal 8589934592 (8Gi), page size 4096, allocatable 8589934592 (8Gi), kubelet MemoryQoS off

pod default/shop (Pod, uid dddd, cgroup parent /kubepods/burstable/poddddd)
  container app
    class                           latency-sensitive (pod label)
    QoS                             Burstable (pod spec)
    pod spec                        request 268435456 (256Mi), limit 536870912 (512Mi)
    runtime gives                   limit 536870912 (512Mi), oom_score_adj 969
    request                         268435456 (256Mi) from container annotation
    limit                           536870912 (512Mi)
    v2 memory.min                   268435456 (256Mi)
    v2 memory.swap.max              0
    v1 memory.soft_limit_in_bytes   268435456 (256Mi)
    v1 memory.swappiness            0
    v1 memory.memsw.limit_in_bytes  536870912 (512Mi) (only where the kernel accounts swap)
    reclaim                         background from 0.95 down to 0.9 of min(memory.high, memory.max), node-pressure priority 100
  container logger
    class          none: not opted in; the plugin leaves this container alone
    QoS            Burstable (pod spec)
    pod spec       request 67108864 (64Mi), limit none
    runtime gives  limit none, oom_score_adj 993
  container cache
    class          invalid
    QoS            Burstable (pod spec)
    pod spec       request 134217728 (128Mi), limit none
    runtime gives  limit none, oom_score_adj 985
    error          ` + goldErr + `
`

func TestWriteTextGolden(t *testing.T) {
	rep := explainDocs(t, explain.Options{}, multiPod)
	var buf bytes.Buffer
	if err := explain.WriteText(&buf, rep); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != goldenText {
		t.Errorf("text output differs.\n--- got\n%s--- want\n%s", got, goldenText)
	}
}

func TestWriteJSON(t *testing.T) {
	rep := explainDocs(t, explain.Options{KubeletMemoryQoS: true}, latencyPod)
	var a, b bytes.Buffer
	if err := explain.WriteJSON(&a, rep); err != nil {
		t.Fatal(err)
	}
	if err := explain.WriteJSON(&b, explainDocs(t, explain.Options{KubeletMemoryQoS: true}, latencyPod)); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Error("JSON output is not stable")
	}
	var doc struct {
		Node             map[string]int64 `json:"node"`
		KubeletMemoryQoS bool             `json:"kubeletMemoryQoS"`
		Pods             []struct {
			QOS          string                       `json:"qos"`
			CgroupParent string                       `json:"cgroupParent"`
			Containers   []map[string]json.RawMessage `json:"containers"`
		} `json:"pods"`
	}
	if err := json.Unmarshal(a.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, a.String())
	}
	if doc.Node["memTotal"] != memTotal || doc.Node["pageSize"] != 4096 || !doc.KubeletMemoryQoS {
		t.Errorf("node = %v, kubeletMemoryQoS %v", doc.Node, doc.KubeletMemoryQoS)
	}
	if len(doc.Pods) != 1 || doc.Pods[0].QOS != "Burstable" || doc.Pods[0].CgroupParent != "/kubepods/burstable/pod1f7c0a42" {
		t.Fatalf("pods = %+v", doc.Pods)
	}
	c := doc.Pods[0].Containers[0]
	wantKeys := []string{"cgroupV1", "cgroupV2", "class", "classSource", "name", "notes", "optedIn", "runtime", "spec", "type"}
	if got := slices.Sorted(maps.Keys(c)); !slices.Equal(got, wantKeys) {
		t.Errorf("container keys = %v, want %v", got, wantKeys)
	}
	var v2 map[string]any
	if err := json.Unmarshal(c["cgroupV2"], &v2); err != nil {
		t.Fatal(err)
	}
	wantV2 := []string{"error", "limit", "overridden", "reclaim", "request", "requestSource", "setLimit", "unified", "warnings"}
	if got := slices.Sorted(maps.Keys(v2)); !slices.Equal(got, wantV2) {
		t.Errorf("cgroupV2 keys = %v, want %v", got, wantV2)
	}
	if u := v2["unified"].(map[string]any); u["memory.min"] != "268435456" || u["memory.swap.max"] != "0" {
		t.Errorf("cgroupV2.unified = %v", u)
	}
	var v1 map[string]any
	if err := json.Unmarshal(c["cgroupV1"], &v1); err != nil {
		t.Fatal(err)
	}
	if v1["softLimit"] != 266285056.0 || v1["swappiness"] != 0.0 || v1["memswLimit"] != 536870912.0 || v1["requestSource"] != "oom_score_adj" {
		t.Errorf("cgroupV1 = %v", v1)
	}
}

func TestParseErrors(t *testing.T) {
	pod := func(resources string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    resources: " + resources + "\n"
	}
	for _, tc := range []struct {
		name string
		docs []string
		want string // exact error
	}{
		{"bad memory quantity", []string{pod("{requests: {memory: lots}}")},
			`in0: pod default/p container "c": resources.requests.memory "lots": not a quantity; allowed: a memory quantity from 0 to 8Ei such as 256Mi or 1G`},
		{"negative memory", []string{pod("{limits: {memory: -1Gi}}")},
			`in0: pod default/p container "c": resources.limits.memory "-1Gi": negative; allowed: a memory quantity from 0 to 8Ei such as 256Mi or 1G`},
		{"bad cpu", []string{pod("{requests: {cpu: fast}}")},
			`in0: pod default/p container "c": resources.requests.cpu "fast": not a quantity; allowed: a non-negative CPU quantity such as 500m or 2`},
		{"request above limit", []string{pod("{requests: {memory: 1Gi}, limits: {memory: 512Mi}}")},
			`in0: pod default/p container "c": resources.requests.memory "1Gi": above resources.limits.memory "512Mi"; allowed: at most the limit`},
		{"not a pod", []string{"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"},
			`in0: kind Deployment; allowed: Pod (or a List of Pods)`},
		{"wrong apiVersion", []string{"apiVersion: v2\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n"},
			`in0: apiVersion "v2"; allowed: v1`},
		{"no containers", []string{"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"},
			`in0: pod default/p has no spec.containers; allowed: at least one container`},
		{"no name", []string{"apiVersion: v1\nkind: Pod\nmetadata: {}\nspec: {containers: [{name: c}]}\n"},
			`in0: metadata.name is empty; allowed: the pod's name`},
		{"CRI sandbox alone", []string{criSandbox},
			`in0: a CRI config without kind; allowed: a Kubernetes Pod (kind: Pod), or a CRI pod sandbox config and a container config as two files`},
		{"not YAML", []string{"{{{"}, ""},
		{"empty", []string{"\n"}, `in0: empty; allowed: a Kubernetes Pod or a CRI config`},
		{"pod with a second file", []string{latencyPod, criContainer},
			`in0: kind Pod with a second file; allowed: one Kubernetes Pod file, or a CRI pod sandbox config and a container config`},
		{"CRI negative limit", []string{criSandbox, "metadata: {name: c}\nlinux: {resources: {memory_limit_in_bytes: -5}}\n"},
			`in1: linux.resources.memory_limit_in_bytes "-5": negative; allowed: 0 (no limit) or a number of bytes`},
		{"CRI oom_score_adj", []string{criSandbox, "metadata: {name: c}\nlinux: {resources: {oom_score_adj: 2000}}\n"},
			`in1: linux.resources.oom_score_adj "2000": out of range; allowed: -1000 to 1000`},
		{"CRI container without name", []string{criSandbox, "image: {image: busybox}\n"},
			`in1: metadata.name is empty; allowed: the container's name`},
		{"CRI wrong type", []string{criSandbox, "metadata: {name: c}\nlabels: [a]\nannotations: 5\n"},
			`in1: annotations: a number where a map[string]string is allowed`},
		{"pod-level limit without request", []string{"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  resources: {limits: {memory: 1Gi}}\n  containers: [{name: c}]\n"},
			`in0: pod default/p: spec.resources.limits.memory "1Gi" without spec.resources.requests.memory: Kubernetes' defaulting of pod-level requests is not modelled; allowed: give the request too`},
		{"three files", []string{criSandbox, criContainer, criContainer},
			`3 input files; allowed: one Kubernetes Pod file, or a CRI pod sandbox config and a container config`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := explain.Parse(files(tc.docs...)...)
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if tc.want != "" && err.Error() != tc.want {
				t.Errorf("error = %q\n        want %q", err, tc.want)
			}
		})
	}
}

// Several Pods, as a List or as YAML documents, are explained in order.
func TestParseSeveralPods(t *testing.T) {
	list := `{"apiVersion": "v1", "kind": "List", "items": [` + guaranteedPod + `, ` + guaranteedPod + `]}`
	bare := strings.NewReplacer(`"apiVersion": "v1",`, "", `"kind": "Pod",`, "").Replace(guaranteedPod)
	for name, in := range map[string]string{
		"list":      list,
		"PodList":   `{"apiVersion": "v1", "kind": "PodList", "items": [` + bare + `, ` + bare + `]}`,
		"documents": latencyPod + "---\n" + guaranteedPod + "\n---\n",
	} {
		pods, err := explain.Parse(files(in)...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(pods) != 2 {
			t.Errorf("%s: %d pods, want 2", name, len(pods))
		}
	}
}
