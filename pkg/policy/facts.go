package policy

import (
	"slices"
	"strings"
	"sync"
	"unique"
)

// Labels and annotations read by the policy.
const (
	// LabelClass is the pod label that opts a pod into a class.
	LabelClass = "memqos.nri.io/class"
	// AnnotationClassPrefix + container name overrides the class of one container.
	AnnotationClassPrefix = "memqos.nri.io/class.container."
	// AnnotationRequest gives the memory request of every container of the pod.
	AnnotationRequest = "memqos.nri.io/memory-request"
	// AnnotationRequestPrefix + container name gives one container's memory request.
	AnnotationRequestPrefix = "memqos.nri.io/memory-request.container."
	// AnnotationOverrideInfix separates an override key from the container name:
	// memqos.nri.io/<key>.container.<name>, for keys in config.OverrideKeys.
	AnnotationOverrideInfix = ".container."
	// AnnotationPrefix is the prefix of every annotation of this plugin.
	AnnotationPrefix = "memqos.nri.io/"
	// AnnotationRecordedRequest is set on the container at creation with the
	// request resolved then, so that later events (Synchronize after a
	// restart) do not mistake the plugin's own memory.min for kubelet's.
	AnnotationRecordedRequest = "memqos.nri.io/resolved-request"
	// LabelKoordinatorQoS is Koordinator's pod QoS label.
	LabelKoordinatorQoS = "koordinator.sh/qosClass"
)

// QOSClass is the Kubernetes QoS class of a pod.
type QOSClass string

// Kubernetes QoS classes; QOSUnknown when the cgroup parent does not tell.
const (
	QOSGuaranteed QOSClass = "Guaranteed"
	QOSBurstable  QOSClass = "Burstable"
	QOSBestEffort QOSClass = "BestEffort"
	QOSUnknown    QOSClass = ""
)

// Pod holds what the policy needs to know about a pod.
type Pod struct {
	Namespace    string
	Name         string
	UID          string
	Labels       map[string]string
	Annotations  map[string]string
	CgroupParent string
}

// Container holds what the policy needs to know about a container.
type Container struct {
	Name string
	// Annotations are the container's own (not the pod's).
	Annotations map[string]string
	// Limit is the memory limit in bytes; 0 means none.
	Limit int64
	// Unified is the cgroup v2 unified map the runtime has for the container.
	Unified map[string]string
	// UnifiedFromKubelet tells that Unified is kubelet's own request (creation,
	// in-place resize) and so wins over the recorded request; otherwise
	// (Synchronize) it may hold the plugin's own earlier values.
	UnifiedFromKubelet bool
	// Recorded is the request the plugin resolved for this container before
	// (kept across restarts); nil falls back to the creation annotation.
	Recorded *int64
	// OOMScoreAdj as set by kubelet, if known.
	OOMScoreAdj *int64
}

// Kept is p with only what the policy reads (its own labels and
// annotations, Koordinator's QoS label), the strings shared among pods
// interned: what a node agent keeps per container to decide it again
// later, without holding on to every label and annotation of every pod.
func (p Pod) Kept() Pod {
	p.Namespace = intern(p.Namespace)
	p.CgroupParent = intern(p.CgroupParent)
	p.Labels = keep(p.Labels, func(k string) bool { return k == LabelClass || k == LabelKoordinatorQoS })
	p.Annotations = keep(p.Annotations, isOurs)
	return p
}

// Kept is c with only the annotations the policy reads (see Pod.Kept). The
// maps of kept pods and containers are shared: never modify them.
func (c Container) Kept() Container {
	c.Annotations = keep(c.Annotations, isOurs)
	c.Unified = keep(c.Unified, func(string) bool { return true })
	return c
}

func isOurs(k string) bool { return strings.HasPrefix(k, AnnotationPrefix) }

// keep returns the entries of m whose keys want, nil when none: a map
// shared by every caller asking for the same entries (the containers of a
// pod, the pods of a class), so callers must never modify it.
func keep(m map[string]string, want func(string) bool) map[string]string {
	var keys []string
	for k := range m {
		if want(k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(m[k])
		b.WriteByte(0)
	}
	return kept.get(b.String(), func() map[string]string {
		out := make(map[string]string, len(keys))
		for _, k := range keys {
			out[intern(k)] = intern(m[k])
		}
		return out
	})
}

// keptMaps holds the maps keep shared, by their content. It forgets them
// all once it holds keptMax (a node sees few distinct ones).
type keptMaps struct {
	mu   sync.Mutex
	maps map[string]map[string]string
}

const keptMax = 4096

var kept = keptMaps{maps: map[string]map[string]string{}}

func (c *keptMaps) get(key string, build func() map[string]string) map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.maps[key]; ok {
		return m
	}
	if len(c.maps) >= keptMax {
		clear(c.maps)
	}
	m := build()
	c.maps[key] = m
	return m
}

// intern returns the one copy of s the process keeps.
func intern(s string) string { return unique.Make(s).Value() }

// Node holds node-wide facts.
type Node struct {
	// MemTotal is node memory in bytes (/proc/meminfo MemTotal).
	MemTotal int64
	// PageSize in bytes; 0 means 4096.
	PageSize int64
	// PromisedMin is the memory.min already promised to other containers.
	PromisedMin int64
	// PromisedLow is the memory.low already promised to other containers.
	PromisedLow int64
}

func (n Node) pageSize() int64 {
	if n.PageSize > 0 {
		return n.PageSize
	}
	return 4096
}

// KubeQOS derives the Kubernetes QoS class from a pod's cgroup parent, for the
// cgroupfs driver (/kubepods/burstable/pod<uid>) and the systemd driver
// (kubepods-burstable-pod<uid>.slice) alike.
func KubeQOS(cgroupParent string) QOSClass {
	kube := false
	for _, c := range strings.FieldsFunc(cgroupParent, func(r rune) bool { return r == '/' }) {
		c = strings.TrimSuffix(c, ".slice")
		switch {
		case c == "burstable" || strings.HasPrefix(c, "kubepods-burstable"):
			return QOSBurstable
		case c == "besteffort" || strings.HasPrefix(c, "kubepods-besteffort"):
			return QOSBestEffort
		case c == "kubepods" || strings.HasPrefix(c, "kubepods-"):
			kube = true
		}
	}
	if kube {
		return QOSGuaranteed
	}
	return QOSUnknown
}
