package explain_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"nri-memqos/pkg/explain"
)

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
    reclaim                         background from 0.95 down to 0.9 of min(memory.high, memory.max), node-pressure priority 100, lower priorities pay at pressure 5% or 1000 refaults/s or 256 pages/s taken by reclaim
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
