package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

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
	if !(c.NodeLowProtectionFraction > 0 && c.NodeLowProtectionFraction <= 1) {
		return fieldErr("nodeLowProtectionFraction", "%v is out of range; allowed: above 0 up to 1", c.NodeLowProtectionFraction)
	}
	if q := c.NodeAllocatable; q != nil {
		if b, err := q.check(); err != nil || b <= 0 {
			return fieldErr("nodeAllocatable", "%q is not allowed; allowed: a positive memory quantity up to 8Ei", q.String())
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
	if err := cl.Swap.err; err != nil {
		return fieldErr(field+".swap", "%v", err)
	}
	if s := cl.Swappiness; s != nil && (*s < 0 || *s > 100) {
		return fieldErr(field+".swappiness", "%d is out of range; allowed: 0 to 100", *s)
	}
	if q := cl.DefaultLimit; q != nil {
		if b, err := q.check(); err != nil || b < 4096 {
			return fieldErr(field+".defaultLimit", "%q is not allowed; allowed: a memory quantity from 4Ki up to 8Ei", q.String())
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
	if r := cl.Reclaim; r != nil {
		if !(r.PressureThreshold >= 0 && r.PressureThreshold <= 100) {
			return fieldErr(field+".reclaim.pressureThreshold", "%v is out of range; allowed: 0 (not a signal) up to 100", r.PressureThreshold)
		}
		if !(r.RefaultThreshold >= 0 && r.RefaultThreshold <= 1e9) {
			return fieldErr(field+".reclaim.refaultThreshold", "%v is out of range; allowed: 0 (not a signal) up to 1e9 refaults per second", r.RefaultThreshold)
		}
		if !(r.StealThreshold >= 0 && r.StealThreshold <= 1e9) {
			return fieldErr(field+".reclaim.stealThreshold", "%v is out of range; allowed: 0 (not a signal) up to 1e9 pages per second", r.StealThreshold)
		}
		if r.ProtectFromLowerPriority && r.PressureThreshold == 0 && r.RefaultThreshold == 0 && r.StealThreshold == 0 {
			return fieldErr(field+".reclaim.protectFromLowerPriority", "needs a signal; allowed: with pressureThreshold, refaultThreshold or stealThreshold above 0")
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
	if a := r.AncestorInterval.Duration; a != 0 && a < 100*time.Millisecond {
		return fieldErr("reconciler.ancestorInterval", "%v is too short; allowed: 0 (only every driftInterval) or 100ms or more", a)
	}
	if r.DriftInterval.Duration < r.Interval.Duration {
		return fieldErr("reconciler.driftInterval", "%v is shorter than the interval; allowed: %v or more", r.DriftInterval.Duration, r.Interval.Duration)
	}
	for field, q := range map[string]Quantity{
		"reconciler.maxReclaimPerTick": r.MaxReclaimPerTick, "reconciler.nodePressure.maxReclaimPerTick": r.NodePressure.MaxReclaimPerTick,
		"reconciler.tiers.maxReclaimPerTick": r.Tiers.MaxReclaimPerTick,
	} {
		if b, err := q.check(); err != nil || b < 4096 {
			return fieldErr(field, "%q is not allowed; allowed: a memory quantity from 4Ki up to 8Ei", q.String())
		}
	}
	np := r.NodePressure
	if !(np.LowFraction >= 0 && np.LowFraction < 1) {
		return fieldErr("reconciler.nodePressure.lowFraction", "%v is out of range; allowed: 0 (off) up to below 1", np.LowFraction)
	}
	if !(np.HighFraction >= np.LowFraction && np.HighFraction < 1) {
		return fieldErr("reconciler.nodePressure.highFraction", "%v is out of range; allowed: lowFraction %v up to below 1", np.HighFraction, np.LowFraction)
	}
	if !(np.PressureThreshold >= 0 && np.PressureThreshold <= 100) {
		return fieldErr("reconciler.nodePressure.pressureThreshold", "%v is out of range; allowed: 0 (off) up to 100", np.PressureThreshold)
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
	return r.Tiers.validate(r.Interval.Duration)
}

func (t *Tiers) validate(interval time.Duration) error {
	if b, err := t.Headroom.check(); err != nil || b < 0 {
		return fieldErr("reconciler.tiers.headroom", "%q is not allowed; allowed: a memory quantity from 0 up to 8Ei", t.Headroom.String())
	}
	if !(t.Step > 0 && t.Step <= 1) {
		return fieldErr("reconciler.tiers.step", "%v is out of range; allowed: above 0 up to 1", t.Step)
	}
	if t.ThrottleAfter.Duration < interval {
		return fieldErr("reconciler.tiers.throttleAfter", "%v is shorter than the interval; allowed: %v or more", t.ThrottleAfter.Duration, interval)
	}
	if t.CalmFor.Duration < interval {
		return fieldErr("reconciler.tiers.calmFor", "%v is shorter than the interval; allowed: %v or more", t.CalmFor.Duration, interval)
	}
	return nil
}
