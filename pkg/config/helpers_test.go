package config

import (
	"fmt"
	"strings"
)

func f64(v float64) *float64 { return &v }

func intp(v int) *int { return &v }

func qty(s string) *Quantity {
	q := ParseQuantity(s)
	return &q
}

// dump renders a config for failure messages, dereferencing the pointers that
// %+v would print as addresses.
func dump(c *Config) string {
	if c == nil {
		return "<nil>"
	}
	var b strings.Builder
	b.WriteString("{")
	b.WriteString("cgroupVersion=" + string(c.CgroupVersion))
	b.WriteString(" cgroupRoot=" + c.CgroupRoot)
	b.WriteString(" defaultClass=" + c.DefaultClass)
	b.WriteString(" namespaceClasses=" + fmtAny(c.NamespaceClasses))
	b.WriteString(" koordinator=" + fmtAny(c.Koordinator))
	b.WriteString(" maxProtectionFraction=" + fmtAny(c.MaxProtectionFraction))
	b.WriteString(" nodeProtectionFraction=" + fmtAny(c.NodeProtectionFraction))
	if c.NodeAllocatable != nil {
		b.WriteString(" nodeAllocatable=" + c.NodeAllocatable.String())
	}
	b.WriteString(" allowedOverrides=" + fmtAny(c.AllowedOverrides))
	b.WriteString(" classes={")
	for _, n := range c.ClassNames() {
		b.WriteString(" " + n + ":" + dumpClass(c.Classes[n]))
	}
	b.WriteString("}}")
	return b.String()
}

func dumpClass(cl *Class) string {
	if cl == nil {
		return "<nil>"
	}
	var parts []string
	if cl.Min != nil {
		parts = append(parts, "min="+fmtAny(*cl.Min))
	}
	if cl.Low != nil {
		parts = append(parts, "low="+fmtAny(*cl.Low))
	}
	if cl.ThrottlingFactor != nil {
		parts = append(parts, "throttlingFactor="+fmtAny(*cl.ThrottlingFactor))
	}
	if sw := cl.Swap.String(); sw != "" {
		parts = append(parts, "swap="+sw)
	}
	if cl.Swappiness != nil {
		parts = append(parts, "swappiness="+fmtAny(*cl.Swappiness))
	}
	if cl.OOMGroup {
		parts = append(parts, "oomGroup")
	}
	if cl.DefaultLimit != nil {
		parts = append(parts, "defaultLimit="+cl.DefaultLimit.String())
	}
	if cl.Reclaim != nil {
		parts = append(parts, "reclaim="+fmtAny(*cl.Reclaim))
	}
	if cl.Namespaces != nil {
		parts = append(parts, "namespaces="+fmtAny(cl.Namespaces))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func fmtAny(v any) string { return fmt.Sprintf("%+v", v) }
