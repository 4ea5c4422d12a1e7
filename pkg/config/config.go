// Package config holds the nri-memqos configuration: the QoS classes, how
// pods pick them, and the node-wide guardrails. It parses and validates; it
// performs no cgroup I/O.
package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
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
	OverrideMin        = "memory.min"
	OverrideLow        = "memory.low"
	OverrideHigh       = "memory.high"
	OverrideSwapMax    = "memory.swap.max"
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
	// MaxReclaimPerTick bounds what background and proactive reclaim ask of
	// one container in one tick. Default 64Mi.
	MaxReclaimPerTick Quantity `json:"maxReclaimPerTick"`
	// NodePressure configures reclaim when the node runs short.
	NodePressure NodePressure `json:"nodePressure"`
	// Guard configures the memory.high livelock guard.
	Guard Guard `json:"guard"`
	// Proactive configures cold-memory reclaim for classes that opt in.
	Proactive Proactive `json:"proactive"`
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

// Duration is a time.Duration written as "1s", "500ms" in the configuration.
type Duration struct{ time.Duration }

// UnmarshalJSON parses a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(bytes.TrimSpace(b)), `"`)
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 1s or 500ms", s)
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

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
	// Swap is "none", "max" or a fraction (0..1) of the memory limit.
	Swap string `json:"swap,omitempty"`
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
}

// SwapMode tells how a class treats swap.
type SwapMode int

// Swap modes.
const (
	SwapUnset SwapMode = iota
	SwapNone
	SwapMax
	SwapFraction
)

// SwapPolicy is the parsed form of Class.Swap.
type SwapPolicy struct {
	Mode     SwapMode
	Fraction float64
}

// ParseSwap parses a Class.Swap value.
func ParseSwap(s string) (SwapPolicy, error) {
	switch s {
	case "":
		return SwapPolicy{}, nil
	case "none":
		return SwapPolicy{Mode: SwapNone}, nil
	case "max":
		return SwapPolicy{Mode: SwapMax}, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f > 0 && f <= 1) { // also rejects NaN
		return SwapPolicy{}, fmt.Errorf("%q is not a swap setting; allowed: none, max, or a fraction of the limit above 0 up to 1", s)
	}
	return SwapPolicy{Mode: SwapFraction, Fraction: f}, nil
}

func ptr[T any](v T) *T { return &v }

// Default returns the built-in configuration, the one documented in
// config/nri-memqos.yaml.
func Default() *Config {
	return &Config{
		CgroupVersion:          "auto",
		CgroupRoot:             "/sys/fs/cgroup",
		NamespaceClasses:       map[string]string{},
		MaxProtectionFraction:  0.9,
		NodeProtectionFraction: 0.75,
		AllowedOverrides:       []string{},
		Koordinator: Koordinator{
			Classes: map[string]string{
				"LSE":    ClassLatencySensitive,
				"LSR":    ClassLatencySensitive,
				"LS":     ClassBurstable,
				"BE":     ClassBestEffort,
				"SYSTEM": ClassNone,
			},
		},
		Classes: BuiltinClasses(),
		Reconciler: Reconciler{
			Enabled:           true,
			Interval:          Duration{time.Second},
			DriftInterval:     Duration{10 * time.Second},
			MaxReclaimPerTick: "64Mi",
			NodePressure:      NodePressure{LowFraction: 0.1, HighFraction: 0.15, MaxReclaimPerTick: "256Mi"},
			Guard: Guard{Enabled: true, StallPressure: 40, StallFor: Duration{5 * time.Second},
				ReleasePressure: 5, ReleaseFor: Duration{30 * time.Second}, Step: 0.25},
			Proactive: Proactive{TargetPressure: 0.5, Fraction: 0.02, Interval: Duration{10 * time.Second}},
		},
	}
}

// BuiltinClasses returns fresh copies of the built-in classes.
func BuiltinClasses() map[string]*Class {
	return map[string]*Class{
		ClassLatencySensitive: {
			Min:        ptr(1.0),
			Swap:       "none",
			Swappiness: ptr(0),
			Reclaim:    &Reclaim{HighWatermark: 0.95, LowWatermark: 0.9, Priority: 100},
		},
		ClassBurstable: {
			Low:              ptr(1.0),
			ThrottlingFactor: ptr(0.9),
			Reclaim:          &Reclaim{HighWatermark: 0.9, LowWatermark: 0.8, Priority: 50},
		},
		ClassBestEffort: {
			ThrottlingFactor: ptr(0.8),
			OOMGroup:         true,
			Reclaim:          &Reclaim{HighWatermark: 0.85, LowWatermark: 0.7, Priority: 0},
		},
	}
}

// Parse reads a YAML (or JSON) configuration over the defaults and validates it.
// Unknown keys are errors. Empty input yields the defaults.
func Parse(data []byte) (*Config, error) {
	cfg := Default()
	if len(bytes.TrimSpace(data)) > 0 {
		js, err := yaml.YAMLToJSON(data)
		if err != nil {
			return nil, fmt.Errorf("invalid config: %w", err)
		}
		if !bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
			dec := json.NewDecoder(bytes.NewReader(js))
			dec.DisallowUnknownFields()
			if err := dec.Decode(cfg); err != nil {
				return nil, fmt.Errorf("invalid config: %w", err)
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Load reads and parses a configuration file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func fieldErr(field string, format string, args ...any) error {
	return fmt.Errorf("invalid config: %s: %s", field, fmt.Sprintf(format, args...))
}

func checkFraction(field string, v *float64, minExclusive bool) error {
	if v == nil {
		return nil
	}
	if !(*v >= 0 && *v <= 1) || (minExclusive && *v == 0) { // also rejects NaN
		lo := "0"
		if minExclusive {
			lo = "above 0"
		}
		return fieldErr(field, "%v is out of range; allowed: %s up to 1", *v, lo)
	}
	return nil
}

// Validate checks every field and cross-reference.
func (c *Config) Validate() error {
	switch c.CgroupVersion {
	case "auto", "1", "2":
	default:
		return fieldErr("cgroupVersion", "%q is not allowed; allowed: auto, 1, 2", string(c.CgroupVersion))
	}
	if c.CgroupRoot == "" || !strings.HasPrefix(c.CgroupRoot, "/") {
		return fieldErr("cgroupRoot", "%q must be an absolute path", c.CgroupRoot)
	}
	if !(c.MaxProtectionFraction > 0 && c.MaxProtectionFraction < 1) {
		return fieldErr("maxProtectionFraction", "%v is out of range; allowed: above 0 and below 1", c.MaxProtectionFraction)
	}
	if !(c.NodeProtectionFraction > 0 && c.NodeProtectionFraction <= 1) {
		return fieldErr("nodeProtectionFraction", "%v is out of range; allowed: above 0 up to 1", c.NodeProtectionFraction)
	}
	if q := c.NodeAllocatable; q != nil {
		if b, err := q.Bytes(); err != nil || b <= 0 {
			return fieldErr("nodeAllocatable", "%q is not allowed; allowed: a positive memory quantity up to 8Ei", string(*q))
		}
	}
	for _, k := range c.AllowedOverrides {
		if !slices.Contains(OverrideKeys, k) {
			return fieldErr("allowedOverrides", "%q is not a known key; allowed: %s", k, strings.Join(OverrideKeys, ", "))
		}
	}
	for _, name := range c.ClassNames() {
		if name == ClassNone || !nameRE.MatchString(name) {
			return fieldErr("classes", "%q is not a valid class name (lowercase letters, digits and '-'; %q is reserved)", name, ClassNone)
		}
		if c.Classes[name] == nil {
			return fieldErr("classes."+name, "class is empty; give at least one field or {}")
		}
		if err := c.Classes[name].validate("classes." + name); err != nil {
			return err
		}
	}
	if c.DefaultClass != "" {
		if err := c.checkClassRef("defaultClass", c.DefaultClass); err != nil {
			return err
		}
		if cl := c.Classes[c.DefaultClass]; cl != nil && len(cl.Namespaces) > 0 {
			return fieldErr("defaultClass", "class %q is restricted to namespaces %s; allowed: a class open to every namespace",
				c.DefaultClass, strings.Join(cl.Namespaces, ", "))
		}
	}
	for ns, name := range c.NamespaceClasses {
		if err := c.checkClassRef("namespaceClasses."+ns, name); err != nil {
			return err
		}
		if cl := c.Classes[name]; cl != nil && len(cl.Namespaces) > 0 && !slices.Contains(cl.Namespaces, ns) {
			return fieldErr("namespaceClasses."+ns, "class %q is not allowed in namespace %q; allowed: a class open to it", name, ns)
		}
	}
	if err := c.Reconciler.validate(); err != nil {
		return err
	}
	for k, cl := range c.Koordinator.Classes {
		switch k {
		case "LSE", "LSR", "LS", "BE", "SYSTEM":
		default:
			return fieldErr("koordinator.classes", "%q is not a Koordinator QoS class; allowed: LSE, LSR, LS, BE, SYSTEM", k)
		}
		if err := c.checkClassRef("koordinator.classes."+k, cl); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) checkClassRef(field, name string) error {
	if name == ClassNone {
		return nil
	}
	if _, ok := c.Classes[name]; !ok {
		return fieldErr(field, "class %q is not defined; defined: %s", name, strings.Join(c.ClassNames(), ", "))
	}
	return nil
}

func (cl *Class) validate(field string) error {
	if err := checkFraction(field+".min", cl.Min, false); err != nil {
		return err
	}
	if err := checkFraction(field+".low", cl.Low, false); err != nil {
		return err
	}
	if cl.Min != nil && cl.Low != nil && *cl.Low < *cl.Min {
		return fieldErr(field+".low", "%v is below min %v; memory.low below memory.min protects nothing more", *cl.Low, *cl.Min)
	}
	if err := checkFraction(field+".throttlingFactor", cl.ThrottlingFactor, true); err != nil {
		return err
	}
	if _, err := ParseSwap(cl.Swap); err != nil {
		return fieldErr(field+".swap", "%v", err)
	}
	if s := cl.Swappiness; s != nil && (*s < 0 || *s > 100) {
		return fieldErr(field+".swappiness", "%d is out of range; allowed: 0 to 100", *s)
	}
	if q := cl.DefaultLimit; q != nil {
		if b, err := q.Bytes(); err != nil || b < 4096 {
			return fieldErr(field+".defaultLimit", "%q is not allowed; allowed: a memory quantity from 4Ki up to 8Ei", string(*q))
		}
	}
	if r := cl.Reclaim; r != nil && (r.HighWatermark != 0 || r.LowWatermark != 0) {
		if !(r.HighWatermark > 0 && r.HighWatermark <= 1) {
			return fieldErr(field+".reclaim.highWatermark", "%v is out of range; allowed: above 0 up to 1", r.HighWatermark)
		}
		if !(r.LowWatermark > 0 && r.LowWatermark < r.HighWatermark) {
			return fieldErr(field+".reclaim.lowWatermark", "%v is out of range; allowed: above 0 and below highWatermark %v", r.LowWatermark, r.HighWatermark)
		}
	}
	for _, ns := range cl.Namespaces {
		if !nameRE.MatchString(ns) {
			return fieldErr(field+".namespaces", "%q is not a valid namespace name", ns)
		}
	}
	return nil
}

func (r *Reconciler) validate() error {
	if r.Interval.Duration < 10*time.Millisecond {
		return fieldErr("reconciler.interval", "%v is too short; allowed: 10ms or more", r.Interval.Duration)
	}
	if r.DriftInterval.Duration < r.Interval.Duration {
		return fieldErr("reconciler.driftInterval", "%v is shorter than the interval; allowed: %v or more", r.DriftInterval.Duration, r.Interval.Duration)
	}
	for field, q := range map[string]Quantity{
		"reconciler.maxReclaimPerTick": r.MaxReclaimPerTick, "reconciler.nodePressure.maxReclaimPerTick": r.NodePressure.MaxReclaimPerTick,
	} {
		if b, err := q.Bytes(); err != nil || b < 4096 {
			return fieldErr(field, "%q is not allowed; allowed: a memory quantity from 4Ki up to 8Ei", string(q))
		}
	}
	np := r.NodePressure
	if !(np.LowFraction >= 0 && np.LowFraction < 1) {
		return fieldErr("reconciler.nodePressure.lowFraction", "%v is out of range; allowed: 0 (off) up to below 1", np.LowFraction)
	}
	if !(np.HighFraction >= np.LowFraction && np.HighFraction < 1) {
		return fieldErr("reconciler.nodePressure.highFraction", "%v is out of range; allowed: lowFraction %v up to below 1", np.HighFraction, np.LowFraction)
	}
	g := r.Guard
	if !(g.StallPressure > 0 && g.StallPressure <= 100) {
		return fieldErr("reconciler.guard.stallPressure", "%v is out of range; allowed: above 0 up to 100", g.StallPressure)
	}
	if !(g.ReleasePressure >= 0 && g.ReleasePressure < g.StallPressure) {
		return fieldErr("reconciler.guard.releasePressure", "%v is out of range; allowed: 0 up to below stallPressure %v", g.ReleasePressure, g.StallPressure)
	}
	if g.StallFor.Duration < 0 || g.ReleaseFor.Duration < 0 {
		return fieldErr("reconciler.guard", "stallFor and releaseFor must not be negative")
	}
	if !(g.Step > 0 && g.Step <= 1) {
		return fieldErr("reconciler.guard.step", "%v is out of range; allowed: above 0 up to 1", g.Step)
	}
	pr := r.Proactive
	if !(pr.TargetPressure >= 0 && pr.TargetPressure <= 100) {
		return fieldErr("reconciler.proactive.targetPressure", "%v is out of range; allowed: 0 to 100", pr.TargetPressure)
	}
	if !(pr.Fraction > 0 && pr.Fraction <= 1) {
		return fieldErr("reconciler.proactive.fraction", "%v is out of range; allowed: above 0 up to 1", pr.Fraction)
	}
	if pr.Interval.Duration < r.Interval.Duration {
		return fieldErr("reconciler.proactive.interval", "%v is shorter than the interval; allowed: %v or more", pr.Interval.Duration, r.Interval.Duration)
	}
	return nil
}

// Quantity is a memory quantity in the configuration ("256Mi", "1G" or a
// plain number of bytes), checked by Validate.
type Quantity string

// UnmarshalJSON accepts a string or a number.
func (q *Quantity) UnmarshalJSON(b []byte) error {
	*q = Quantity(strings.Trim(string(bytes.TrimSpace(b)), `"`))
	return nil
}

// Bytes is the quantity in bytes.
func (q Quantity) Bytes() (int64, error) { return ParseBytes(string(q)) }

// quantityRE is the syntax of a Kubernetes quantity with at most two
// exponent digits: longer exponents (1e99999999) make the quantity parser
// spin for seconds, and anything past e18 is out of range anyway.
var quantityRE = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,2}|[KMGTPE]i|[mkMGTPE]|[nu])?$`)

// ParseBytes parses a Kubernetes memory quantity ("256Mi", "1G") into bytes.
// Negative values and values above 8Ei (int64) are errors; fractional bytes
// round up.
func ParseBytes(s string) (int64, error) {
	if len(s) > 64 || !quantityRE.MatchString(s) {
		return 0, fmt.Errorf("not a quantity")
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("not a quantity")
	}
	if q.Sign() < 0 {
		return 0, fmt.Errorf("negative")
	}
	if q.Cmp(*maxBytes) > 0 {
		return 0, fmt.Errorf("too large")
	}
	return q.Value(), nil
}

var maxBytes = resource.NewQuantity(math.MaxInt64, resource.BinarySI)

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
