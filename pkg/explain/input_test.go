package explain_test

import (
	"strings"
	"testing"

	"nri-memqos/pkg/explain"
)

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
