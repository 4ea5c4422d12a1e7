package explain

import (
	"fmt"
	"strconv"
	"strings"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/config"
	"nri-memqos/pkg/policy"
)

// Options are facts about the node's kubelet.
type Options struct {
	// KubeletMemoryQoS: kubelet's MemoryQoS feature gate is on, so on cgroup
	// v2 it puts memory.min / memory.low into the container's unified map
	// (it never does on cgroup v1), as KubeletReservation says.
	KubeletMemoryQoS bool
	// KubeletReservation is kubelet's memoryReservationPolicy (Kubernetes
	// 1.36+): ReservationNone, kubelet passes memory.min = memory.low = 0;
	// ReservationTiered, a Guaranteed container's memory.min or a
	// Burstable container's memory.low = its request (0 and 0 without a
	// request). "" is kubelet before 1.36: memory.min = the request.
	KubeletReservation string
}

// kubelet's memoryReservationPolicy values.
const (
	ReservationNone   = "None"
	ReservationTiered = "TieredReservation"
)

// Explain runs the plugin's policy on each container of pods, once per
// cgroup version, with the facts the runtime would give the plugin at
// creation. node carries MemTotal (needed for Burstable Pods, whose request
// reaches the plugin only as kubelet's oom_score_adj), PageSize (0: 4096)
// and PromisedMin (the
// memory.min already promised to containers not explained here). Containers
// are taken in creation order; each one's memory.min counts towards the
// node cap of those created after it while it runs, like the plugin's
// ledger does (a plain init container has exited by then). It
// returns an error only for unusable node facts; invalid labels and
// annotations are results (Report.Failing).
func Explain(cfg *config.Config, node policy.Node, pods []PodInput, opts Options) (*Report, error) {
	if cfg == nil {
		cfg = config.Default()
	}
	if node.MemTotal < 0 || node.PageSize < 0 || node.PromisedMin < 0 {
		return nil, fmt.Errorf("node facts must not be negative")
	}
	if node.PageSize == 0 {
		node.PageSize = 4096
	}
	switch opts.KubeletReservation {
	case "", ReservationNone, ReservationTiered:
	default:
		return nil, fmt.Errorf("kubelet memoryReservationPolicy %q: allowed: %s, %s", opts.KubeletReservation, ReservationNone, ReservationTiered)
	}
	rep := &Report{
		Node: Node{MemTotal: node.MemTotal, PageSize: node.PageSize, Allocatable: policy.Allocatable(cfg, node),
			PromisedMin: node.PromisedMin},
		KubeletMemoryQoS:   opts.KubeletMemoryQoS,
		KubeletReservation: opts.KubeletReservation,
		Pods:               []PodResult{},
	}
	// memory.min promised to the containers running when each one is
	// created, per cgroup version (the decisions may differ).
	promised := [2]int64{node.PromisedMin, node.PromisedMin}
	for _, p := range pods {
		pr := PodResult{
			Input: p.Kind, Namespace: p.Pod.Namespace, Name: p.Pod.Name, UID: p.Pod.UID,
			QOS: string(p.QOS), CgroupParent: p.Pod.CgroupParent,
			Notes: append([]string{}, p.Notes...), Containers: []ContainerResult{},
		}
		if p.Kind == InputCRI && opts.KubeletMemoryQoS {
			pr.Notes = append(pr.Notes, "kubelet MemoryQoS does not apply to CRI input: its unified map is taken as given")
		}
		if p.Kind == InputPod {
			if got := policy.KubeQOS(p.Pod.CgroupParent); got != p.QOS {
				return nil, fmt.Errorf("pod %s/%s: policy.KubeQOS(%q) = %q, Kubernetes says %q",
					p.Pod.Namespace, p.Pod.Name, p.Pod.CgroupParent, got, p.QOS)
			}
			if p.QOS == policy.QOSBurstable && node.MemTotal <= 0 {
				return nil, fmt.Errorf("pod %s/%s is Burstable: kubelet's oom_score_adj needs the node's MemTotal; allowed: a positive MemTotal", p.Pod.Namespace, p.Pod.Name)
			}
		}
		for _, c := range p.Containers {
			cr, protected := explainContainer(cfg, node, promised, p, c, opts)
			if c.Type != TypeInit {
				promised[0] += protected[0]
				promised[1] += protected[1]
			}
			pr.Containers = append(pr.Containers, cr)
		}
		rep.Pods = append(rep.Pods, pr)
	}
	return rep, nil
}

// runtimeFacts are the policy.Container facts for each cgroup version.
func runtimeFacts(p PodInput, c ContainerInput, node policy.Node, opts Options) (v2, v1 policy.Container) {
	base := policy.Container{
		Name:        c.Name,
		Annotations: c.Annotations,
		Limit:       c.Limit,
		OOMScoreAdj: c.OOMScoreAdj,
		// CreateContainer: the unified map is kubelet's request as it stands.
		UnifiedFromKubelet: true,
	}
	if p.Kind == InputCRI {
		base.Unified = c.Unified
		return base, base
	}
	var req int64
	if c.SpecRequest != nil {
		req = *c.SpecRequest
	}
	base.OOMScoreAdj = ptr(kubeletOOMScoreAdj(p.QOS, p.NodeCritical, req, node.MemTotal))
	v2, v1 = base, base
	if opts.KubeletMemoryQoS {
		v2.Unified = kubeletUnified(p.QOS, req, opts.KubeletReservation)
	}
	return v2, v1
}

// kubeletUnified is the memory.min / memory.low kubelet (MemoryQoS, cgroup
// v2 only) puts into a container's unified map at creation and at an
// in-place resize (kubelet's generateLinuxContainerResources).
func kubeletUnified(qos policy.QOSClass, req int64, reservation string) map[string]string {
	bytes := strconv.FormatInt(req, 10)
	switch {
	case reservation == "":
		if req > 0 {
			return map[string]string{cgroupfs.FileMin: bytes}
		}
		return nil
	case reservation == ReservationTiered && req > 0 && qos == policy.QOSGuaranteed:
		return map[string]string{cgroupfs.FileMin: bytes}
	case reservation == ReservationTiered && req > 0:
		return map[string]string{cgroupfs.FileLow: bytes}
	default:
		return map[string]string{cgroupfs.FileMin: "0", cgroupfs.FileLow: "0"}
	}
}

// explainContainer decides for one container on cgroup v2 and v1, with the
// memory.min already promised on each, and returns what it promises on each.
func explainContainer(cfg *config.Config, node policy.Node, promised [2]int64, p PodInput, c ContainerInput, opts Options) (ContainerResult, [2]int64) {
	f2, f1 := runtimeFacts(p, c, node, opts)
	cr := ContainerResult{
		Name: c.Name, Type: c.Type,
		Runtime: Runtime{MemoryLimit: c.Limit, OOMScoreAdj: f2.OOMScoreAdj, UnifiedV2: nonNil(f2.Unified), UnifiedV1: nonNil(f1.Unified)},
		Notes:   []string{},
	}
	if p.Kind == InputPod {
		cr.Spec = &Spec{MemoryRequest: c.SpecRequest, MemoryLimit: c.SpecLimit}
	}
	if len(f1.Unified) > 0 {
		cr.Notes = append(cr.Notes, "on cgroup v1 runc refuses a container whose config has unified keys, whatever the plugin does")
	}
	class, src, err := policy.SelectClass(cfg, p.Pod, f2)
	if err == nil && class != "" {
		cr.OptedIn, cr.Class, cr.ClassSource = true, class, string(src)
	}

	n2 := node
	n2.PromisedMin = promised[0]
	d2, err2 := policy.Decide(cfg, p.Pod, f2, n2)
	cr.V2 = V2Result{Decided: decided(d2, err2), Unified: map[string]string{}}
	if d2 != nil {
		cr.V2.Unified = d2.UnifiedV2()
	}

	n1 := node
	n1.PromisedMin = promised[1]
	d1, err1 := policy.Decide(cfg, p.Pod, f1, n1)
	cr.V1 = V1Result{Decided: decided(d1, err1)}
	if d1 != nil {
		v := d1.V1()
		cr.V1.SoftLimit, cr.V1.Swappiness, cr.V1.MemSwLimit = v.SoftLimit, v.Swappiness, v.MemSwLimit
	}

	if cr.Spec != nil && cr.Spec.MemoryRequest != nil {
		if note := requestNote(*cr.Spec.MemoryRequest, d2, d1, c.Name); note != "" {
			cr.Notes = append(cr.Notes, note)
		}
	}
	if v := f2.Unified[cgroupfs.FileMin]; p.Kind == InputPod && opts.KubeletMemoryQoS && v != "" && v != "0" && d2 != nil && d2.High == nil &&
		(c.SpecLimit == nil || strconv.FormatInt(*c.SpecLimit, 10) != v) {
		cr.Notes = append(cr.Notes, "on cgroup v2 kubelet's MemoryQoS may also put memory.high into the unified map (by its memoryThrottlingFactor, not shown); the plugin sets no memory.high here, so kubelet's stays")
	}
	return cr, [2]int64{d2.ProtectedMin(), d1.ProtectedMin()}
}

func decided(d *policy.Decision, err error) Decided {
	out := Decided{Overridden: []string{}, Warnings: []string{}}
	if err != nil {
		out.Error = newError(err)
		return out
	}
	if d == nil {
		return out
	}
	out.Request, out.RequestSource = d.Request, string(d.RequestSource)
	out.Limit, out.SetLimit = d.Limit, d.SetLimit
	out.Overridden = append(out.Overridden, d.Overridden...)
	if r := d.Reclaim; r != nil {
		out.Reclaim = &Reclaim{HighWatermark: r.HighWatermark, LowWatermark: r.LowWatermark, Priority: r.Priority, Proactive: r.Proactive,
			ProtectFromLowerPriority: r.ProtectFromLowerPriority, PressureThreshold: r.PressureThreshold, RefaultThreshold: r.RefaultThreshold,
			StealThreshold: r.StealThreshold}
	}
	out.Warnings = append(out.Warnings, d.Warnings...)
	return out
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// requestNote tells when the request the plugin resolves is not the pod
// spec's: a Burstable container's request reaches it only through
// oom_score_adj, to within 1/1000 of node memory. A request annotation is
// the user's choice and needs no note.
func requestNote(spec int64, d2, d1 *policy.Decision, name string) string {
	type seen struct {
		where string
		d     *policy.Decision
	}
	var off []seen
	for _, v := range []seen{{"cgroup v2", d2}, {"cgroup v1", d1}} {
		if v.d != nil && v.d.Request != spec &&
			v.d.RequestSource != policy.RequestFromContainerAnnotation && v.d.RequestSource != policy.RequestFromPodAnnotation {
			off = append(off, v)
		}
	}
	var sees string
	switch {
	case len(off) == 0:
		return ""
	case len(off) == 2 && off[0].d.Request == off[1].d.Request && off[0].d.RequestSource == off[1].d.RequestSource:
		sees = fmt.Sprintf("a request of %d (%s)", off[0].d.Request, off[0].d.RequestSource)
	default:
		var parts []string
		for _, v := range off {
			parts = append(parts, fmt.Sprintf("%d (%s) on %s", v.d.Request, v.d.RequestSource, v.where))
		}
		sees = "a request of " + strings.Join(parts, " and ")
	}
	return fmt.Sprintf("the plugin sees %s, not the pod spec's %d; annotation %s%s gives it exactly",
		sees, spec, policy.AnnotationRequestPrefix, name)
}
