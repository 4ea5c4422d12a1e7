package config

import (
	"bytes"
	"slices"
	"sort"
	"strings"

	"nri-memqos/pkg/cgroupfs"
)

// ClassNone is the reserved class value that opts a container out.
const ClassNone = "none"

// Built-in class names.
const (
	ClassLatencySensitive = "latency-sensitive"
	ClassBurstable        = "burstable"
	ClassBestEffort       = "best-effort"
)

// Keys that an admin may allow pods to set directly per container
// (see Config.AllowedOverrides).
const (
	OverrideMin        = cgroupfs.FileMin
	OverrideLow        = cgroupfs.FileLow
	OverrideHigh       = cgroupfs.FileHigh
	OverrideSwapMax    = cgroupfs.FileSwapMax
	OverrideSwappiness = "swappiness"
)

// OverrideKeys lists every key accepted in Config.AllowedOverrides.
var OverrideKeys = []string{OverrideMin, OverrideLow, OverrideHigh, OverrideSwapMax, OverrideSwappiness}

// CgroupVersion selects the cgroup version: "auto" (detect on the node), "1" or "2".
// YAML may give it as a number or a string.
type CgroupVersion string

// UnmarshalJSON accepts 1, 2, "1", "2" and "auto".
func (v *CgroupVersion) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(bytes.TrimSpace(b)), `"`)
	if s == "null" {
		return nil // keep the default
	}
	*v = CgroupVersion(s)
	return nil
}

// Config is the whole plugin configuration.
//
// Example:
//
//	cgroupVersion: auto
//	cgroupRoot: /sys/fs/cgroup
//	defaultClass: ""
//	namespaceClasses:
//	  batch: best-effort
//	koordinator:
//	  enabled: true
//	maxProtectionFraction: 0.9
//	nodeProtectionFraction: 0.75
//	allowedOverrides: [memory.low]
//	classes:
//	  latency-sensitive:
//	    min: 1.0
type Config struct {
	// CgroupVersion is "auto", "1" or "2". Default "auto".
	CgroupVersion CgroupVersion `json:"cgroupVersion"`
	// CgroupRoot is where the cgroup filesystem is mounted. Default /sys/fs/cgroup.
	CgroupRoot string `json:"cgroupRoot"`
	// DefaultClass applies to pods without an opt-in label. Default "" (none).
	DefaultClass string `json:"defaultClass"`
	// NamespaceClasses gives a default class per namespace; it wins over DefaultClass.
	NamespaceClasses map[string]string `json:"namespaceClasses"`
	// Koordinator maps Koordinator's koordinator.sh/qosClass label to classes.
	Koordinator Koordinator `json:"koordinator"`
	// MaxProtectionFraction caps memory.min and memory.low at this fraction of
	// the container's memory limit, so protection stays strictly below the
	// limit. Default 0.9; allowed: above 0 and below 1.
	MaxProtectionFraction float64 `json:"maxProtectionFraction"`
	// NodeProtectionFraction caps the sum of memory.min promised on the node at
	// this fraction of node memory. Default 0.75; allowed: above 0 up to 1.
	NodeProtectionFraction float64 `json:"nodeProtectionFraction"`
	// NodeLowProtectionFraction caps the sum of memory.low promised on the
	// node at this fraction of node memory, first come first served like
	// memory.min. Default 0.9; allowed: above 0 up to 1.
	NodeLowProtectionFraction float64 `json:"nodeLowProtectionFraction"`
	// NodeAllocatable is the memory the KEP-2570 memory.high formula uses for
	// containers without a limit. Default: MemTotal from /proc/meminfo.
	NodeAllocatable *Quantity `json:"nodeAllocatable,omitempty"`
	// AllowedOverrides lists the keys pods may set per container through
	// annotations. Default none.
	AllowedOverrides []string `json:"allowedOverrides"`
	// Classes are merged by name over the built-in classes; a class given
	// here replaces the built-in class of the same name whole.
	Classes map[string]*Class `json:"classes"`
	// Reconciler configures the loop that acts while containers run.
	Reconciler Reconciler `json:"reconciler"`
}

// Reconciler configures the periodic reconciler.
type Reconciler struct {
	// Enabled runs the reconciler. Default true.
	Enabled bool `json:"enabled"`
	// Interval between ticks. Default 1s.
	Interval Duration `json:"interval"`
	// DriftInterval between checks that the values the plugin set still hold.
	// Default 10s.
	DriftInterval Duration `json:"driftInterval"`
	// AncestorInterval between checks that the ancestors' memory.min and
	// memory.low still hold what the plugin promised (cgroup v2): cheap, a
	// read of two files per ancestor. Default 2s; 0: only every
	// DriftInterval.
	AncestorInterval Duration `json:"ancestorInterval"`
	// MaxReclaimPerTick bounds what background and proactive reclaim ask of
	// one container in one tick. Default 64Mi.
	MaxReclaimPerTick Quantity `json:"maxReclaimPerTick"`
	// NodePressure configures reclaim when the node runs short.
	NodePressure NodePressure `json:"nodePressure"`
	// Guard configures the memory.high livelock guard.
	Guard Guard `json:"guard"`
	// Proactive configures cold-memory reclaim for classes that opt in.
	Proactive Proactive `json:"proactive"`
	// Tiers configures priority-aware reclaim for classes with
	// reclaim.protectFromLowerPriority.
	Tiers Tiers `json:"tiers"`
}

// Tiers configures priority-aware reclaim (cgroup v2): while a container
// of a class with reclaim.protectFromLowerPriority feels memory pressure
// that its own limits do not explain, the containers of lower
// reclaim.priority pay: first memory.reclaim, then, if the pressure
// persists, memory.high lowered step by step; given back step by step
// once the protected containers are calm.
//
// Example:
//
//	tiers:
//	  enabled: true
//	  maxReclaimPerTick: 128Mi
//	  throttleAfter: 3s
//	  step: 0.25
//	  calmFor: 10s
//	  headroom: 32Mi
type Tiers struct {
	// Enabled turns priority-aware reclaim on. Default true; off, every
	// memory.high it lowered is given back at the next tick.
	Enabled bool `json:"enabled"`
	// MaxReclaimPerTick bounds what one tick reclaims from lower-priority
	// containers, all together. Default 128Mi.
	MaxReclaimPerTick Quantity `json:"maxReclaimPerTick"`
	// ThrottleAfter is how long pressure must persist before each step
	// that lowers the lower tiers' memory.high. Default 3s.
	ThrottleAfter Duration `json:"throttleAfter"`
	// Step is the fraction of the way from a container's usage when it
	// was first throttled down to its floor taken per step (and given back
	// per step). Default 0.25.
	Step float64 `json:"step"`
	// CalmFor is how long every protected container must stay calm (its
	// signals below half their thresholds) before each step back.
	// Default 10s.
	CalmFor Duration `json:"calmFor"`
	// Headroom is what a throttled container keeps above its anonymous
	// memory, so it can go on working: memory.high is never set below
	// anon + headroom, nor below its request or protection. Default 32Mi.
	Headroom Quantity `json:"headroom"`
}

// NodePressure configures node-pressure reclaim (cgroup v2).
type NodePressure struct {
	// LowFraction: reclaim starts when MemAvailable falls below this fraction
	// of MemTotal. Default 0.1; 0 turns node-pressure reclaim off.
	LowFraction float64 `json:"lowFraction"`
	// HighFraction: reclaim stops when MemAvailable is back above this
	// fraction. Default 0.15; at least LowFraction.
	HighFraction float64 `json:"highFraction"`
	// MaxReclaimPerTick bounds the node-pressure reclaim of one tick, all
	// containers together. Default 256Mi.
	MaxReclaimPerTick Quantity `json:"maxReclaimPerTick"`
	// PressureThreshold: reclaim also starts when some task on the node
	// stalled on memory (/proc/pressure/memory "some") for this share of
	// the time over the last second, in percent, which page cache does not hide as it
	// hides a shortage from MemAvailable; it stops below half of it. A
	// reclaim the pressure alone starts takes only what containers use
	// above their requests. Default 20; 0 turns the signal off.
	PressureThreshold float64 `json:"pressureThreshold"`
}

// Guard configures the memory.high livelock guard (cgroup v2).
type Guard struct {
	// Enabled turns the guard on. Default true.
	Enabled bool `json:"enabled"`
	// StallPressure is the memory.pressure "full" avg10 (percent) above which
	// a container at memory.high counts as stalled. Default 40.
	StallPressure float64 `json:"stallPressure"`
	// StallFor is how long it must stay stalled before each raise. Default 5s.
	StallFor Duration `json:"stallFor"`
	// ReleasePressure is the "full" avg10 (percent) below which a raised
	// memory.high is brought back. Default 5; below StallPressure.
	ReleasePressure float64 `json:"releasePressure"`
	// ReleaseFor is how long pressure must stay below ReleasePressure before
	// each step back. Default 30s.
	ReleaseFor Duration `json:"releaseFor"`
	// Step is the fraction of the distance between the original memory.high
	// and memory.max added (or taken back) per step. Default 0.25.
	Step float64 `json:"step"`
}

// Proactive configures cold-memory reclaim (cgroup v2), for classes with
// reclaim.proactive: true.
type Proactive struct {
	// TargetPressure is the memory.pressure "some" avg10 (percent) under which
	// the container counts as idle enough to reclaim from. Default 0.5.
	TargetPressure float64 `json:"targetPressure"`
	// Fraction of the container's inactive memory reclaimed per period.
	// Default 0.02.
	Fraction float64 `json:"fraction"`
	// Interval between proactive reclaims of one container. Default 10s.
	Interval Duration `json:"interval"`
}

// Koordinator configures the koordinator.sh/qosClass label mapping.
type Koordinator struct {
	// Enabled turns the mapping on. Default false.
	Enabled bool `json:"enabled"`
	// Classes maps LSE, LSR, LS, BE and SYSTEM to class names ("none" opts out).
	Classes map[string]string `json:"classes"`
}

// Class is one memory QoS class. Every field is optional.
type Class struct {
	// Min is the fraction (0..1) of the memory request protected as memory.min.
	Min *float64 `json:"min,omitempty"`
	// Low is the fraction (0..1) of the memory request protected as memory.low.
	Low *float64 `json:"low,omitempty"`
	// ThrottlingFactor (0..1) sets memory.high by Kubernetes' KEP-2570 formula.
	ThrottlingFactor *float64 `json:"throttlingFactor,omitempty"`
	// Swap is "none", "max" or a fraction (0..1] of the memory limit.
	Swap SwapPolicy `json:"swap,omitzero"`
	// Swappiness (0..100) for cgroup v1.
	Swappiness *int `json:"swappiness,omitempty"`
	// OOMGroup sets memory.oom.group=1 (cgroup v2).
	OOMGroup bool `json:"oomGroup,omitempty"`
	// DefaultLimit is the memory limit given to containers without one.
	DefaultLimit *Quantity `json:"defaultLimit,omitempty"`
	// Reclaim configures the reconciler for this class.
	Reclaim *Reclaim `json:"reclaim,omitempty"`
	// Namespaces restricts the class to these namespaces; empty means any.
	Namespaces []string `json:"namespaces,omitempty"`
}

// Reclaim holds the reconciler settings of a class.
type Reclaim struct {
	// HighWatermark (0..1] of min(memory.high, memory.max) starts background reclaim.
	HighWatermark float64 `json:"highWatermark"`
	// LowWatermark (0..HighWatermark) is where background reclaim stops.
	LowWatermark float64 `json:"lowWatermark"`
	// Priority orders reclaim under node pressure: lower is reclaimed first.
	Priority int `json:"priority"`
	// Proactive opts the class into cold-memory reclaim.
	Proactive bool `json:"proactive,omitempty"`
	// ProtectFromLowerPriority makes containers of lower Priority pay when
	// a container of this class feels memory pressure (PressureThreshold)
	// or loses its working set (RefaultThreshold), or has its page cache
	// taken by the kernel's reclaim (StealThreshold), while below its own
	// memory.high and memory.max (reconciler.tiers). Needs at least one
	// threshold.
	ProtectFromLowerPriority bool `json:"protectFromLowerPriority,omitempty"`
	// PressureThreshold is the memory.pressure "some" share (percent of
	// the time, over the last second) that counts as pressure; 0: not a
	// signal.
	PressureThreshold float64 `json:"pressureThreshold,omitempty"`
	// RefaultThreshold is the workingset refaults (pages of file and
	// anonymous memory evicted and read back) per second that count as
	// pressure; 0: not a signal.
	RefaultThreshold float64 `json:"refaultThreshold,omitempty"`
	// StealThreshold is the pages per second the kernel's reclaim takes
	// from the container (memory.stat pgsteal; a window in which the
	// plugin reclaimed from it itself does not count) that count as
	// pressure: it fires while the container is idle and losing the cache
	// it will read next, before any refault; 0: not a signal.
	StealThreshold float64 `json:"stealThreshold,omitempty"`
}

// ClassNames returns the defined class names, sorted.
func (c *Config) ClassNames() []string {
	names := make([]string, 0, len(c.Classes))
	for n := range c.Classes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// OverrideAllowed tells whether pods may set key per container.
func (c *Config) OverrideAllowed(key string) bool {
	return slices.Contains(c.AllowedOverrides, key)
}
