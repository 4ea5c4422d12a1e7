package ocihook_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"nri-memqos/pkg/node"
	"nri-memqos/pkg/ocihook"
	"nri-memqos/pkg/policy"
	"nri-memqos/pkg/state"
)

const (
	mi = int64(1) << 20
	gi = int64(1) << 30

	uid   = "1a2b3c4d-0000-1111-2222-333344445555"
	uidSD = "1a2b3c4d_0000_1111_2222_333344445555" // as the systemd driver names it
	ctrID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	sbID  = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
)

func i64(v int64) *int64 { return &v }
func intp(v int) *int    { return &v }

// union is the maps merged left to right (later keys win).
func union(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// crioAnnotations are what CRI-O puts into a regular container's
// config.json (docs/oci-hooks-runtimes.md), with the pod's annotations.
func crioAnnotations(pod map[string]string) map[string]string {
	return union(pod, map[string]string{
		"io.kubernetes.cri-o.ContainerType": "container",
		"io.kubernetes.cri-o.SandboxID":     sbID,
		"io.kubernetes.cri-o.ContainerID":   ctrID,
		"io.kubernetes.cri-o.Labels":        `{"io.kubernetes.container.name":"app","io.kubernetes.pod.name":"web-0","io.kubernetes.pod.namespace":"team-a","io.kubernetes.pod.uid":"` + uid + `"}`,
		"io.container.manager":              "cri-o",
		"io.kubernetes.container.name":      "app",
		"io.kubernetes.pod.name":            "web-0",
		"io.kubernetes.pod.namespace":       "team-a",
		"io.kubernetes.pod.uid":             uid,
	})
}

// norm makes empty maps nil, so that expectations need not tell them apart.
func norm(c node.Container) node.Container {
	for _, m := range []*map[string]string{&c.Pod.Labels, &c.Pod.Annotations, &c.Ctr.Annotations, &c.Ctr.Unified} {
		if len(*m) == 0 {
			*m = nil
		}
	}
	return c
}

func TestFacts(t *testing.T) {
	ls := map[string]string{
		"memqos.nri.io/class":          "latency-sensitive",
		"memqos.nri.io/memory-request": "256Mi",
	}
	crio := crioAnnotations(ls)
	kubeletUnified := map[string]string{"memory.min": "268435456"}
	podmanAnn := map[string]string{
		"memqos.nri.io/class":              "burstable",
		"memqos.nri.io/memory-request":     "128Mi",
		"io.container.manager":             "libpod",
		"io.podman.annotations.privileged": "FALSE",
	}
	sandboxAnn := union(crio, map[string]string{"io.kubernetes.cri-o.ContainerType": "sandbox"})

	tests := []struct {
		name      string
		st        specs.State
		spec      *specs.Spec
		podLabels map[string]string
		wantOK    bool
		want      node.Container
		wantQOS   policy.QOSClass
	}{{
		name: "(a) CRI-O, systemd driver, Burstable",
		st:   specs.State{ID: ctrID, Status: specs.StateCreating, Annotations: crio},
		spec: &specs.Spec{
			Annotations: crio,
			Process:     &specs.Process{OOMScoreAdj: intp(936)},
			Linux: &specs.Linux{
				CgroupsPath: "kubepods-burstable-pod" + uidSD + ".slice:crio:" + ctrID,
				Resources:   &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(512 * mi)}, Unified: kubeletUnified},
			},
		},
		wantOK: true,
		want: node.Container{
			ID: ctrID,
			Pod: policy.Pod{Namespace: "team-a", Name: "web-0", UID: uid,
				Labels:       map[string]string{"memqos.nri.io/class": "latency-sensitive"},
				Annotations:  crio,
				CgroupParent: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidSD + ".slice"},
			Ctr:         policy.Container{Name: "app", Limit: 512 * mi, Unified: kubeletUnified, OOMScoreAdj: i64(936)},
			CgroupsPath: "kubepods-burstable-pod" + uidSD + ".slice:crio:" + ctrID,
		},
		wantQOS: policy.QOSBurstable,
	}, {
		name: "CRI-O, systemd driver, Guaranteed",
		st:   specs.State{ID: ctrID, Annotations: crio},
		spec: &specs.Spec{Annotations: crio, Linux: &specs.Linux{
			CgroupsPath: "kubepods-pod" + uidSD + ".slice:crio:" + ctrID,
			Resources:   &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(gi)}},
		}},
		wantOK: true,
		want: node.Container{
			ID: ctrID,
			Pod: policy.Pod{Namespace: "team-a", Name: "web-0", UID: uid,
				Labels: map[string]string{"memqos.nri.io/class": "latency-sensitive"}, Annotations: crio,
				CgroupParent: "/kubepods.slice/kubepods-pod" + uidSD + ".slice"},
			Ctr:         policy.Container{Name: "app", Limit: gi},
			CgroupsPath: "kubepods-pod" + uidSD + ".slice:crio:" + ctrID,
		},
		wantQOS: policy.QOSGuaranteed,
	}, {
		name: "(b) CRI-O, cgroupfs driver, BestEffort",
		st:   specs.State{ID: ctrID, Annotations: crio},
		spec: &specs.Spec{
			Annotations: crio,
			Process:     &specs.Process{OOMScoreAdj: intp(1000)},
			Linux:       &specs.Linux{CgroupsPath: "/kubepods/besteffort/pod" + uid + "/crio-" + ctrID},
		},
		wantOK: true,
		want: node.Container{
			ID: ctrID,
			Pod: policy.Pod{Namespace: "team-a", Name: "web-0", UID: uid,
				Labels: map[string]string{"memqos.nri.io/class": "latency-sensitive"}, Annotations: crio,
				CgroupParent: "/kubepods/besteffort/pod" + uid},
			Ctr:         policy.Container{Name: "app", OOMScoreAdj: i64(1000)},
			CgroupsPath: "/kubepods/besteffort/pod" + uid + "/crio-" + ctrID,
		},
		wantQOS: policy.QOSBestEffort,
	}, {
		name: "(c) CRI-O, cgroupfs driver, Guaranteed",
		st:   specs.State{ID: ctrID, Annotations: crio},
		spec: &specs.Spec{
			Annotations: crio,
			Process:     &specs.Process{OOMScoreAdj: intp(-997)},
			Linux: &specs.Linux{
				CgroupsPath: "/kubepods/pod" + uid + "/crio-" + ctrID,
				Resources:   &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(gi)}},
			},
		},
		wantOK: true,
		want: node.Container{
			ID: ctrID,
			Pod: policy.Pod{Namespace: "team-a", Name: "web-0", UID: uid,
				Labels: map[string]string{"memqos.nri.io/class": "latency-sensitive"}, Annotations: crio,
				CgroupParent: "/kubepods/pod" + uid},
			Ctr:         policy.Container{Name: "app", Limit: gi, OOMScoreAdj: i64(-997)},
			CgroupsPath: "/kubepods/pod" + uid + "/crio-" + ctrID,
		},
		wantQOS: policy.QOSGuaranteed,
	}, {
		name: "(d) podman, cgroupfs, --annotation only",
		st:   specs.State{ID: ctrID, Annotations: podmanAnn},
		spec: &specs.Spec{Annotations: podmanAnn, Linux: &specs.Linux{
			CgroupsPath: "/libpod_parent/libpod-" + ctrID,
			Resources:   &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(512 * mi)}},
		}},
		wantOK: true,
		want: node.Container{
			ID: ctrID,
			Pod: policy.Pod{Labels: map[string]string{"memqos.nri.io/class": "burstable"}, Annotations: podmanAnn,
				CgroupParent: "/libpod_parent"},
			Ctr:         policy.Container{Limit: 512 * mi},
			CgroupsPath: "/libpod_parent/libpod-" + ctrID,
		},
		wantQOS: policy.QOSUnknown,
	}, {
		name:   "podman, in a pod, systemd driver",
		st:     specs.State{ID: ctrID},
		spec:   &specs.Spec{Annotations: podmanAnn, Linux: &specs.Linux{CgroupsPath: "machine-libpod_pod_abc.slice:libpod:" + ctrID}},
		wantOK: true,
		want: node.Container{
			ID: ctrID,
			Pod: policy.Pod{Labels: map[string]string{"memqos.nri.io/class": "burstable"}, Annotations: podmanAnn,
				CgroupParent: "/machine.slice/machine-libpod_pod_abc.slice"},
			CgroupsPath: "machine-libpod_pod_abc.slice:libpod:" + ctrID,
		},
		wantQOS: policy.QOSUnknown,
	}, {
		name:   "(e) CRI-O pod sandbox",
		st:     specs.State{ID: sbID, Annotations: sandboxAnn},
		spec:   &specs.Spec{Annotations: sandboxAnn, Linux: &specs.Linux{CgroupsPath: "/kubepods/burstable/pod" + uid + "/crio-" + sbID}},
		wantOK: false,
	}, {
		name:   "CRI-O pod sandbox, type in the config only",
		st:     specs.State{ID: sbID},
		spec:   &specs.Spec{Annotations: sandboxAnn},
		wantOK: false,
	}, {
		name:   "CRI-O pod sandbox at poststop (no config)",
		st:     specs.State{ID: sbID, Annotations: sandboxAnn},
		wantOK: false,
	}, {
		name:      "(f) the class annotation wins over the pod label",
		st:        specs.State{ID: ctrID, Annotations: crio},
		spec:      &specs.Spec{Linux: &specs.Linux{CgroupsPath: "/kubepods/burstable/pod" + uid + "/crio-" + ctrID}},
		podLabels: map[string]string{"memqos.nri.io/class": "best-effort", "app": "web"},
		wantOK:    true,
		want: node.Container{
			ID: ctrID,
			Pod: policy.Pod{Namespace: "team-a", Name: "web-0", UID: uid,
				Labels:      map[string]string{"memqos.nri.io/class": "latency-sensitive", "app": "web"},
				Annotations: crio, CgroupParent: "/kubepods/burstable/pod" + uid},
			Ctr:         policy.Container{Name: "app"},
			CgroupsPath: "/kubepods/burstable/pod" + uid + "/crio-" + ctrID,
		},
		wantQOS: policy.QOSBurstable,
	}, {
		name:      "(f) the pod label without a class annotation",
		st:        specs.State{ID: ctrID, Annotations: crioAnnotations(nil)},
		spec:      &specs.Spec{Linux: &specs.Linux{CgroupsPath: "/kubepods/burstable/pod" + uid + "/crio-" + ctrID}},
		podLabels: map[string]string{"memqos.nri.io/class": "best-effort", "app": "web"},
		wantOK:    true,
		want: node.Container{
			ID: ctrID,
			Pod: policy.Pod{Namespace: "team-a", Name: "web-0", UID: uid,
				Labels:      map[string]string{"memqos.nri.io/class": "best-effort", "app": "web"},
				Annotations: crioAnnotations(nil), CgroupParent: "/kubepods/burstable/pod" + uid},
			Ctr:         policy.Container{Name: "app"},
			CgroupsPath: "/kubepods/burstable/pod" + uid + "/crio-" + ctrID,
		},
		wantQOS: policy.QOSBurstable,
	}, {
		name:   "(g) state annotations over the config's",
		st:     specs.State{ID: ctrID, Annotations: map[string]string{"memqos.nri.io/memory-request": "1Gi", "only-state": "s"}},
		spec:   &specs.Spec{Annotations: map[string]string{"memqos.nri.io/memory-request": "256Mi", "only-spec": "c"}},
		wantOK: true,
		want: node.Container{ID: ctrID, Pod: policy.Pod{Annotations: map[string]string{
			"memqos.nri.io/memory-request": "1Gi", "only-state": "s", "only-spec": "c"}}},
		wantQOS: policy.QOSUnknown,
	}, {
		name: "(g) unlimited (-1) and zero limits are no limit",
		st:   specs.State{ID: ctrID},
		spec: &specs.Spec{Linux: &specs.Linux{CgroupsPath: "/kubepods/burstable/pod" + uid + "/c",
			Resources: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1)}, Unified: map[string]string{"memory.low": "1048576", "memory.high": "max"}}}},
		wantOK: true,
		want: node.Container{ID: ctrID, Pod: policy.Pod{CgroupParent: "/kubepods/burstable/pod" + uid},
			Ctr:         policy.Container{Unified: map[string]string{"memory.low": "1048576", "memory.high": "max"}},
			CgroupsPath: "/kubepods/burstable/pod" + uid + "/c"},
		wantQOS: policy.QOSBurstable,
	}, {
		name: "(g) a zero limit is no limit; oomScoreAdj 0 is kept",
		st:   specs.State{ID: ctrID},
		spec: &specs.Spec{Process: &specs.Process{OOMScoreAdj: intp(0)},
			Linux: &specs.Linux{Resources: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(0)}}}},
		wantOK:  true,
		want:    node.Container{ID: ctrID, Ctr: policy.Container{OOMScoreAdj: i64(0)}},
		wantQOS: policy.QOSUnknown,
	}, {
		name:   "a cgroups path that does not parse: kept, no parent",
		st:     specs.State{ID: ctrID},
		spec:   &specs.Spec{Linux: &specs.Linux{CgroupsPath: "only:two"}},
		wantOK: true,
		want:   node.Container{ID: ctrID, CgroupsPath: "only:two"},
	}, {
		name:   "(g) poststop: no config, the state's annotations",
		st:     specs.State{ID: ctrID, Status: specs.StateStopped, Annotations: crio},
		wantOK: true,
		want: node.Container{ID: ctrID,
			Pod: policy.Pod{Namespace: "team-a", Name: "web-0", UID: uid,
				Labels: map[string]string{"memqos.nri.io/class": "latency-sensitive"}, Annotations: crio},
			Ctr: policy.Container{Name: "app"}},
		wantQOS: policy.QOSUnknown,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			labelsBefore := maps.Clone(tc.podLabels)
			c, ok := ocihook.Facts(&tc.st, tc.spec, tc.podLabels)
			if ok != tc.wantOK {
				t.Fatalf("Facts ok = %v; want %v (container %+v)", ok, tc.wantOK, c)
			}
			if !maps.Equal(tc.podLabels, labelsBefore) {
				t.Errorf("Facts changed the pod labels passed in: %v; were %v", tc.podLabels, labelsBefore)
			}
			if !ok {
				return
			}
			if got, want := norm(c), norm(tc.want); !reflect.DeepEqual(got, want) {
				t.Errorf("Facts =\n%+v\nwant\n%+v", got, want)
			}
			if q := policy.KubeQOS(c.Pod.CgroupParent); q != tc.wantQOS {
				t.Errorf("KubeQOS(%q) = %q; want %q", c.Pod.CgroupParent, q, tc.wantQOS)
			}
		})
	}
}

// writeJSON writes v as JSON to path, making its directory.
func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(data))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// crioBundle is a container's bundle as CRI-O lays it out under root:
// <root>/overlay-containers/<id>/userdata.
func crioBundle(root, id string) string {
	return filepath.Join(root, "overlay-containers", id, "userdata")
}

func TestCRIOPodLabels(t *testing.T) {
	podLabels := map[string]string{"memqos.nri.io/class": "latency-sensitive", "app": "web",
		"io.kubernetes.pod.name": "web-0", "io.kubernetes.container.name": "POD"}
	labelsJSON, err := json.Marshal(podLabels)
	if err != nil {
		t.Fatal(err)
	}
	goodSandbox := `{"ociVersion":"1.0.0","annotations":{"io.kubernetes.cri-o.ContainerType":"sandbox","io.kubernetes.cri-o.Labels":` +
		string(mustMarshal(t, string(labelsJSON))) + `}}`
	crio := crioAnnotations(nil)

	tests := []struct {
		name string
		// sandbox is the sandbox's config.json ("": none).
		sandbox string
		// ann are the state's annotations; specAnn the config's.
		ann, specAnn map[string]string
		id           string
		want         map[string]string
		// wantErr are substrings of the error ("{sandbox}": the sandbox
		// config's path); none: no error.
		wantErr []string
	}{{
		name: "found", sandbox: goodSandbox, ann: crio, want: podLabels,
	}, {
		name: "found, annotations in the config only", sandbox: goodSandbox, specAnn: crio, want: podLabels,
	}, {
		name: "sandbox config missing", ann: crio,
	}, {
		name: "not CRI-O's", sandbox: goodSandbox,
		ann: union(crio, map[string]string{"io.container.manager": "libpod"}),
	}, {
		name: "no manager", sandbox: goodSandbox,
		ann: func() map[string]string { m := maps.Clone(crio); delete(m, "io.container.manager"); return m }(),
	}, {
		name: "no sandbox ID", sandbox: goodSandbox,
		ann: func() map[string]string { m := maps.Clone(crio); delete(m, "io.kubernetes.cri-o.SandboxID"); return m }(),
	}, {
		name: "the sandbox itself", sandbox: goodSandbox, ann: crio, id: sbID,
	}, {
		name: "sandbox config without labels", sandbox: `{"annotations":{"io.kubernetes.cri-o.ContainerType":"sandbox"}}`, ann: crio,
	}, {
		name: "sandbox config not JSON", sandbox: `{"annotations":`, ann: crio,
		wantErr: []string{"{sandbox}"},
	}, {
		name: "labels not a JSON object of strings", sandbox: `{"annotations":{"io.kubernetes.cri-o.Labels":"{\"a\":1}"}}`, ann: crio,
		wantErr: []string{"{sandbox}", "io.kubernetes.cri-o.Labels"},
	}, {
		name: "labels not JSON", sandbox: `{"annotations":{"io.kubernetes.cri-o.Labels":"app=web"}}`, ann: crio,
		wantErr: []string{"{sandbox}", "io.kubernetes.cri-o.Labels"},
	}, {
		name: "sandbox ID with a slash", sandbox: goodSandbox,
		ann:     union(crio, map[string]string{"io.kubernetes.cri-o.SandboxID": "../" + sbID}),
		wantErr: []string{`"../` + sbID + `" is not a container ID`},
	}, {
		name: "sandbox ID inside a directory", sandbox: goodSandbox,
		ann:     union(crio, map[string]string{"io.kubernetes.cri-o.SandboxID": sbID + "/x"}),
		wantErr: []string{"io.kubernetes.cri-o.SandboxID", "is not a container ID"},
	}, {
		name: "sandbox ID ..", sandbox: goodSandbox,
		ann:     union(crio, map[string]string{"io.kubernetes.cri-o.SandboxID": ".."}),
		wantErr: []string{`".." is not a container ID`},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			id := ctrID
			if tc.id != "" {
				id = tc.id
			}
			sandboxConfig := filepath.Join(crioBundle(root, sbID), "config.json")
			if tc.sandbox != "" {
				writeFile(t, sandboxConfig, tc.sandbox)
			}
			bundle := crioBundle(root, id)
			st := &specs.State{ID: id, Status: specs.StateCreating, Bundle: bundle, Annotations: tc.ann}
			spec := &specs.Spec{Annotations: tc.specAnn}
			got, err := ocihook.CRIOPodLabels(st, spec)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("CRIOPodLabels: %v", err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("CRIOPodLabels = %v; want %v", got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("CRIOPodLabels = %v, nil; want an error", got)
			}
			if got != nil {
				t.Errorf("CRIOPodLabels returned labels %v with its error", got)
			}
			for _, w := range tc.wantErr {
				w = strings.ReplaceAll(w, "{sandbox}", sandboxConfig)
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestReadSpec(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	writeJSON(t, filepath.Join(good, "config.json"), &specs.Spec{Version: "1.0.2", Linux: &specs.Linux{CgroupsPath: "/kubepods/pod1/c"}})
	bad := filepath.Join(dir, "bad")
	writeFile(t, filepath.Join(bad, "config.json"), "{")
	tests := []struct {
		name, bundle string
		wantPath     string
		wantErr      string
	}{
		{name: "read", bundle: good, wantPath: "/kubepods/pod1/c"},
		{name: "no bundle", bundle: "", wantErr: "names no bundle"},
		{name: "missing", bundle: filepath.Join(dir, "none"), wantErr: "reading the container's config"},
		{name: "not JSON", bundle: bad, wantErr: filepath.Join(bad, "config.json")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec, err := ocihook.ReadSpec(&specs.State{ID: "c", Bundle: tc.bundle})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ReadSpec = %v, %v; want an error containing %q", spec, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if spec.Linux == nil || spec.Linux.CgroupsPath != tc.wantPath {
				t.Errorf("ReadSpec: cgroupsPath %+v; want %q", spec.Linux, tc.wantPath)
			}
		})
	}
}

// runMain runs Main with args and stdin and returns its status and stderr.
func runMain(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	var stderr bytes.Buffer
	code := ocihook.Main("memqos-hook", args, strings.NewReader(stdin), &stderr)
	return code, stderr.String()
}

// oneLine checks that stderr is exactly one line starting with the
// program's name.
func oneLine(t *testing.T, stderr string) {
	t.Helper()
	if !strings.HasPrefix(stderr, "memqos-hook: ") || !strings.HasSuffix(stderr, "\n") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr = %q; want one line starting with %q", stderr, "memqos-hook: ")
	}
}

func TestMainUsage(t *testing.T) {
	stateDir := t.TempDir()
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		// wantErr are substrings of stderr; oneLine: exactly one line
		// starting with the program's name.
		wantErr []string
		oneLine bool
	}{{
		name: "bad flag", args: []string{"-nope"}, wantCode: 2,
		wantErr: []string{"flag provided but not defined: -nope", "usage: memqos-hook"},
	}, {
		name: "positional argument", args: []string{"-state-dir", stateDir, "creating"}, wantCode: 2,
		wantErr: []string{`memqos-hook: unexpected argument "creating": the OCI state comes on stdin`}, oneLine: true,
	}, {
		name: "bad log level", args: []string{"-state-dir", stateDir, "-log-level", "loud"}, wantCode: 2,
		wantErr: []string{`-log-level "loud"`}, oneLine: true,
	}, {
		name: "stdin not JSON", args: []string{"-state-dir", stateDir}, stdin: "creating\n", wantCode: 1,
		wantErr: []string{"reading the OCI state from stdin"}, oneLine: true,
	}, {
		name: "stdin empty", args: []string{"-state-dir", stateDir}, stdin: "", wantCode: 1,
		wantErr: []string{"reading the OCI state from stdin"}, oneLine: true,
	}, {
		name: "no container id", args: []string{"-state-dir", stateDir}, stdin: `{"ociVersion":"1.0.2","status":"creating"}`, wantCode: 1,
		wantErr: []string{"no container id"}, oneLine: true,
	}, {
		name: "running", args: []string{"-state-dir", stateDir}, stdin: `{"ociVersion":"1.0.2","id":"c1","status":"running","pid":1}`, wantCode: 1,
		wantErr: []string{`container c1 is "running"`, "createRuntime or prestart (creating)", "poststop (stopped)"}, oneLine: true,
	}, {
		name: "creating without a bundle", args: []string{"-state-dir", stateDir}, stdin: `{"ociVersion":"1.0.2","id":"c1","status":"creating"}`, wantCode: 1,
		wantErr: []string{"names no bundle"}, oneLine: true,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := runMain(t, tc.stdin, tc.args...)
			if code != tc.wantCode {
				t.Errorf("Main = %d; want %d (stderr %q)", code, tc.wantCode, stderr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not contain %q", stderr, w)
				}
			}
			if tc.oneLine {
				oneLine(t, stderr)
			}
		})
	}
}

// fakeV2 is a cgroup v2 tree of plain files in a temporary directory.
type fakeV2 struct {
	t    *testing.T
	root string
}

// cgroup makes rel and its ancestors with a fresh cgroup's memory files;
// files already there keep their values.
func (f *fakeV2) cgroup(rel string) {
	f.t.Helper()
	files := map[string]string{"memory.min": "0", "memory.low": "0", "memory.high": "max", "memory.max": "max",
		"memory.swap.max": "max", "memory.oom.group": "0", "memory.current": "0"}
	for p := rel; p != "/" && p != "."; p = filepath.Dir(p) {
		for file, v := range files {
			path := filepath.Join(f.root, p, file)
			if _, err := os.Stat(path); err == nil {
				continue
			}
			writeFile(f.t, path, v+"\n")
		}
	}
}

func (f *fakeV2) read(rel, file string) string {
	f.t.Helper()
	b, err := os.ReadFile(filepath.Join(f.root, rel, file))
	if err != nil {
		f.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// files maps every file of the tree to its trimmed content (a plain file
// rewritten holds no newline where the kernel shows one).
func (f *fakeV2) files() map[string]string {
	f.t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(f.root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		out[strings.TrimPrefix(path, f.root)] = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// TestMainCgroupV2 runs the hook over a fake cgroup v2 tree: a creating
// hook writes the container's values and raises its three ancestors, the
// poststop hook lowers them again; a bad annotation fails the container
// with one line and writes nothing.
func TestMainCgroupV2(t *testing.T) {
	podRel := "/kubepods/burstable/pod" + uid
	ctrRel := podRel + "/crio-" + ctrID
	pod := map[string]string{"memqos.nri.io/class": "latency-sensitive", "memqos.nri.io/memory-request": "256Mi"}
	raised := map[string]string{
		"/kubepods/memory.min": "268435456", "/kubepods/burstable/memory.min": "268435456", podRel + "/memory.min": "268435456",
		ctrRel + "/memory.min": "268435456", ctrRel + "/memory.swap.max": "0",
		"/kubepods/memory.low": "0", podRel + "/memory.low": "0", ctrRel + "/memory.max": "max",
	}
	lowered := map[string]string{
		"/kubepods/memory.min": "0", "/kubepods/burstable/memory.min": "0", podRel + "/memory.min": "0",
	}
	sandboxLabels := `{"annotations":{"io.kubernetes.cri-o.ContainerType":"sandbox","io.kubernetes.cri-o.Labels":` +
		string(mustMarshal(t, `{"memqos.nri.io/class":"latency-sensitive","app":"web"}`)) + `}}`

	tests := []struct {
		name string
		ann  map[string]string
		// status is the state's status at creation ("": creating).
		status specs.ContainerState
		// sandbox is the pod sandbox's config.json ("": none).
		sandbox string
		// removeCtrFiles are files taken out of the container's cgroup.
		removeCtrFiles []string
		// pluginRuns holds the NRI plugin's lock during the hook.
		pluginRuns bool
		wantCode   int
		// want are files after the creating hook (nil: the tree as
		// before); wantErr a substring of the one line on stderr.
		want              map[string]string
		wantErr, wantErr2 string
		// ctrMayChange: the container's own cgroup may hold values
		// written before a failed write (the runtime removes it when
		// the hook fails); only the rest of the tree is as before.
		ctrMayChange bool
		wantPromise  bool
		afterStopped map[string]string
	}{{
		name: "class and request annotations", ann: crioAnnotations(pod),
		want: raised, wantPromise: true, afterStopped: lowered,
	}, {
		name: "status created (a prestart hook of some runtimes)", ann: crioAnnotations(pod), status: specs.StateCreated,
		want: raised, wantPromise: true, afterStopped: lowered,
	}, {
		name: "class from the pod's label in the sandbox",
		ann:  crioAnnotations(map[string]string{"memqos.nri.io/memory-request": "256Mi"}), sandbox: sandboxLabels,
		want: raised, wantPromise: true, afterStopped: lowered,
	}, {
		name: "unreadable sandbox labels: the annotation still decides",
		ann:  crioAnnotations(pod), sandbox: "{",
		want: raised, wantPromise: true, afterStopped: lowered,
	}, {
		name:     "bad request annotation",
		ann:      crioAnnotations(map[string]string{"memqos.nri.io/class": "latency-sensitive", "memqos.nri.io/memory-request": "lots"}),
		wantCode: 1, wantErr: `memqos-hook: container 0123456789ab: memqos: pod team-a/web-0 container "app": annotation memqos.nri.io/memory-request "lots": not a quantity`,
	}, {
		name:     "unknown class",
		ann:      crioAnnotations(map[string]string{"memqos.nri.io/class": "gold", "memqos.nri.io/memory-request": "256Mi"}),
		wantCode: 1, wantErr: `"gold"`,
	}, {
		name: "not opted in", ann: crioAnnotations(map[string]string{"memqos.nri.io/memory-request": "256Mi"}),
	}, {
		name: "CRI-O pod sandbox", ann: union(crioAnnotations(pod), map[string]string{"io.kubernetes.cri-o.ContainerType": "sandbox"}),
	}, {
		name: "the NRI plugin runs: left to it", ann: crioAnnotations(pod), pluginRuns: true,
	}, {
		name: "a value that cannot be written: refused, withdrawn", ann: crioAnnotations(pod), removeCtrFiles: []string{"memory.min"},
		wantCode: 1, wantErr: "memqos-hook: container 0123456789ab: failed to write \"268435456\" to /",
		wantErr2: ctrRel + "/memory.min: ", ctrMayChange: true,
	}, {
		name: "two values that cannot be written: still one line", ann: crioAnnotations(pod),
		removeCtrFiles: []string{"memory.min", "memory.swap.max"},
		wantCode:       1, wantErr: "memqos-hook: container 0123456789ab: failed to write", ctrMayChange: true,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tree := &fakeV2{t: t, root: t.TempDir()}
			tree.cgroup(ctrRel)
			for _, file := range tc.removeCtrFiles {
				if err := os.Remove(filepath.Join(tree.root, ctrRel, file)); err != nil {
					t.Fatal(err)
				}
			}
			cfg := filepath.Join(t.TempDir(), "memqos.yaml")
			writeFile(t, cfg, "cgroupVersion: 2\ncgroupRoot: "+tree.root+"\n")
			stateDir := filepath.Join(t.TempDir(), "state")
			storage := t.TempDir()
			bundle := crioBundle(storage, ctrID)
			writeJSON(t, filepath.Join(bundle, "config.json"), &specs.Spec{
				Version:     "1.0.2",
				Annotations: tc.ann,
				Process:     &specs.Process{OOMScoreAdj: intp(936)},
				Linux: &specs.Linux{
					CgroupsPath: ctrRel,
					Resources:   &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(512 * mi)}},
				},
			})
			if tc.sandbox != "" {
				writeFile(t, filepath.Join(crioBundle(storage, sbID), "config.json"), tc.sandbox)
			}
			if tc.pluginRuns {
				if err := os.MkdirAll(stateDir, 0o700); err != nil {
					t.Fatal(err)
				}
				l, err := state.LockPlugin(filepath.Join(stateDir, ocihook.StateFileName), 0)
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = l.Release() }()
			}
			before := tree.files()
			st := specs.State{Version: "1.0.2", ID: ctrID, Status: specs.StateCreating, Pid: 4242, Bundle: bundle, Annotations: tc.ann}
			if tc.status != "" {
				st.Status = tc.status
			}
			args := []string{"-config", cfg, "-state-dir", stateDir}

			code, stderr := runMain(t, string(mustMarshal(t, st)), args...)
			if code != tc.wantCode {
				t.Fatalf("creating: Main = %d; want %d (stderr %q)", code, tc.wantCode, stderr)
			}
			if tc.wantCode == 0 && stderr != "" {
				t.Errorf("creating: stderr %q; want nothing", stderr)
			}
			if tc.wantErr != "" {
				oneLine(t, stderr)
				for _, w := range []string{tc.wantErr, tc.wantErr2} {
					if !strings.Contains(stderr, w) {
						t.Errorf("creating: stderr %q does not contain %q", stderr, w)
					}
				}
			}
			if tc.want == nil {
				after := tree.files()
				if tc.ctrMayChange {
					inCtr := func(k, _ string) bool { return strings.HasPrefix(k, ctrRel+"/") }
					maps.DeleteFunc(after, inCtr)
					maps.DeleteFunc(before, inCtr)
				}
				if !maps.Equal(after, before) {
					t.Errorf("creating: files changed:\n%v\nwant as before:\n%v", after, before)
				}
			}
			for k, v := range tc.want {
				if got := tree.read(filepath.Dir(k), filepath.Base(k)); got != v {
					t.Errorf("creating: %s = %s; want %s", k, got, v)
				}
			}
			if !tc.pluginRuns {
				s, err := state.Read(filepath.Join(stateDir, ocihook.StateFileName))
				if errors.Is(err, os.ErrNotExist) {
					s = &state.State{} // the hook left without opening the state
				} else if err != nil {
					t.Fatal(err)
				}
				var want map[string]state.Promise
				if tc.wantPromise {
					want = map[string]state.Promise{ctrID: {Path: ctrRel, Min: 256 * mi}}
				}
				got := s.Promises
				if len(got) == 0 {
					got = nil
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("creating: state promises = %v; want %v", got, want)
				}
			}
			if tc.afterStopped == nil {
				return
			}
			// poststop: the runtime hands the state only.
			st.Status, st.Pid = specs.StateStopped, 0
			code, stderr = runMain(t, string(mustMarshal(t, st)), args...)
			if code != 0 || stderr != "" {
				t.Fatalf("stopped: Main = %d, stderr %q; want 0 and nothing", code, stderr)
			}
			for k, v := range tc.afterStopped {
				if got := tree.read(filepath.Dir(k), filepath.Base(k)); got != v {
					t.Errorf("stopped: %s = %s; want %s", k, got, v)
				}
			}
			s, err := state.Read(filepath.Join(stateDir, ocihook.StateFileName))
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Promises) != 0 {
				t.Errorf("stopped: state promises = %v; want none", s.Promises)
			}
		})
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReadSpecKeepsWhatFactsReads checks that the parts of config.json
// ReadSpec decodes are all Facts reads: the facts of the spec read back
// equal those of the spec written, every field set.
func TestReadSpecKeepsWhatFactsReads(t *testing.T) {
	adj := 900
	limit := int64(536870912)
	full := &specs.Spec{
		Version:     "1.0.2",
		Annotations: map[string]string{"memqos.nri.io/class": "burstable", "memqos.nri.io/memory-request": "256Mi", "io.kubernetes.container.name": "app"},
		Process:     &specs.Process{OOMScoreAdj: &adj, Args: []string{"/bin/sleep", "1"}, Cwd: "/"},
		Root:        &specs.Root{Path: "rootfs"},
		Linux: &specs.Linux{
			CgroupsPath: "kubepods-burstable-pod1234.slice:crio:abc",
			Resources: &specs.LinuxResources{
				Memory:  &specs.LinuxMemory{Limit: &limit},
				Unified: map[string]string{"memory.high": "400000000"},
			},
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}},
		},
	}
	dir := t.TempDir()
	writeJSON(t, filepath.Join(dir, "config.json"), full)
	st := &specs.State{ID: "abc", Status: specs.StateCreating, Bundle: dir}
	read, err := ocihook.ReadSpec(st)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ocihook.Facts(st, full, nil)
	got, _ := ocihook.Facts(st, read, nil)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("facts from ReadSpec:\n got  %+v\n want %+v", got, want)
	}
	if got.Ctr.Limit != limit || got.Ctr.OOMScoreAdj == nil || *got.Ctr.OOMScoreAdj != 900 || got.Ctr.Unified["memory.high"] != "400000000" {
		t.Errorf("facts from ReadSpec lack a field: %+v", got.Ctr)
	}
}
