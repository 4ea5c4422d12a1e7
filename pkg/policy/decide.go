package policy

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"nri-memqos/pkg/config"
)

// Swap is a decided swap allowance: Max means unlimited, else Bytes.
type Swap struct {
	Max   bool
	Bytes int64
}

// Decision is everything the plugin will set for one container. Nil
// pointers mean "not set by the plugin": the runtime's (kubelet's) value stays.
type Decision struct {
	Class         string
	ClassSource   ClassSource
	QOS           QOSClass
	Request       int64
	RequestSource RequestSource
	// Limit is the limit in force after the decision (0 = none).
	Limit int64
	// SetLimit is non-zero when the plugin sets the limit (class defaultLimit).
	SetLimit   int64
	Min        *int64
	Low        *int64
	High       *int64
	Swap       *Swap
	Swappiness *int64
	OOMGroup   bool
	Reclaim    *config.Reclaim
	// Overridden lists the keys set by per-container override annotations.
	Overridden []string
	// Warnings are logged; they never fail the container.
	Warnings []string
}

// Decide computes the decision for one container. It returns nil, nil when
// the container is not opted in.
func Decide(cfg *config.Config, p Pod, c Container, n Node) (*Decision, error) {
	className, classSrc, err := SelectClass(cfg, p, c)
	if err != nil || className == "" {
		return nil, err
	}
	cl := cfg.Classes[className]
	d := &Decision{Class: className, ClassSource: classSrc, QOS: KubeQOS(p.CgroupParent), Limit: c.Limit, OOMGroup: cl.OOMGroup}
	if cl.Reclaim != nil {
		r := *cl.Reclaim
		d.Reclaim = &r
	}
	page := n.pageSize()

	if d.Limit == 0 && cl.DefaultLimit != nil {
		d.SetLimit = alignDown(cl.DefaultLimit.Bytes(), page)
		d.Limit = d.SetLimit
	}

	alloc := Allocatable(cfg, n)
	d.Request, d.RequestSource, err = ResolveRequest(cfg, p, c, d.QOS, n)
	if err != nil {
		return nil, err
	}
	if d.Limit > 0 && d.Request > d.Limit {
		d.Request = d.Limit // a class defaultLimit below the request
	}

	if cl.Min != nil {
		d.Min = ptr(alignDown(int64(*cl.Min*float64(d.Request)), page))
	}
	if cl.Low != nil {
		d.Low = ptr(alignDown(int64(*cl.Low*float64(d.Request)), page))
	}
	if cl.ThrottlingFactor != nil {
		d.High = memoryHigh(d.Request, d.Limit, alloc, *cl.ThrottlingFactor, page)
	}
	switch swap := cl.Swap; swap.Mode {
	case config.SwapNone:
		d.Swap = &Swap{}
	case config.SwapMax:
		d.Swap = &Swap{Max: true}
	case config.SwapFraction:
		base := d.Limit
		if base == 0 {
			base = alloc
		}
		d.Swap = &Swap{Bytes: alignDown(int64(swap.Fraction*float64(base)), page)}
	}
	if cl.Swappiness != nil {
		d.Swappiness = ptr(int64(*cl.Swappiness))
	}

	if err := applyOverrides(cfg, p, c, n, alloc, d); err != nil {
		return nil, err
	}
	enforceInvariants(cfg, n, alloc, d)
	return d, nil
}

// Allocatable is the node memory the memory.high formula and a swap
// fraction use for containers without a limit: the configuration's
// nodeAllocatable, else MemTotal.
func Allocatable(cfg *config.Config, n Node) int64 {
	if q := cfg.NodeAllocatable; q != nil {
		return q.Bytes()
	}
	return n.MemTotal
}

// memoryHigh is Kubernetes' KEP-2570 formula (v1.27+):
// floor((request + factor*(limit-request)) / page) * page, with node
// allocatable standing in for a missing limit. It returns nil when the result
// would not lie above the request (it would throttle the container below
// what it asked for) or not below the limit (it would do nothing).
func memoryHigh(request, limit, allocatable int64, factor float64, page int64) *int64 {
	ceiling := limit
	if ceiling == 0 {
		ceiling = allocatable
	}
	if ceiling <= 0 || ceiling <= request {
		return nil
	}
	h := alignDown(int64(math.Floor(float64(request)+factor*float64(ceiling-request))), page)
	if h <= request || (limit > 0 && h >= limit) {
		return nil
	}
	return &h
}

func applyOverrides(cfg *config.Config, p Pod, c Container, n Node, alloc int64, d *Decision) error {
	for _, key := range config.OverrideKeys {
		ann := AnnotationPrefix + key + AnnotationOverrideInfix + c.Name
		v, ok := p.Annotations[ann]
		if !ok {
			continue
		}
		bad := func(reason, allowed string) error {
			return inputErr(p, c, "annotation "+ann, v, reason, allowed)
		}
		if !cfg.OverrideAllowed(key) {
			allowed := "none"
			if len(cfg.AllowedOverrides) > 0 {
				allowed = strings.Join(cfg.AllowedOverrides, ", ")
			}
			return bad("key not allowed by the node's allowedOverrides", "overrides of "+allowed)
		}
		switch key {
		case config.OverrideMin, config.OverrideLow:
			b, err := parseBytes(v)
			if err != nil {
				return bad(err.Error(), quantityAllowed)
			}
			if b > d.Request {
				return bad(fmt.Sprintf("above the container's memory request %d", d.Request),
					fmt.Sprintf("0 to %d (the request)", d.Request))
			}
			if key == config.OverrideMin {
				d.Min = ptr(alignDown(b, n.pageSize()))
			} else {
				d.Low = ptr(alignDown(b, n.pageSize()))
			}
		case config.OverrideHigh:
			b, err := parseBytes(v)
			if err != nil {
				return bad(err.Error(), quantityAllowed)
			}
			ceiling := d.Limit
			if ceiling == 0 {
				ceiling = alloc
			}
			if b <= d.Request || b > ceiling {
				return bad("out of range", fmt.Sprintf("above the request %d up to %d", d.Request, ceiling))
			}
			d.High = ptr(alignDown(b, n.pageSize()))
		case config.OverrideSwapMax:
			if v == "max" {
				d.Swap = &Swap{Max: true}
				break
			}
			b, err := parseBytes(v)
			if err != nil {
				return bad(err.Error(), "max or "+quantityAllowed)
			}
			d.Swap = &Swap{Bytes: alignDown(b, n.pageSize())}
		case config.OverrideSwappiness:
			s, err := strconv.ParseInt(v, 10, 64)
			if err != nil || s < 0 || s > 100 {
				return bad("not a swappiness", "an integer from 0 to 100")
			}
			d.Swappiness = &s
		}
		d.Overridden = append(d.Overridden, key)
	}
	return nil
}

// enforceInvariants makes every decision satisfy min <= low <= high <= max,
// min and low strictly below the limit (else below the node's allocatable
// memory) and never above MemTotal, and the node-wide caps on memory.min
// and memory.low.
func enforceInvariants(cfg *config.Config, n Node, alloc int64, d *Decision) {
	page := n.pageSize()
	base := d.Limit
	if base <= 0 {
		base = alloc
	}
	if base > 0 {
		maxProt := alignDown(int64(cfg.MaxProtectionFraction*float64(base)), page)
		if n.MemTotal > 0 {
			maxProt = min(maxProt, alignDown(n.MemTotal, page))
		}
		for _, v := range []*int64{d.Min, d.Low} {
			if v != nil && *v > maxProt {
				*v = maxProt
			}
		}
	}
	if d.Min != nil && d.Low != nil && *d.Low < *d.Min {
		*d.Low = *d.Min
	}
	if d.High != nil {
		floor := d.Request
		for _, v := range []*int64{d.Min, d.Low} {
			if v != nil && *v > floor {
				floor = *v
			}
		}
		if *d.High <= floor || (d.Limit > 0 && *d.High >= d.Limit) {
			d.High = nil
		}
	}
	if n.MemTotal <= 0 {
		return
	}
	if d.Min != nil && *d.Min > 0 {
		nodeCap := int64(cfg.NodeProtectionFraction * float64(n.MemTotal))
		if SatAdd(n.PromisedMin, *d.Min) > nodeCap {
			d.Warnings = append(d.Warnings, fmt.Sprintf(
				"node protection cap reached: %d bytes of memory.min already promised, %d more would exceed %d (nodeProtectionFraction %v of %d); container gets no protection",
				n.PromisedMin, *d.Min, nodeCap, cfg.NodeProtectionFraction, n.MemTotal))
			// Explicit zeros: a value promised before (a reload, a
			// resize) must be taken back, not left in the cgroup.
			d.Min = ptr(int64(0))
			if d.Low != nil {
				d.Low = ptr(int64(0))
			}
		}
	}
	if d.Low != nil && *d.Low > 0 {
		lowCap := int64(cfg.NodeLowProtectionFraction * float64(n.MemTotal))
		if SatAdd(n.PromisedLow, *d.Low) > lowCap {
			d.Warnings = append(d.Warnings, fmt.Sprintf(
				"node memory.low cap reached: %d bytes of memory.low already promised, %d more would exceed %d (nodeLowProtectionFraction %v of %d); container gets no memory.low",
				n.PromisedLow, *d.Low, lowCap, cfg.NodeLowProtectionFraction, n.MemTotal))
			d.Low = ptr(int64(0))
		}
	}
}

// SatAdd adds two non-negative values, saturating at math.MaxInt64 instead
// of wrapping.
func SatAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// ProtectedMin is the memory.min this decision promises (0 if none).
func (d *Decision) ProtectedMin() int64 {
	if d == nil || d.Min == nil {
		return 0
	}
	return *d.Min
}

// ProtectedLow is the memory.low this decision promises (0 if none).
func (d *Decision) ProtectedLow() int64 {
	if d == nil || d.Low == nil {
		return 0
	}
	return *d.Low
}

func alignDown(v, page int64) int64 {
	if v <= 0 {
		return 0
	}
	return v - v%page
}

func ptr[T any](v T) *T { return &v }
