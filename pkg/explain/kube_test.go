package explain

import (
	"strings"
	"testing"

	"nri-memqos/pkg/config"
	"nri-memqos/pkg/policy"
)

// podWith builds a Pod from container resource snippets ("init:" prefix for
// an init container).
func podWith(extra string, ctrs ...string) string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Pod\nmetadata: {name: p, uid: u1}\nspec:\n" + extra)
	var inits, regular []string
	for i, c := range ctrs {
		name := string(rune('a' + i))
		if r, ok := strings.CutPrefix(c, "init:"); ok {
			inits = append(inits, "  - {name: "+name+", resources: "+r+"}\n")
		} else {
			regular = append(regular, "  - {name: "+name+", resources: "+c+"}\n")
		}
	}
	if len(inits) > 0 {
		b.WriteString("  initContainers:\n" + strings.Join(inits, ""))
	}
	b.WriteString("  containers:\n" + strings.Join(regular, ""))
	return b.String()
}

func TestPodQOS(t *testing.T) {
	const guaranteed = "{limits: {cpu: '1', memory: 1Gi}}"
	for _, tc := range []struct {
		name  string
		extra string
		ctrs  []string
		want  policy.QOSClass
	}{
		{"limits only: requests default to them", "", []string{guaranteed}, policy.QOSGuaranteed},
		{"requests equal limits", "", []string{"{requests: {cpu: 1000m, memory: 1024Mi}, limits: {cpu: '1', memory: 1Gi}}"}, policy.QOSGuaranteed},
		{"two guaranteed containers", "", []string{guaranteed, guaranteed}, policy.QOSGuaranteed},
		{"memory limit only", "", []string{"{limits: {memory: 1Gi}}"}, policy.QOSBurstable},
		{"cpu request below limit", "", []string{"{requests: {cpu: 500m}, limits: {cpu: '1', memory: 1Gi}}"}, policy.QOSBurstable},
		{"memory request below limit", "", []string{"{requests: {memory: 512Mi}, limits: {cpu: '1', memory: 1Gi}}"}, policy.QOSBurstable},
		{"one container without resources", "", []string{guaranteed, "{}"}, policy.QOSBurstable},
		{"init container without resources counts", "", []string{"init:{}", guaranteed}, policy.QOSBurstable},
		{"guaranteed init container", "", []string{"init:" + guaranteed, guaranteed}, policy.QOSGuaranteed},
		{"request only", "", []string{"{requests: {memory: 1Mi}}"}, policy.QOSBurstable},
		{"no resources", "", []string{"{}", "{}"}, policy.QOSBestEffort},
		{"zero quantities do not count", "", []string{"{requests: {memory: '0', cpu: '0'}}"}, policy.QOSBestEffort},
		{"other resources do not count", "", []string{"{limits: {ephemeral-storage: 1Gi, hugepages-2Mi: 2Mi}}"}, policy.QOSBestEffort},
		{"pod-level requests equal limits", "  resources: {requests: {cpu: '1', memory: 1Gi}, limits: {cpu: '1', memory: 1Gi}}\n",
			[]string{"{}"}, policy.QOSGuaranteed},
		{"pod-level requests only", "  resources: {requests: {memory: 1Gi}}\n", []string{guaranteed}, policy.QOSBurstable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pods, err := Parse(File{Name: "pod", Data: []byte(podWith(tc.extra, tc.ctrs...))})
			if err != nil {
				t.Fatal(err)
			}
			p := pods[0]
			if p.QOS != tc.want {
				t.Errorf("QoS = %q, want %q", p.QOS, tc.want)
			}
			if got := policy.KubeQOS(p.Pod.CgroupParent); got != tc.want {
				t.Errorf("policy.KubeQOS(%q) = %q, want %q", p.Pod.CgroupParent, got, tc.want)
			}
		})
	}
}

func TestCgroupParentAgreesWithPolicy(t *testing.T) {
	for qos, want := range map[policy.QOSClass]string{
		policy.QOSGuaranteed: "/kubepods/podu1",
		policy.QOSBurstable:  "/kubepods/burstable/podu1",
		policy.QOSBestEffort: "/kubepods/besteffort/podu1",
	} {
		if got := cgroupParent(qos, "u1"); got != want {
			t.Errorf("cgroupParent(%s) = %q, want %q", qos, got, want)
		}
		if got := policy.KubeQOS(cgroupParent(qos, "u1")); got != qos {
			t.Errorf("policy.KubeQOS(%q) = %q, want %q", want, got, qos)
		}
	}
}

func TestKubeletOOMScoreAdj(t *testing.T) {
	const mem = int64(8) << 30
	for _, tc := range []struct {
		name     string
		qos      policy.QOSClass
		critical bool
		request  int64
		memTotal int64
		want     int64
	}{
		{"guaranteed", policy.QOSGuaranteed, false, 1 << 30, mem, -997},
		{"best effort", policy.QOSBestEffort, false, 0, mem, 1000},
		{"node critical burstable", policy.QOSBurstable, true, 1 << 20, mem, -997},
		{"256Mi of 8Gi", policy.QOSBurstable, false, 256 << 20, mem, 969}, // 1000 - 31
		{"10%", policy.QOSBurstable, false, 1000, 10000, 900},
		{"integer division rounds the fraction down", policy.QOSBurstable, false, 1999, 10000, 801},
		{"no memory request", policy.QOSBurstable, false, 0, mem, 999},
		{"tiny request", policy.QOSBurstable, false, 1, mem, 999},
		{"99.8%: clamped to 3", policy.QOSBurstable, false, 998, 1000, 3},
		{"99.7%", policy.QOSBurstable, false, 997, 1000, 3},
		{"99.6%", policy.QOSBurstable, false, 996, 1000, 4},
		{"all of memory", policy.QOSBurstable, false, mem, mem, 3},
		{"more than memory", policy.QOSBurstable, false, 2 * mem, mem, 3},
		{"huge values do not overflow", policy.QOSBurstable, false, 1 << 62, 1<<62 + 1<<60, 200},
	} {
		if got := kubeletOOMScoreAdj(tc.qos, tc.critical, tc.request, tc.memTotal); got != tc.want {
			t.Errorf("%s: kubeletOOMScoreAdj = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// The request the policy reads back from kubelet's oom_score_adj is below
// the real one by less than 1/1000 of node memory (plus a page).
func TestOOMScoreAdjRoundTrip(t *testing.T) {
	const mem = int64(8) << 30
	for _, req := range []int64{64 << 20, 256 << 20, 1 << 30, 3 << 30, 7 << 30} {
		adj := kubeletOOMScoreAdj(policy.QOSBurstable, false, req, mem)
		got, src, err := policy.ResolveRequest(config.Default(), policy.Pod{}, policy.Container{OOMScoreAdj: &adj},
			policy.QOSBurstable, policy.Node{MemTotal: mem})
		if err != nil || src != policy.RequestFromOOMScoreAdj {
			t.Fatalf("ResolveRequest: %v %v", src, err)
		}
		if got > req || req-got > mem/1000+4096 {
			t.Errorf("request %d: the policy reads %d back", req, got)
		}
	}
}

func TestSidecarAndNotes(t *testing.T) {
	pod := "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n" +
		"  initContainers:\n  - {name: setup}\n  - {name: proxy, restartPolicy: Always}\n" +
		"  containers:\n  - {name: app}\n"
	pods, err := Parse(File{Name: "pod", Data: []byte(pod)})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, c := range pods[0].Containers {
		types = append(types, c.Name+":"+c.Type)
	}
	if got := strings.Join(types, " "); got != "setup:init proxy:sidecar app:container" {
		t.Errorf("containers = %s", got)
	}
	if len(pods[0].Notes) != 2 { // the sidecar, the missing uid
		t.Errorf("notes = %q", pods[0].Notes)
	}
}

func TestStatusQOSClassMismatch(t *testing.T) {
	pod := podWith("", "{limits: {cpu: '1', memory: 1Gi}}") + "status: {qosClass: Burstable}\n"
	pods, err := Parse(File{Name: "pod", Data: []byte(pod)})
	if err != nil {
		t.Fatal(err)
	}
	if want := "status.qosClass is Burstable but the spec gives Guaranteed; explain follows the spec"; len(pods[0].Notes) != 1 || pods[0].Notes[0] != want {
		t.Errorf("notes = %q, want %q", pods[0].Notes, want)
	}
	pods, _ = Parse(File{Name: "pod", Data: []byte(podWith("", "{limits: {cpu: '1', memory: 1Gi}}") + "status: {qosClass: Guaranteed}\n")})
	if len(pods[0].Notes) != 0 {
		t.Errorf("notes = %q, want none", pods[0].Notes)
	}
}
