package explain

import (
	"encoding/json"
	"fmt"
	"math/bits"

	"k8s.io/apimachinery/pkg/api/resource"

	"nri-memqos/pkg/config"
	"nri-memqos/pkg/policy"
)

// Kubelet's oom_score_adj (pkg/kubelet/qos/policy.go).
const (
	guaranteedOOMScoreAdj = -997
	besteffortOOMScoreAdj = 1000
)

const (
	memoryAllowed = "a memory quantity from 0 to 8Ei such as 256Mi or 1G"
	cpuAllowed    = "a non-negative CPU quantity such as 500m or 2"
)

type kubePod struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		UID         string            `json:"uid"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		PriorityClassName string          `json:"priorityClassName"`
		Resources         *kubeResources  `json:"resources"`
		InitContainers    []kubeContainer `json:"initContainers"`
		Containers        []kubeContainer `json:"containers"`
	} `json:"spec"`
	Status struct {
		QOSClass string `json:"qosClass"`
	} `json:"status"`
}

type kubeContainer struct {
	Name          string        `json:"name"`
	RestartPolicy string        `json:"restartPolicy"`
	Resources     kubeResources `json:"resources"`
}

type kubeResources struct {
	Requests map[string]scalar `json:"requests"`
	Limits   map[string]scalar `json:"limits"`
}

type kubeList struct {
	Kind  string            `json:"kind"`
	Items []json.RawMessage `json:"items"`
}

// parseKube reads a Pod or a List of Pods.
func parseKube(d doc) ([]PodInput, error) {
	kind, _ := d.obj["kind"].(string)
	switch kind {
	case "Pod":
		p, err := parsePod(d, false)
		if err != nil {
			return nil, err
		}
		return []PodInput{p}, nil
	case "List", "PodList":
		var l kubeList
		if err := decode(d, &l); err != nil {
			return nil, err
		}
		var pods []PodInput
		for i, item := range l.Items {
			sub := doc{name: fmt.Sprintf("%s (item %d)", d.name, i+1), js: item}
			if err := json.Unmarshal(item, &sub.obj); err != nil || sub.obj == nil {
				return nil, fmt.Errorf("%s: not an object; allowed: a Pod", sub.name)
			}
			if k, _ := sub.obj["kind"].(string); k != "Pod" && (kind != "PodList" || k != "") {
				return nil, fmt.Errorf("%s: kind %q; allowed: Pod", sub.name, k)
			}
			// The API server's PodList items carry neither kind nor apiVersion.
			p, err := parsePod(sub, kind == "PodList")
			if err != nil {
				return nil, err
			}
			pods = append(pods, p)
		}
		if len(pods) == 0 {
			return nil, fmt.Errorf("%s: a %s without items; allowed: at least one Pod", d.name, kind)
		}
		return pods, nil
	}
	return nil, fmt.Errorf("%s: kind %v; allowed: Pod (or a List of Pods)", d.name, d.obj["kind"])
}

// resources are one container's (or the pod's) cpu and memory after
// Kubernetes' defaulting: a request missing where a limit is set is the limit.
type resources struct {
	requests, limits map[string]resource.Quantity
	// memRequest and memLimit in bytes; nil when not set.
	memRequest, memLimit *int64
}

// parseResources checks and defaults cpu and memory; other resources do not
// count for QoS and are ignored.
// Pod-level resources (podLevel) are not defaulted: Kubernetes derives a
// missing pod-level request from the containers, which explain does not
// model, so it must be given.
func parseResources(r kubeResources, podLevel bool, where func(field string, v scalar) string) (resources, error) {
	out := resources{requests: map[string]resource.Quantity{}, limits: map[string]resource.Quantity{}}
	for _, part := range []struct {
		name string
		in   map[string]scalar
		out  map[string]resource.Quantity
	}{{"requests", r.Requests, out.requests}, {"limits", r.Limits, out.limits}} {
		for _, name := range []string{"cpu", "memory"} {
			v, ok := part.in[name]
			if !ok {
				continue
			}
			field := "resources." + part.name + "." + name
			if name == "memory" {
				if _, err := config.ParseBytes(string(v)); err != nil {
					return out, fmt.Errorf("%s: %s; allowed: %s", where(field, v), err, memoryAllowed)
				}
			}
			q, err := resource.ParseQuantity(string(v))
			if err != nil || q.Sign() < 0 {
				allowed := cpuAllowed
				if name == "memory" {
					allowed = memoryAllowed
				}
				return out, fmt.Errorf("%s: not a quantity; allowed: %s", where(field, v), allowed)
			}
			part.out[name] = q
		}
	}
	for _, name := range []string{"cpu", "memory"} {
		lim, ok := out.limits[name]
		if !ok {
			continue
		}
		req, ok := out.requests[name]
		if !ok && podLevel {
			return out, fmt.Errorf("%s without spec.resources.requests.%s: Kubernetes' defaulting of pod-level requests is not modelled; allowed: give the request too",
				where("resources.limits."+name, scalar(lim.String())), name)
		}
		if !ok {
			out.requests[name] = lim
			continue
		}
		if req.Cmp(lim) > 0 {
			return out, fmt.Errorf("%s: above resources.limits.%s %q; allowed: at most the limit",
				where("resources.requests."+name, scalar(req.String())), name, lim.String())
		}
	}
	if q, ok := out.requests["memory"]; ok {
		out.memRequest = ptr(q.Value())
	}
	if q, ok := out.limits["memory"]; ok {
		out.memLimit = ptr(q.Value())
	}
	return out, nil
}

func parsePod(d doc, bare bool) (PodInput, error) {
	var k kubePod
	if err := decode(d, &k); err != nil {
		return PodInput{}, err
	}
	if k.APIVersion != "v1" && (!bare || k.APIVersion != "") {
		return PodInput{}, fmt.Errorf("%s: apiVersion %q; allowed: v1", d.name, k.APIVersion)
	}
	if k.Metadata.Name == "" {
		return PodInput{}, fmt.Errorf("%s: metadata.name is empty; allowed: the pod's name", d.name)
	}
	ns := k.Metadata.Namespace
	if ns == "" {
		ns = "default"
	}
	podRef := ns + "/" + k.Metadata.Name
	if len(k.Spec.Containers) == 0 {
		return PodInput{}, fmt.Errorf("%s: pod %s has no spec.containers; allowed: at least one container", d.name, podRef)
	}
	p := PodInput{
		Kind: InputPod,
		Pod: policy.Pod{
			Namespace:   ns,
			Name:        k.Metadata.Name,
			UID:         k.Metadata.UID,
			Labels:      k.Metadata.Labels,
			Annotations: k.Metadata.Annotations,
		},
		NodeCritical: k.Spec.PriorityClassName == "system-node-critical",
	}
	seen := map[string]bool{}
	var all []resources
	add := func(c kubeContainer, typ string) error {
		if c.Name == "" {
			return fmt.Errorf("%s: pod %s: a container without name; allowed: a name", d.name, podRef)
		}
		if seen[c.Name] {
			return fmt.Errorf("%s: pod %s: container name %q used twice; allowed: unique names", d.name, podRef, c.Name)
		}
		seen[c.Name] = true
		r, err := parseResources(c.Resources, false, func(field string, v scalar) string {
			return fmt.Sprintf("%s: pod %s container %q: %s %q", d.name, podRef, c.Name, field, string(v))
		})
		if err != nil {
			return err
		}
		all = append(all, r)
		ci := ContainerInput{Name: c.Name, Type: typ, SpecRequest: r.memRequest, SpecLimit: r.memLimit}
		if r.memLimit != nil {
			ci.Limit = *r.memLimit
		}
		p.Containers = append(p.Containers, ci)
		return nil
	}
	for _, c := range k.Spec.InitContainers {
		typ := TypeInit
		if c.RestartPolicy == "Always" {
			typ = TypeSidecar
			p.Notes = append(p.Notes, fmt.Sprintf(
				"sidecar %q: kubelet may lower its oom_score_adj towards the pod's regular containers; explain uses the sidecar's own request", c.Name))
		}
		if err := add(c, typ); err != nil {
			return PodInput{}, err
		}
	}
	for _, c := range k.Spec.Containers {
		if err := add(c, TypeContainer); err != nil {
			return PodInput{}, err
		}
	}
	var podLevel *resources
	if k.Spec.Resources != nil {
		r, err := parseResources(*k.Spec.Resources, true, func(field string, v scalar) string {
			return fmt.Sprintf("%s: pod %s: spec.%s %q", d.name, podRef, field, string(v))
		})
		if err != nil {
			return PodInput{}, err
		}
		podLevel = &r
		if r.memRequest != nil {
			p.Notes = append(p.Notes, "pod-level resources: kubelet adds a share of the pod's unallocated memory request to each container's oom_score_adj; explain uses the containers' own requests")
		}
	}
	p.QOS = podQOS(all, podLevel)
	if st := k.Status.QOSClass; st != "" && st != string(p.QOS) {
		p.Notes = append(p.Notes, fmt.Sprintf("status.qosClass is %s but the spec gives %s; explain follows the spec", st, p.QOS))
	}
	p.Pod.CgroupParent = cgroupParent(p.QOS, k.Metadata.UID)
	if k.Metadata.UID == "" {
		p.Notes = append(p.Notes, "metadata.uid is empty: the cgroup parent shows <uid>")
	}
	return p, nil
}

// podQOS is Kubernetes' QoS class (pkg/apis/core/v1/helper/qos ComputePodQOS):
// only cpu and memory count, zero quantities do not; BestEffort without any
// request or limit; Guaranteed when every container (or the pod-level
// resources, when set) has cpu and memory limits and the summed requests
// equal the summed limits; else Burstable.
func podQOS(ctrs []resources, podLevel *resources) policy.QOSClass {
	requests := map[string]resource.Quantity{}
	limits := map[string]resource.Quantity{}
	guaranteed := true
	sum := func(into map[string]resource.Quantity, from map[string]resource.Quantity) map[string]bool {
		found := map[string]bool{}
		for name, q := range from {
			if q.Sign() <= 0 {
				continue
			}
			found[name] = true
			if cur, ok := into[name]; ok {
				q.Add(cur)
			}
			into[name] = q
		}
		return found
	}
	scope := ctrs
	if podLevel != nil {
		scope = []resources{*podLevel}
	}
	for _, r := range scope {
		sum(requests, r.requests)
		found := sum(limits, r.limits)
		if podLevel != nil && len(r.limits) == 0 {
			continue // pod-level requests only: not Guaranteed below (len differs)
		}
		if !found["cpu"] || !found["memory"] {
			guaranteed = false
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return policy.QOSBestEffort
	}
	if guaranteed {
		for name, req := range requests {
			if lim, ok := limits[name]; !ok || lim.Cmp(req) != 0 {
				guaranteed = false
				break
			}
		}
	}
	if guaranteed && len(requests) == len(limits) {
		return policy.QOSGuaranteed
	}
	return policy.QOSBurstable
}

// cgroupParent is kubelet's pod cgroup for the cgroupfs driver.
func cgroupParent(qos policy.QOSClass, uid string) string {
	if uid == "" {
		uid = "<uid>"
	}
	switch qos {
	case policy.QOSGuaranteed:
		return "/kubepods/pod" + uid
	case policy.QOSBestEffort:
		return "/kubepods/besteffort/pod" + uid
	}
	return "/kubepods/burstable/pod" + uid
}

// kubeletOOMScoreAdj is what kubelet gives a container: -997 for Guaranteed
// (and node-critical) pods, 1000 for BestEffort, and for Burstable
// 1000 - 1000*request/MemTotal (integer division) clamped to [3, 999].
func kubeletOOMScoreAdj(qos policy.QOSClass, nodeCritical bool, request, memTotal int64) int64 {
	if nodeCritical || qos == policy.QOSGuaranteed {
		return guaranteedOOMScoreAdj
	}
	if qos == policy.QOSBestEffort {
		return besteffortOOMScoreAdj
	}
	adj := int64(1000 + guaranteedOOMScoreAdj) // 3: a request of all of memory, or more
	if request < memTotal {
		hi, lo := bits.Mul64(1000, uint64(max(request, 0)))
		q, _ := bits.Div64(hi, lo, uint64(memTotal)) // hi < memTotal: no overflow
		adj = max(1000-int64(q), 1000+guaranteedOOMScoreAdj)
	}
	if adj == besteffortOOMScoreAdj {
		adj--
	}
	return adj
}

func ptr[T any](v T) *T { return &v }
