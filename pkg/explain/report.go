package explain

import (
	"errors"

	"nri-memqos/pkg/policy"
)

// Report is everything explain found, for the text and the JSON output.
type Report struct {
	Node             Node `json:"node"`
	KubeletMemoryQoS bool `json:"kubeletMemoryQoS"`
	// KubeletReservation is kubelet's memoryReservationPolicy as given
	// ("": kubelet before 1.36).
	KubeletReservation string      `json:"kubeletMemoryReservationPolicy"`
	Pods               []PodResult `json:"pods"`
}

// Node is the node facts the decisions used.
type Node struct {
	MemTotal    int64 `json:"memTotal"`
	PageSize    int64 `json:"pageSize"`
	Allocatable int64 `json:"allocatable"`
	// PromisedMin is the memory.min assumed promised to other containers
	// before the first container explained (cgroup v2).
	PromisedMin int64 `json:"promisedMin"`
}

// PodResult is one pod.
type PodResult struct {
	Input        string            `json:"input"`
	Namespace    string            `json:"namespace"`
	Name         string            `json:"name"`
	UID          string            `json:"uid"`
	QOS          string            `json:"qos"`
	CgroupParent string            `json:"cgroupParent"`
	Notes        []string          `json:"notes"`
	Containers   []ContainerResult `json:"containers"`
}

// ContainerResult is one container. The plugin decides separately on each
// cgroup version because the runtime's facts differ (kubelet's MemoryQoS
// unified map exists only on v2), so the request, the values and even an
// error can differ between them.
type ContainerResult struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Spec is the pod spec's memory request and limit (null for CRI input).
	Spec *Spec `json:"spec"`
	// Runtime is what the runtime hands the plugin at creation.
	Runtime Runtime `json:"runtime"`
	OptedIn bool    `json:"optedIn"`
	// Class and ClassSource are empty when not opted in or when the class
	// label or annotation is invalid.
	Class       string   `json:"class"`
	ClassSource string   `json:"classSource"`
	V2          V2Result `json:"cgroupV2"`
	V1          V1Result `json:"cgroupV1"`
	// Notes are explain's own remarks (where its input is not what the
	// plugin sees); Warnings of the policy are per cgroup version.
	Notes []string `json:"notes"`
}

// Spec is the pod spec's memory request (after defaulting) and limit.
type Spec struct {
	MemoryRequest *int64 `json:"memoryRequest"`
	MemoryLimit   *int64 `json:"memoryLimit"`
}

// Runtime is the container facts the plugin gets from the runtime.
type Runtime struct {
	MemoryLimit int64  `json:"memoryLimit"`
	OOMScoreAdj *int64 `json:"oomScoreAdj"`
	// UnifiedV2 and UnifiedV1 are the container's unified map at creation.
	UnifiedV2 map[string]string `json:"unifiedV2"`
	UnifiedV1 map[string]string `json:"unifiedV1"`
}

// Decided is one policy decision (one cgroup version).
type Decided struct {
	Request       int64  `json:"request"`
	RequestSource string `json:"requestSource"`
	// Limit is the limit in force after the decision; SetLimit the one the
	// plugin sets (class defaultLimit), 0 when it sets none.
	Limit      int64    `json:"limit"`
	SetLimit   int64    `json:"setLimit"`
	Overridden []string `json:"overridden"`
	// Reclaim is the class's reconciler settings, null when none.
	Reclaim  *Reclaim `json:"reclaim"`
	Warnings []string `json:"warnings"`
	// Error is set when the plugin would fail the container's creation.
	Error *Error `json:"error"`
}

// Reclaim is what the reconciler does for the container (config.Reclaim
// with every field always present).
type Reclaim struct {
	HighWatermark float64 `json:"highWatermark"`
	LowWatermark  float64 `json:"lowWatermark"`
	Priority      int     `json:"priority"`
	Proactive     bool    `json:"proactive"`
	// ProtectFromLowerPriority with its thresholds: priority-aware reclaim.
	ProtectFromLowerPriority bool    `json:"protectFromLowerPriority"`
	PressureThreshold        float64 `json:"pressureThreshold"`
	RefaultThreshold         float64 `json:"refaultThreshold"`
	StealThreshold           float64 `json:"stealThreshold"`
}

// V2Result is the decision on cgroup v2.
type V2Result struct {
	Decided
	// Unified is what the plugin merges into the container's unified map
	// (Decision.UnifiedV2); keys absent keep the runtime's values.
	Unified map[string]string `json:"unified"`
}

// V1Result is the decision on cgroup v1 (Decision.V1); nil: left alone.
type V1Result struct {
	Decided
	SoftLimit  *int64 `json:"softLimit"`
	Swappiness *int64 `json:"swappiness"`
	// MemSwLimit is limit + swap, -1 unlimited; written only where the
	// kernel accounts swap.
	MemSwLimit *int64 `json:"memswLimit"`
}

// Error is an invalid label or annotation: the plugin fails the container.
type Error struct {
	Message string `json:"message"`
	Key     string `json:"key"`
	Value   string `json:"value"`
	Reason  string `json:"reason"`
	Allowed string `json:"allowed"`
}

func newError(err error) *Error {
	var ie *policy.InputError
	if errors.As(err, &ie) {
		return &Error{Message: err.Error(), Key: ie.Key, Value: ie.Value, Reason: ie.Reason, Allowed: ie.Allowed}
	}
	return &Error{Message: err.Error()}
}

// Failing counts the containers whose creation the plugin would fail (on
// either cgroup version).
func (r *Report) Failing() int {
	n := 0
	for _, p := range r.Pods {
		for _, c := range p.Containers {
			if c.V2.Error != nil || c.V1.Error != nil {
				n++
			}
		}
	}
	return n
}
