package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nri-memqos/pkg/node"
)

const explainPod = `apiVersion: v1
kind: Pod
metadata:
  name: web
  uid: u1
  labels:
    memqos.nri.io/class: latency-sensitive
spec:
  containers:
  - name: app
    resources:
      requests: {memory: 256Mi}
      limits: {memory: 512Mi}
`

const explainBadPod = `apiVersion: v1
kind: Pod
metadata:
  name: web
  annotations:
    memqos.nri.io/class.container.app: gold
spec:
  containers:
  - name: app
  - name: other
`

const explainSandbox = `{"metadata": {"name": "cri-pod", "namespace": "e2e", "uid": "c1"},
 "labels": {"memqos.nri.io/class": "burstable"},
 "linux": {"cgroup_parent": "/kubepods/burstable/podc1"}}`

const explainContainer = `{"metadata": {"name": "app"}, "image": {"image": "busybox"},
 "linux": {"resources": {"memory_limit_in_bytes": 1073741824, "oom_score_adj": 900}}}`

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runExplainT(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runExplain(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestRunExplain(t *testing.T) {
	pod := writeTemp(t, "pod.yaml", explainPod)
	bad := writeTemp(t, "bad.yaml", explainBadPod)
	sb := writeTemp(t, "sandbox.json", explainSandbox)
	ctr := writeTemp(t, "container.json", explainContainer)
	cfg := writeTemp(t, "config.yaml", "defaultClass: burstable\n")
	badCfg := writeTemp(t, "badconfig.yaml", "maxProtectionFraction: 2\n")
	for _, tc := range []struct {
		name       string
		args       []string
		code       int
		stdout     []string // substrings
		stderr     string   // substring; "" = empty stderr
		stdinInput string
	}{
		{name: "text", args: []string{"-mem-total", "8Gi", "-kubelet-memory-qos", pod}, code: 0,
			stdout: []string{
				"node: MemTotal 8589934592 (8Gi), page size ",
				"    class                           latency-sensitive (pod label)\n",
				"    request (v2)                    268435456 (256Mi) from kubelet memory.min\n",
				"    v2 memory.min                   268435456 (256Mi)\n",
				"    v1 memory.soft_limit_in_bytes   266285056 (253.95Mi)\n",
			}},
		{name: "flags after the file", args: []string{pod, "-mem-total", "8589934592", "-o", "json"}, code: 0,
			stdout: []string{`"memTotal": 8589934592`, `"memory.min": "266285056"`}},
		{name: "CRI pair", args: []string{"-mem-total=8Gi", sb, ctr}, code: 0,
			stdout: []string{"pod e2e/cri-pod (CRI, uid c1, cgroup parent /kubepods/burstable/podc1)", "v2 memory.high"}},
		{name: "stdin", args: []string{"-mem-total", "8Gi", "-", ctr}, stdinInput: explainSandbox, code: 0,
			stdout: []string{"pod e2e/cri-pod"}},
		{name: "config file", args: []string{"-config", cfg, "-mem-total", "8Gi", "--", bad}, code: 1,
			stdout: []string{"  container other\n    class                          burstable (default class)\n", `error          memqos: pod default/web container "app"`},
			stderr: "the plugin would fail the creation of 1 container(s)"},
		{name: "invalid annotation", args: []string{"-mem-total", "8Gi", bad}, code: 1,
			stdout: []string{`annotation memqos.nri.io/class.container.app "gold": unknown class; allowed: best-effort, burstable, latency-sensitive, none`,
				"  container other\n    class          none: not opted in"},
			stderr: "the plugin would fail the creation of 1 container(s)"},
		{name: "bad output format", args: []string{"-o", "yaml", pod}, code: 2, stderr: `-o "yaml": not an output format; allowed: text, json`},
		{name: "bad mem-total", args: []string{"-mem-total", "lots", pod}, code: 2,
			stderr: `-mem-total "lots": not a quantity; allowed: a positive number of bytes or a quantity such as 16Gi`},
		{name: "zero mem-total", args: []string{"-mem-total", "0", pod}, code: 2, stderr: `-mem-total "0": zero; allowed:`},
		{name: "unknown flag", args: []string{"-memtotal", "8Gi", pod}, code: 2,
			stderr: "flag provided but not defined: -memtotal; allowed flags: -config FILE, -o text|json, -mem-total BYTES, -kubelet-memory-qos"},
		{name: "bad reservation policy", args: []string{"-kubelet-memory-qos", "-kubelet-memory-reservation", "Tiered", pod}, code: 2,
			stderr: `-kubelet-memory-reservation "Tiered": not a memoryReservationPolicy; allowed: None, TieredReservation`},
		{name: "reservation policy without MemoryQoS", args: []string{"-kubelet-memory-reservation", "None", pod}, code: 2,
			stderr: "-kubelet-memory-reservation None without -kubelet-memory-qos"},
		{name: "no input", args: []string{"-mem-total", "8Gi"}, code: 2, stderr: "0 input files; allowed: one Pod file, or a CRI pod sandbox config and a container config"},
		{name: "three inputs", args: []string{pod, pod, pod}, code: 2, stderr: "3 input files; allowed:"},
		{name: "missing file", args: []string{"-mem-total", "8Gi", "/nonexistent/pod.yaml"}, code: 2, stderr: "no such file or directory; allowed: a readable file"},
		{name: "bad config", args: []string{"-config", badCfg, pod}, code: 2, stderr: "maxProtectionFraction: 2 is out of range; allowed: above 0 and below 1"},
		{name: "bad pod", args: []string{"-mem-total", "8Gi", sb}, code: 2, stderr: "a CRI config without kind; allowed:"},
		{name: "help", args: []string{"-h"}, code: 0, stdout: []string{"Usage: nri-memqos explain [flags] POD-FILE", "-kubelet-memory-qos", "Exit status:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.stdinInput != "" {
				old := explainStdin
				explainStdin = strings.NewReader(tc.stdinInput)
				defer func() { explainStdin = old }()
			}
			code, stdout, stderr := runExplainT(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			if tc.stderr == "" && stderr != "" {
				t.Errorf("stderr = %q, want none", stderr)
			}
			if tc.stderr != "" {
				if !strings.Contains(stderr, tc.stderr) {
					t.Errorf("stderr = %q, want it to contain %q", stderr, tc.stderr)
				}
				if strings.Count(stderr, "\n") != 1 {
					t.Errorf("stderr is not one line: %q", stderr)
				}
			}
			if tc.code == 2 && stdout != "" {
				t.Errorf("stdout on a usage error: %q", stdout)
			}
		})
	}
}

func TestRunExplainJSON(t *testing.T) {
	pod := writeTemp(t, "pod.yaml", explainPod)
	code, stdout, stderr := runExplainT(t, "-o", "json", "-mem-total", "8Gi", "-kubelet-memory-qos", pod)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var rep struct {
		Pods []struct {
			Containers []struct {
				Class string `json:"class"`
				V2    struct {
					Request int64             `json:"request"`
					Unified map[string]string `json:"unified"`
				} `json:"cgroupV2"`
				V1 struct {
					SoftLimit *int64 `json:"softLimit"`
				} `json:"cgroupV1"`
			} `json:"containers"`
		} `json:"pods"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	c := rep.Pods[0].Containers[0]
	if c.Class != "latency-sensitive" || c.V2.Request != 268435456 || c.V2.Unified["memory.min"] != "268435456" ||
		c.V1.SoftLimit == nil || *c.V1.SoftLimit != 266285056 {
		t.Errorf("container = %+v", c)
	}
}

// Without -mem-total explain reads this node's MemTotal like the plugin.
func TestRunExplainNodeMemTotal(t *testing.T) {
	if _, err := os.Stat("/proc/meminfo"); err != nil {
		t.Skip("no /proc/meminfo")
	}
	pod := writeTemp(t, "pod.yaml", explainPod)
	code, stdout, stderr := runExplainT(t, "-o", "json", pod)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	ni, err := node.ReadHost()
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Node struct {
			MemTotal int64 `json:"memTotal"`
			PageSize int64 `json:"pageSize"`
		} `json:"node"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Node.MemTotal != ni.MemTotal || rep.Node.PageSize != ni.PageSize {
		t.Errorf("node = %+v, want MemTotal %d page %d", rep.Node, ni.MemTotal, ni.PageSize)
	}
}
