package explain

import (
	"fmt"
	"strconv"

	"nri-memqos/pkg/policy"
)

// looksLikeSandbox tells a CRI PodSandboxConfig by fields only it has.
func looksLikeSandbox(obj map[string]any) bool {
	return hasAny(obj, []string{"linux", "cgroup_parent"}, []string{"metadata", "namespace"}, []string{"metadata", "uid"},
		[]string{"hostname"}, []string{"log_directory"}, []string{"dns_config"}, []string{"port_mappings"},
		[]string{"linux", "security_context", "namespace_options"})
}

// looksLikeContainer tells a CRI ContainerConfig by fields only it has.
func looksLikeContainer(obj map[string]any) bool {
	return hasAny(obj, []string{"image"}, []string{"command"}, []string{"args"}, []string{"working_dir"},
		[]string{"envs"}, []string{"mounts"}, []string{"log_path"}, []string{"linux", "resources"})
}

func hasAny(obj map[string]any, paths ...[]string) bool {
	for _, p := range paths {
		if _, ok := field(obj, p...); ok {
			return true
		}
	}
	return false
}

func field(obj map[string]any, path ...string) (any, bool) {
	var v any = obj
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[p]; !ok {
			return nil, false
		}
	}
	return v, true
}

type criSandbox struct {
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
		UID       string `json:"uid"`
	} `json:"metadata"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Linux       struct {
		CgroupParent string `json:"cgroup_parent"`
	} `json:"linux"`
}

type criContainer struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Annotations map[string]string `json:"annotations"`
	Linux       struct {
		Resources struct {
			MemoryLimitInBytes criInt            `json:"memory_limit_in_bytes"`
			OOMScoreAdj        criInt            `json:"oom_score_adj"`
			Unified            map[string]scalar `json:"unified"`
		} `json:"resources"`
	} `json:"linux"`
}

// criInt is a CRI int64 field: a JSON number (or a string holding one).
type criInt struct {
	set bool
	v   int64
	raw string
}

func (c *criInt) UnmarshalJSON(b []byte) error {
	var s scalar
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	if s == "" {
		return nil
	}
	c.set, c.raw = true, string(s)
	v, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not an integer", string(s))
	}
	c.v = v
	return nil
}

// parseCRI reads a CRI pod sandbox config and container config the way
// containerd hands them to NRI: labels, annotations and cgroup parent of the
// sandbox; name, annotations, memory limit, oom_score_adj (0 when absent, as
// containerd always sets it) and unified map of the container.
func parseCRI(sb, ctr doc) (PodInput, error) {
	var s criSandbox
	if err := decode(sb, &s); err != nil {
		return PodInput{}, err
	}
	var c criContainer
	if err := decode(ctr, &c); err != nil {
		return PodInput{}, err
	}
	if s.Metadata.Name == "" {
		return PodInput{}, fmt.Errorf("%s: metadata.name is empty; allowed: the pod's name", sb.name)
	}
	if c.Metadata.Name == "" {
		return PodInput{}, fmt.Errorf("%s: metadata.name is empty; allowed: the container's name", ctr.name)
	}
	res := c.Linux.Resources
	if res.MemoryLimitInBytes.v < 0 {
		return PodInput{}, fmt.Errorf("%s: linux.resources.memory_limit_in_bytes %q: negative; allowed: 0 (no limit) or a number of bytes", ctr.name, res.MemoryLimitInBytes.raw)
	}
	if adj := res.OOMScoreAdj.v; adj < -1000 || adj > 1000 {
		return PodInput{}, fmt.Errorf("%s: linux.resources.oom_score_adj %q: out of range; allowed: -1000 to 1000", ctr.name, res.OOMScoreAdj.raw)
	}
	p := PodInput{
		Kind: InputCRI,
		Pod: policy.Pod{
			Namespace:    s.Metadata.Namespace,
			Name:         s.Metadata.Name,
			UID:          s.Metadata.UID,
			Labels:       s.Labels,
			Annotations:  s.Annotations,
			CgroupParent: s.Linux.CgroupParent,
		},
		QOS: policy.KubeQOS(s.Linux.CgroupParent),
	}
	if p.QOS == policy.QOSUnknown {
		p.Notes = append(p.Notes, fmt.Sprintf("cgroup parent %q is not under kubepods: the Kubernetes QoS class is unknown", s.Linux.CgroupParent))
	}
	adj := res.OOMScoreAdj.v
	ci := ContainerInput{
		Name:        c.Metadata.Name,
		Type:        TypeContainer,
		Annotations: c.Annotations,
		Limit:       res.MemoryLimitInBytes.v,
		OOMScoreAdj: &adj,
	}
	if res.Unified != nil {
		ci.Unified = make(map[string]string, len(res.Unified))
		for k, v := range res.Unified {
			ci.Unified[k] = string(v)
		}
	}
	p.Containers = []ContainerInput{ci}
	return p, nil
}
