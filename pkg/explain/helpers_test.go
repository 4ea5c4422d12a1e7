package explain_test

import (
	"encoding/json"
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
