// Package ocihook is nri-memqos for runtimes without NRI (CRI-O without
// NRI, podman): an OCI hook (oci-hooks(5)) run by the OCI runtime at
// createRuntime or prestart, which decides a container with the same core
// as the NRI plugin and writes its cgroup files and its ancestors'
// protection itself, and at poststop, which withdraws that protection.
//
// What the runtimes carry into a container's config.json is in
// docs/oci-hooks-runtimes.md: CRI-O copies every pod annotation into each
// container's annotations, but pod labels only into the pod sandbox's
// config.json; podman carries only --annotation.
package ocihook

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/opencontainers/runtime-spec/specs-go"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/node"
	"nri-memqos/pkg/policy"
)

// Annotations of CRI-O and kubelet a hook reads.
const (
	annPodNamespace   = "io.kubernetes.pod.namespace"
	annPodName        = "io.kubernetes.pod.name"
	annPodUID         = "io.kubernetes.pod.uid"
	annContainerName  = "io.kubernetes.container.name"
	annCRIOType       = "io.kubernetes.cri-o.ContainerType"
	annCRIOSandboxID  = "io.kubernetes.cri-o.SandboxID"
	annCRIOLabels     = "io.kubernetes.cri-o.Labels"
	annManager        = "io.container.manager"
	criOSandboxType   = "sandbox"
	criOManager       = "cri-o"
	sandboxConfigJSON = "config.json"
)

// Facts turns what the runtime hands a hook into the core's input: the
// OCI state (ID, annotations), the container's config.json (cgroups path,
// memory limit, unified map, OOM score, annotations) and, for CRI-O, the
// pod's labels from its sandbox (nil when unknown). The class comes from
// the memqos.nri.io/class annotation, else the pod label; the request and
// the per-container overrides from the annotations, with the keys the pod
// annotations have under NRI. ok is false for something that is not a
// container of its own (a CRI-O pod sandbox).
func Facts(st *specs.State, spec *specs.Spec, podLabels map[string]string) (c node.Container, ok bool) {
	ann := annotations(st, spec)
	if ann[annCRIOType] == criOSandboxType {
		return node.Container{}, false
	}
	labels := map[string]string{}
	for k, v := range podLabels {
		labels[k] = v
	}
	if v, ok := ann[policy.LabelClass]; ok {
		labels[policy.LabelClass] = v
	}
	c = node.Container{
		ID: st.ID,
		Pod: policy.Pod{
			Namespace:   ann[annPodNamespace],
			Name:        ann[annPodName],
			UID:         ann[annPodUID],
			Labels:      labels,
			Annotations: ann,
		},
		Ctr: policy.Container{Name: ann[annContainerName]},
	}
	if spec == nil {
		return c, true
	}
	if spec.Process != nil && spec.Process.OOMScoreAdj != nil {
		adj := int64(*spec.Process.OOMScoreAdj)
		c.Ctr.OOMScoreAdj = &adj
	}
	if lx := spec.Linux; lx != nil {
		c.CgroupsPath = lx.CgroupsPath
		if rel, err := cgroupfs.RelPath(lx.CgroupsPath); err == nil {
			// The pod's (or the runtime's) cgroup: its path tells the
			// Kubernetes QoS class, as an NRI pod's cgroup parent does.
			c.Pod.CgroupParent = path.Dir(rel)
		}
		if r := lx.Resources; r != nil {
			if r.Memory != nil && r.Memory.Limit != nil && *r.Memory.Limit > 0 {
				c.Ctr.Limit = *r.Memory.Limit
			}
			c.Ctr.Unified = r.Unified
		}
	}
	return c, true
}

// annotations are the config.json's annotations under the state's: runc
// hands the config's in the state; podman's own poststop gives them too.
func annotations(st *specs.State, spec *specs.Spec) map[string]string {
	out := map[string]string{}
	if spec != nil {
		for k, v := range spec.Annotations {
			out[k] = v
		}
	}
	for k, v := range st.Annotations {
		out[k] = v
	}
	return out
}

// ReadSpec reads the config.json of the bundle the state names: the parts
// Facts reads (annotations, oomScoreAdj, cgroupsPath, memory limit and
// unified map). Decoding only those costs a fresh process a quarter of
// what decoding the whole runtime-spec type tree does (about 0.2 against
// 0.75 ms), on every container start.
func ReadSpec(st *specs.State) (*specs.Spec, error) {
	if st.Bundle == "" {
		return nil, fmt.Errorf("the OCI state of %s names no bundle", st.ID)
	}
	name := filepath.Join(st.Bundle, "config.json")
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading the container's config: %w", err)
	}
	var cfg struct {
		Annotations map[string]string `json:"annotations"`
		Process     *struct {
			OOMScoreAdj *int `json:"oomScoreAdj"`
		} `json:"process"`
		Linux *struct {
			CgroupsPath string `json:"cgroupsPath"`
			Resources   *struct {
				Memory *struct {
					Limit *int64 `json:"limit"`
				} `json:"memory"`
				Unified map[string]string `json:"unified"`
			} `json:"resources"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("reading the container's config %s: %w", name, err)
	}
	spec := &specs.Spec{Annotations: cfg.Annotations}
	if p := cfg.Process; p != nil {
		spec.Process = &specs.Process{OOMScoreAdj: p.OOMScoreAdj}
	}
	if lx := cfg.Linux; lx != nil {
		spec.Linux = &specs.Linux{CgroupsPath: lx.CgroupsPath}
		if r := lx.Resources; r != nil {
			spec.Linux.Resources = &specs.LinuxResources{Unified: r.Unified}
			if r.Memory != nil {
				spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: r.Memory.Limit}
			}
		}
	}
	return spec, nil
}

// CRIOPodLabels reads the pod labels of a CRI-O container from its pod
// sandbox's config.json (io.kubernetes.cri-o.Labels): CRI-O keeps every
// container's bundle at <runroot>/<driver>-containers/<id>/userdata, the
// sandbox's beside it. It returns nil, nil for a container that is not
// CRI-O's or names no other sandbox, and nil, nil when the sandbox's
// config.json is gone.
func CRIOPodLabels(st *specs.State, spec *specs.Spec) (map[string]string, error) {
	ann := annotations(st, spec)
	sb := ann[annCRIOSandboxID]
	if ann[annManager] != criOManager || sb == "" || sb == st.ID || st.Bundle == "" {
		return nil, nil
	}
	if filepath.Base(sb) != sb || sb == ".." || sb == "." {
		return nil, fmt.Errorf("%s %q is not a container ID", annCRIOSandboxID, sb)
	}
	name := filepath.Join(filepath.Dir(filepath.Dir(filepath.Clean(st.Bundle))), sb, "userdata", sandboxConfigJSON)
	data, err := os.ReadFile(name)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the pod's labels: %w", err)
	}
	var sbSpec struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(data, &sbSpec); err != nil {
		return nil, fmt.Errorf("reading the pod's labels from %s: %w", name, err)
	}
	raw, ok := sbSpec.Annotations[annCRIOLabels]
	if !ok {
		return nil, nil
	}
	var labels map[string]string
	if err := json.Unmarshal([]byte(raw), &labels); err != nil {
		return nil, fmt.Errorf("reading the pod's labels from %s: %s is not a JSON object of strings: %w", name, annCRIOLabels, err)
	}
	return labels, nil
}
