package explain

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/policy"
)

// WriteJSON writes the report as indented JSON. Every field is always
// present (null or empty when it does not apply); maps are sorted by key.
func WriteJSON(w io.Writer, r *Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// v2Order is the order the unified files are shown in.
var v2Order = []string{cgroupfs.FileMin, cgroupfs.FileLow, cgroupfs.FileHigh, cgroupfs.FileSwapMax, cgroupfs.FileOOMGroup}

// byteFiles hold byte counts (shown with a binary unit too).
var byteFiles = map[string]bool{cgroupfs.FileMin: true, cgroupfs.FileLow: true, cgroupfs.FileHigh: true, cgroupfs.FileSwapMax: true}

// WriteText writes the report as one aligned table per container.
func WriteText(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	qos := "off"
	if r.KubeletMemoryQoS {
		qos = "on"
		if r.KubeletReservation != "" {
			qos += ", memoryReservationPolicy " + r.KubeletReservation
		}
	}
	fmt.Fprintf(tw, "node: MemTotal %s, page size %d, allocatable %s, kubelet MemoryQoS %s\n",
		human(r.Node.MemTotal), r.Node.PageSize, human(r.Node.Allocatable), qos)
	if r.Node.PromisedMin > 0 {
		fmt.Fprintf(tw, "      memory.min promised elsewhere on the node: %s\n", human(r.Node.PromisedMin))
	}
	for _, p := range r.Pods {
		kind := "Pod"
		if p.Input == InputCRI {
			kind = "CRI"
		}
		fmt.Fprintf(tw, "\npod %s/%s (%s, uid %s, cgroup parent %s)\n", p.Namespace, p.Name, kind, orNone(p.UID), orNone(p.CgroupParent))
		for _, n := range p.Notes {
			fmt.Fprintf(tw, "  note: %s\n", n)
		}
		qos := p.QOS + " (pod spec)"
		switch {
		case p.QOS == "":
			qos = "unknown (cgroup parent)"
		case p.Input == InputCRI:
			qos = p.QOS + " (cgroup parent)"
		}
		for _, c := range p.Containers {
			writeContainer(tw, c, qos)
		}
	}
	return tw.Flush()
}

func writeContainer(tw io.Writer, c ContainerResult, qos string) {
	row := func(key, format string, args ...any) {
		fmt.Fprintf(tw, "    %s\t%s\n", key, fmt.Sprintf(format, args...))
	}
	title := "container " + c.Name
	if c.Type != TypeContainer {
		title += " (" + c.Type + ")"
	}
	fmt.Fprintf(tw, "  %s\n", title)

	hasErr := c.V2.Error != nil || c.V1.Error != nil
	switch {
	case c.OptedIn:
		row("class", "%s (%s)", c.Class, c.ClassSource)
	case hasErr:
		row("class", "invalid")
	default:
		row("class", "none: not opted in; the plugin leaves this container alone")
	}
	row("QoS", "%s", qos)
	if c.Spec != nil {
		row("pod spec", "request %s, limit %s", optBytes(c.Spec.MemoryRequest), optBytes(c.Spec.MemoryLimit))
	}
	rt := "limit " + limitText(c.Runtime.MemoryLimit)
	if c.Runtime.OOMScoreAdj != nil {
		rt += fmt.Sprintf(", oom_score_adj %d", *c.Runtime.OOMScoreAdj)
	}
	switch {
	case maps.Equal(c.Runtime.UnifiedV2, c.Runtime.UnifiedV1) && len(c.Runtime.UnifiedV2) > 0:
		rt += ", unified " + kv(c.Runtime.UnifiedV2)
	case !maps.Equal(c.Runtime.UnifiedV2, c.Runtime.UnifiedV1):
		rt += ", unified on v2 " + orNone(kv(c.Runtime.UnifiedV2)) + ", on v1 " + orNone(kv(c.Runtime.UnifiedV1))
	}
	row("runtime gives", "%s", rt)

	if !c.OptedIn && !hasErr {
		writeNotes(row, c.Notes)
		return
	}
	v2, v1 := c.V2.Decided, c.V1.Decided
	if hasErr && errMsg(v2.Error) == errMsg(v1.Error) {
		row("error", "%s", v2.Error.Message)
		writeNotes(row, c.Notes)
		return
	}
	both := v2.Error == nil && v1.Error == nil
	shared := func(key string, same bool, text func(Decided) string) {
		if both && same {
			row(key, "%s", text(v2))
			return
		}
		if v2.Error == nil {
			row(key+" (v2)", "%s", text(v2))
		}
		if v1.Error == nil {
			row(key+" (v1)", "%s", text(v1))
		}
	}
	shared("request", v2.Request == v1.Request && v2.RequestSource == v1.RequestSource, func(d Decided) string {
		if d.RequestSource == string(policy.RequestUnknown) {
			return human(d.Request) + " (the plugin finds no request)"
		}
		return human(d.Request) + " from " + d.RequestSource
	})
	shared("limit", v2.Limit == v1.Limit && v2.SetLimit == v1.SetLimit, func(d Decided) string {
		if d.SetLimit > 0 {
			return human(d.Limit) + " (set by the plugin: class defaultLimit)"
		}
		return limitText(d.Limit)
	})
	if len(v2.Overridden) > 0 || len(v1.Overridden) > 0 {
		shared("overridden", slices.Equal(v2.Overridden, v1.Overridden), func(d Decided) string {
			return orNone(strings.Join(d.Overridden, ", "))
		})
	}

	if v2.Error != nil {
		row("error (v2)", "%s", v2.Error.Message)
	} else {
		writeV2(row, c.V2)
	}
	if v1.Error != nil {
		row("error (v1)", "%s", v1.Error.Message)
	} else {
		writeV1(row, c.V1)
	}

	if v2.Reclaim != nil || v1.Reclaim != nil {
		shared("reclaim", reclaimText(v2.Reclaim) == reclaimText(v1.Reclaim), func(d Decided) string {
			return reclaimText(d.Reclaim)
		})
	}
	if slices.Equal(v2.Warnings, v1.Warnings) {
		for _, w := range v2.Warnings {
			row("warning", "%s", w)
		}
	} else {
		for _, w := range v2.Warnings {
			row("warning (v2)", "%s", w)
		}
		for _, w := range v1.Warnings {
			row("warning (v1)", "%s", w)
		}
	}
	writeNotes(row, c.Notes)
}

func writeNotes(row func(key, format string, args ...any), notes []string) {
	for _, n := range notes {
		row("note", "%s", n)
	}
}

func writeV2(row func(key, format string, args ...any), v V2Result) {
	if v.SetLimit > 0 {
		row("v2 memory.max", "%s", human(v.SetLimit))
	}
	keys := slices.Collect(maps.Keys(v.Unified))
	slices.SortFunc(keys, func(a, b string) int {
		ia, ib := slices.Index(v2Order, a), slices.Index(v2Order, b)
		if ia < 0 {
			ia = len(v2Order)
		}
		if ib < 0 {
			ib = len(v2Order)
		}
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(a, b)
	})
	for _, k := range keys {
		val := v.Unified[k]
		if b, err := strconv.ParseInt(val, 10, 64); err == nil && byteFiles[k] {
			val = human(b)
		}
		row("v2 "+k, "%s", val)
	}
	if v.SetLimit == 0 && len(keys) == 0 {
		row("v2", "nothing to set")
	}
}

func writeV1(row func(key, format string, args ...any), v V1Result) {
	if v.SetLimit > 0 {
		row("v1 memory.limit_in_bytes", "%s", human(v.SetLimit))
	}
	if v.SoftLimit != nil {
		row("v1 memory.soft_limit_in_bytes", "%s", human(*v.SoftLimit))
	}
	if v.Swappiness != nil {
		row("v1 memory.swappiness", "%d", *v.Swappiness)
	}
	if v.MemSwLimit != nil {
		val := human(*v.MemSwLimit)
		if *v.MemSwLimit < 0 {
			val = "-1 (unlimited)"
		}
		row("v1 memory.memsw.limit_in_bytes", "%s (only where the kernel accounts swap)", val)
	}
	if v.SetLimit == 0 && v.SoftLimit == nil && v.Swappiness == nil && v.MemSwLimit == nil {
		row("v1", "nothing to set")
	}
}

func reclaimText(r *Reclaim) string {
	if r == nil {
		return "none"
	}
	var parts []string
	if r.HighWatermark > 0 {
		parts = append(parts, fmt.Sprintf("background from %v down to %v of min(memory.high, memory.max)", r.HighWatermark, r.LowWatermark))
	} else {
		parts = append(parts, "no background reclaim")
	}
	parts = append(parts, fmt.Sprintf("node-pressure priority %d", r.Priority))
	if r.Proactive {
		parts = append(parts, "proactive")
	}
	if r.ProtectFromLowerPriority {
		var on []string
		if r.PressureThreshold > 0 {
			on = append(on, fmt.Sprintf("pressure %v%%", r.PressureThreshold))
		}
		if r.RefaultThreshold > 0 {
			on = append(on, fmt.Sprintf("%v refaults/s", r.RefaultThreshold))
		}
		if r.StealThreshold > 0 {
			on = append(on, fmt.Sprintf("%v pages/s taken by reclaim", r.StealThreshold))
		}
		parts = append(parts, "lower priorities pay at "+strings.Join(on, " or "))
	}
	return strings.Join(parts, ", ")
}

func errMsg(e *Error) string {
	if e == nil {
		return ""
	}
	return e.Message
}

func kv(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, " ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func optBytes(b *int64) string {
	if b == nil {
		return "none"
	}
	return human(*b)
}

func limitText(b int64) string {
	if b <= 0 {
		return "none"
	}
	return human(b)
}

// human shows bytes with their binary unit: 268435456 (256Mi).
func human(b int64) string {
	s := strconv.FormatInt(b, 10)
	if b < 1024 {
		return s
	}
	units := []string{"Ki", "Mi", "Gi", "Ti", "Pi", "Ei"}
	i, div := 0, int64(1024)
	for i+1 < len(units) && b/div >= 1024 {
		i++
		div *= 1024
	}
	if b%div == 0 {
		return fmt.Sprintf("%s (%d%s)", s, b/div, units[i])
	}
	f := strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", float64(b)/float64(div)), "0"), ".")
	return fmt.Sprintf("%s (%s%s)", s, f, units[i])
}
