package policy_test

import (
	"errors"
	"math"
	"slices"
	"testing"

	"nri-memqos/pkg/config"
	"nri-memqos/pkg/policy"
)

func fuzzConfig(tb testing.TB) *config.Config {
	cfg, err := config.Parse([]byte(`
koordinator:
  enabled: true
allowedOverrides: [memory.min, memory.low, memory.high, memory.swap.max, swappiness]
classes:
  capped:
    min: 1
    low: 1
    throttlingFactor: 0.5
    swap: "0.25"
    swappiness: 10
    oomGroup: true
    defaultLimit: 1Gi
  team:
    low: 0.5
    swap: max
    namespaces: [team-a]
`))
	if err != nil {
		tb.Fatalf("fuzz config: %v", err)
	}
	return cfg
}

var fuzzParents = []string{
	"/kubepods/burstable/pod123",
	"/kubepods/besteffort/pod1",
	"/kubepods/pod1",
	"kubepods-burstable-pod123.slice",
	"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podx.slice",
	"kubepods-podx.slice",
	"/system.slice",
	"",
}

// FuzzDecide checks that Decide never panics and that every decision it
// returns satisfies the documented invariants.
func FuzzDecide(f *testing.F) {
	type seed struct {
		ns, classLabel, classAnn, koord, reqAnn, podReqAnn string
		minOv, lowOv, highOv, swapOv, swappOv              string
		limit                                              int64
		parent                                             uint8
		adj, promised                                      int64
	}
	for _, s := range []seed{
		{ns: "default", classLabel: "burstable", reqAnn: "256Mi", limit: 512 << 20},
		{ns: "default", classLabel: "latency-sensitive", limit: 512 << 20, parent: 2},
		{ns: "default", classLabel: "best-effort", parent: 1},
		{ns: "default", classAnn: "capped", podReqAnn: "1000000", minOv: "5000", lowOv: "100001"},
		{ns: "team-a", classLabel: "team", reqAnn: "85Mi", limit: 100 << 20, swapOv: "max"},
		{ns: "team-b", classLabel: "team"},
		{ns: "default", koord: "LSE", adj: 998, promised: 6 << 30},
		{ns: "default", koord: "SYSTEM"},
		{ns: "default", koord: "XX"},
		{ns: "default", classLabel: "burstable", reqAnn: "256Mi", highOv: "400000001", swappOv: "60", limit: 512 << 20},
		{ns: "default", classLabel: "burstable", reqAnn: "-1Mi"},
		{ns: "default", classLabel: "capped", reqAnn: "2Gi", swapOv: "1Gi", highOv: "1.5Gi"},
		{ns: "default", classLabel: "none", reqAnn: "abc"},
		{ns: "default", classLabel: "latency-sensitive", reqAnn: "0.5", limit: 1, minOv: "1"},
	} {
		f.Add(s.ns, s.classLabel, s.classAnn, s.koord, s.reqAnn, s.podReqAnn, s.minOv, s.lowOv, s.highOv, s.swapOv, s.swappOv, s.limit, s.parent, s.adj, s.promised)
	}
	cfg := fuzzConfig(f)
	f.Fuzz(func(t *testing.T, ns, classLabel, classAnn, koord, reqAnn, podReqAnn, minOv, lowOv, highOv, swapOv, swappOv string, limit int64, parent uint8, adj, promised int64) {
		limit &= math.MaxInt64 // arbitrary limit >= 0
		labels := map[string]string{}
		ann := map[string]string{}
		set := func(m map[string]string, k, v string) {
			if v != "" {
				m[k] = v
			}
		}
		set(labels, policy.LabelClass, classLabel)
		set(labels, policy.LabelKoordinatorQoS, koord)
		set(ann, policy.AnnotationClassPrefix+"app", classAnn)
		set(ann, policy.AnnotationRequestPrefix+"app", reqAnn)
		set(ann, policy.AnnotationRequest, podReqAnn)
		for k, v := range map[string]string{
			config.OverrideMin: minOv, config.OverrideLow: lowOv, config.OverrideHigh: highOv,
			config.OverrideSwapMax: swapOv, config.OverrideSwappiness: swappOv,
		} {
			set(ann, policy.AnnotationPrefix+k+policy.AnnotationOverrideInfix+"app", v)
		}
		p := policy.Pod{Namespace: ns, Name: "web", Labels: labels, Annotations: ann, CgroupParent: fuzzParents[int(parent)%len(fuzzParents)]}
		c := policy.Container{Name: "app", Limit: limit, OOMScoreAdj: &adj}
		n := policy.Node{MemTotal: 8 << 30, PageSize: page, PromisedMin: (promised & math.MaxInt64) % (16 << 30)}

		d, err := policy.Decide(cfg, p, c, n)
		if err != nil {
			var ie *policy.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error %v is %T, want *policy.InputError", err, err)
			}
			if d != nil {
				t.Fatalf("decision returned with error %v", err)
			}
			return
		}
		if d == nil {
			return // not opted in
		}
		checkInvariants(t, d)
	})
}

func checkInvariants(t *testing.T, d *policy.Decision) {
	t.Helper()
	aligned := func(name string, v int64) {
		if v < 0 || v%page != 0 {
			t.Errorf("%s = %d: not a non-negative multiple of %d", name, v, page)
		}
	}
	if d.Request < 0 {
		t.Errorf("Request = %d < 0", d.Request)
	}
	if d.Limit < 0 {
		t.Errorf("Limit = %d < 0", d.Limit)
	}
	if d.Limit > 0 && d.Request > d.Limit {
		t.Errorf("Request %d > Limit %d", d.Request, d.Limit)
	}
	aligned("SetLimit", d.SetLimit)
	if d.SetLimit > 0 && d.Limit != d.SetLimit {
		t.Errorf("SetLimit %d but Limit %d", d.SetLimit, d.Limit)
	}
	if d.Min != nil {
		aligned("Min", *d.Min)
		if d.Limit > 0 && *d.Min >= d.Limit {
			t.Errorf("Min %d not below Limit %d", *d.Min, d.Limit)
		}
	}
	if d.Low != nil {
		aligned("Low", *d.Low)
		if d.Limit > 0 && *d.Low >= d.Limit {
			t.Errorf("Low %d not below Limit %d", *d.Low, d.Limit)
		}
	}
	if d.Min != nil && d.Low != nil && *d.Min > *d.Low {
		t.Errorf("Min %d > Low %d", *d.Min, *d.Low)
	}
	if d.High != nil {
		aligned("High", *d.High)
		if *d.High <= d.Request {
			t.Errorf("High %d not above Request %d", *d.High, d.Request)
		}
		if d.Limit > 0 && *d.High >= d.Limit {
			t.Errorf("High %d not below Limit %d", *d.High, d.Limit)
		}
		for name, v := range map[string]*int64{"Min": d.Min, "Low": d.Low} {
			if v != nil && *d.High <= *v {
				t.Errorf("High %d not above %s %d", *d.High, name, *v)
			}
		}
	}
	if d.Swap != nil && !d.Swap.Max {
		aligned("Swap.Bytes", d.Swap.Bytes)
	}
	if d.Swappiness != nil && (*d.Swappiness < 0 || *d.Swappiness > 100) {
		t.Errorf("Swappiness = %d", *d.Swappiness)
	}
	for _, k := range d.Overridden {
		if !slices.Contains(config.OverrideKeys, k) {
			t.Errorf("Overridden has unknown key %q", k)
		}
	}
	_ = d.UnifiedV2()
	v1 := d.V1()
	// The soft limit is always set: the protection promised (the larger of
	// min and low), 0 when there is none.
	if v, want := v1.SoftLimit, max(d.ProtectedMin(), d.ProtectedLow()); v == nil || *v != want {
		t.Errorf("V1 SoftLimit = %s, want %d (max of memory.min %s and memory.low %s)", fmtPtr(v), want, fmtPtr(d.Min), fmtPtr(d.Low))
	}
	if v := v1.MemSwLimit; v != nil && *v != -1 && *v < d.Limit {
		t.Errorf("V1 MemSwLimit = %d below the limit %d (overflow?)", *v, d.Limit)
	}
}
