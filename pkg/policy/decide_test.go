package policy_test

import (
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"nri-memqos/pkg/config"
	"nri-memqos/pkg/policy"
)

// want describes an expected decision. Every field is compared.
type want struct {
	Request    int64
	ReqSrc     policy.RequestSource
	Limit      int64
	SetLimit   int64
	Min        *int64
	Low        *int64
	High       *int64
	Swap       *policy.Swap
	Swappiness *int64
	OOMGroup   bool
	Unified    map[string]string
	V1         policy.V1Values
	// Overridden is compared as a set; nil means none.
	Overridden []string
	// Warnings is the exact number of warnings.
	Warnings int
}

func fmtSwap(s *policy.Swap) string {
	if s == nil {
		return "nil"
	}
	if s.Max {
		return "max"
	}
	return fmtPtr(&s.Bytes)
}

func checkDecision(t *testing.T, d *policy.Decision, w want) {
	t.Helper()
	if d == nil {
		t.Fatal("Decide returned nil decision")
	}
	if d.Request != w.Request {
		t.Errorf("Request = %d, want %d", d.Request, w.Request)
	}
	if w.ReqSrc != "" && d.RequestSource != w.ReqSrc {
		t.Errorf("RequestSource = %q, want %q", d.RequestSource, w.ReqSrc)
	}
	if d.Limit != w.Limit {
		t.Errorf("Limit = %d, want %d", d.Limit, w.Limit)
	}
	if d.SetLimit != w.SetLimit {
		t.Errorf("SetLimit = %d, want %d", d.SetLimit, w.SetLimit)
	}
	if !eqPtr(d.Min, w.Min) {
		t.Errorf("Min = %s, want %s", fmtPtr(d.Min), fmtPtr(w.Min))
	}
	if !eqPtr(d.Low, w.Low) {
		t.Errorf("Low = %s, want %s", fmtPtr(d.Low), fmtPtr(w.Low))
	}
	if !eqPtr(d.High, w.High) {
		t.Errorf("High = %s, want %s", fmtPtr(d.High), fmtPtr(w.High))
	}
	if (d.Swap == nil) != (w.Swap == nil) || (d.Swap != nil && *d.Swap != *w.Swap) {
		t.Errorf("Swap = %s, want %s", fmtSwap(d.Swap), fmtSwap(w.Swap))
	}
	if !eqPtr(d.Swappiness, w.Swappiness) {
		t.Errorf("Swappiness = %s, want %s", fmtPtr(d.Swappiness), fmtPtr(w.Swappiness))
	}
	if d.OOMGroup != w.OOMGroup {
		t.Errorf("OOMGroup = %v, want %v", d.OOMGroup, w.OOMGroup)
	}
	wu := w.Unified
	if wu == nil {
		wu = map[string]string{}
	}
	if got := d.UnifiedV2(); !reflect.DeepEqual(got, wu) {
		t.Errorf("UnifiedV2 = %v, want %v", got, wu)
	}
	v1 := d.V1()
	if !eqPtr(v1.SoftLimit, w.V1.SoftLimit) || !eqPtr(v1.Swappiness, w.V1.Swappiness) || !eqPtr(v1.MemSwLimit, w.V1.MemSwLimit) {
		t.Errorf("V1 = {SoftLimit:%s Swappiness:%s MemSwLimit:%s}, want {SoftLimit:%s Swappiness:%s MemSwLimit:%s}",
			fmtPtr(v1.SoftLimit), fmtPtr(v1.Swappiness), fmtPtr(v1.MemSwLimit),
			fmtPtr(w.V1.SoftLimit), fmtPtr(w.V1.Swappiness), fmtPtr(w.V1.MemSwLimit))
	}
	gotO := slices.Clone(d.Overridden)
	wantO := slices.Clone(w.Overridden)
	slices.Sort(gotO)
	slices.Sort(wantO)
	if !slices.Equal(gotO, wantO) {
		t.Errorf("Overridden = %v, want %v", d.Overridden, w.Overridden)
	}
	if len(d.Warnings) != w.Warnings {
		t.Errorf("Warnings = %q, want %d warning(s)", d.Warnings, w.Warnings)
	}
}

// in describes one Decide call.
type in struct {
	cfg    func() *config.Config
	class  string            // pod label memqos.nri.io/class, "" for none
	ann    map[string]string // pod annotations
	parent string            // cgroup parent, default burstable
	limit  int64
	adj    *int64      // container oom_score_adj
	node   policy.Node // zero MemTotal means 8Gi
}

var node8G = policy.Node{MemTotal: 8 * Gi, PageSize: page}

func run(t *testing.T, i in) (*policy.Decision, error) {
	t.Helper()
	cfg := config.Default
	if i.cfg != nil {
		cfg = i.cfg
	}
	c := mustValidate(t, cfg())
	labels := map[string]string{}
	if i.class != "" {
		labels[policy.LabelClass] = i.class
	}
	parent := i.parent
	if parent == "" {
		parent = parentBurstable
	}
	n := i.node
	if n.MemTotal == 0 {
		n.MemTotal = 8 * Gi
	}
	p := policy.Pod{Namespace: "default", Name: "web", UID: "123", Labels: labels, Annotations: i.ann, CgroupParent: parent}
	return policy.Decide(c, p, policy.Container{Name: "app", Limit: i.limit, OOMScoreAdj: i.adj}, n)
}

// swap parses a class swap setting.
func swap(s string) config.SwapPolicy {
	p, err := config.ParseSwap(s)
	if err != nil {
		panic(err)
	}
	return p
}

func req(v string) map[string]string {
	return map[string]string{policy.AnnotationRequestPrefix + "app": v}
}

// withClass returns a config maker: defaults plus the given classes.
func withClass(classes map[string]*config.Class, mutate ...func(*config.Config)) func() *config.Config {
	return func() *config.Config {
		c := config.Default()
		for n, cl := range classes {
			c.Classes[n] = cl
		}
		for _, m := range mutate {
			m(c)
		}
		return c
	}
}

func allowAll(c *config.Config) { c.AllowedOverrides = slices.Clone(config.OverrideKeys) }

func qty(s string) *config.Quantity {
	q := config.ParseQuantity(s)
	return &q
}

func TestDecideNotOptedIn(t *testing.T) {
	d, err := run(t, in{ann: req("256Mi"), limit: 512 * Mi})
	if d != nil || err != nil {
		t.Errorf("Decide without class = (%+v, %v), want (nil, nil)", d, err)
	}
	d, err = run(t, in{class: "none", ann: req("256Mi"), limit: 512 * Mi})
	if d != nil || err != nil {
		t.Errorf("Decide with class none = (%+v, %v), want (nil, nil)", d, err)
	}
	d, err = run(t, in{class: "gold"})
	if d != nil || err == nil {
		t.Fatalf("Decide with unknown class = (%+v, %v), want error", d, err)
	}
	checkInputError(t, err)
	d, err = run(t, in{class: "burstable", ann: req("1Gi"), limit: 512 * Mi})
	if d != nil || err == nil {
		t.Fatalf("Decide with request above limit = (%+v, %v), want error", d, err)
	}
	checkInputError(t, err)
}

func TestDecideBuiltinClasses(t *testing.T) {
	// request 256Mi, limit 512Mi, page 4096, MemTotal 8Gi.
	const (
		req256      = 256 * Mi          // 268435456
		maxProt512  = int64(483180544)  // alignDown(0.9*512Mi)
		burstHigh   = int64(510025728)  // floor((256Mi + 0.9*256Mi)/4096)*4096
		beHigh      = int64(483180544)  // floor((256Mi + 0.8*256Mi)/4096)*4096
		beHighNoLim = int64(6871945216) // floor(0.8*8Gi/4096)*4096
		bHighNoLim  = int64(7730937856) // floor(0.9*8Gi/4096)*4096
		memsw512    = 512 * Mi          // limit + 0 swap
	)
	tests := []struct {
		name        string
		in          in
		want        want
		wantReclaim config.Reclaim
	}{
		{
			name: "latency-sensitive",
			in:   in{class: "latency-sensitive", ann: req("256Mi"), limit: 512 * Mi},
			want: want{
				Request: req256, ReqSrc: policy.RequestFromContainerAnnotation, Limit: 512 * Mi,
				Min: i64(req256), Swap: &policy.Swap{}, Swappiness: i64(0),
				Unified: map[string]string{"memory.min": "268435456", "memory.swap.max": "0"},
				V1:      policy.V1Values{SoftLimit: i64(req256), Swappiness: i64(0), MemSwLimit: i64(memsw512)},
			},
			wantReclaim: config.Reclaim{HighWatermark: 0.95, LowWatermark: 0.9, Priority: 100, ProtectFromLowerPriority: true, PressureThreshold: 5, RefaultThreshold: 1000, StealThreshold: 256},
		},
		{
			name: "burstable",
			in:   in{class: "burstable", ann: req("256Mi"), limit: 512 * Mi},
			want: want{
				Request: req256, Limit: 512 * Mi,
				Low: i64(req256), High: i64(burstHigh),
				Unified: map[string]string{"memory.low": "268435456", "memory.high": "510025728"},
				V1:      policy.V1Values{SoftLimit: i64(req256)},
			},
			wantReclaim: config.Reclaim{HighWatermark: 0.9, LowWatermark: 0.8, Priority: 50},
		},
		{
			name: "best-effort",
			in:   in{class: "best-effort", ann: req("256Mi"), limit: 512 * Mi},
			want: want{
				Request: req256, Limit: 512 * Mi,
				High: i64(beHigh), OOMGroup: true,
				Unified: map[string]string{"memory.high": "483180544", "memory.oom.group": "1"},
				V1:      policy.V1Values{SoftLimit: i64(0)},
			},
			wantReclaim: config.Reclaim{HighWatermark: 0.85, LowWatermark: 0.7, Priority: 0},
		},
		{
			name: "best-effort request 0 no limit: high from node allocatable",
			in:   in{class: "best-effort", parent: parentBestEffort},
			want: want{
				Request: 0, ReqSrc: policy.RequestUnknown,
				High: i64(beHighNoLim), OOMGroup: true,
				Unified: map[string]string{"memory.high": "6871945216", "memory.oom.group": "1"},
				V1:      policy.V1Values{SoftLimit: i64(0)},
			},
			wantReclaim: config.Reclaim{HighWatermark: 0.85, LowWatermark: 0.7, Priority: 0},
		},
		{
			name: "burstable request 0 no limit",
			in:   in{class: "burstable"},
			want: want{
				Request: 0, ReqSrc: policy.RequestUnknown,
				Low: i64(0), High: i64(bHighNoLim),
				Unified: map[string]string{"memory.low": "0", "memory.high": "7730937856"},
				V1:      policy.V1Values{SoftLimit: i64(0)},
			},
			wantReclaim: config.Reclaim{HighWatermark: 0.9, LowWatermark: 0.8, Priority: 50},
		},
		{
			name: "latency-sensitive without limit",
			in:   in{class: "latency-sensitive", ann: req("256Mi")},
			want: want{
				Request: req256, Min: i64(req256), Swap: &policy.Swap{}, Swappiness: i64(0),
				Unified: map[string]string{"memory.min": "268435456", "memory.swap.max": "0"},
				V1:      policy.V1Values{SoftLimit: i64(req256), Swappiness: i64(0)},
			},
			wantReclaim: config.Reclaim{HighWatermark: 0.95, LowWatermark: 0.9, Priority: 100, ProtectFromLowerPriority: true, PressureThreshold: 5, RefaultThreshold: 1000, StealThreshold: 256},
		},
		{
			name: "latency-sensitive guaranteed: request == limit, min capped below limit",
			in:   in{class: "latency-sensitive", parent: parentGuaranteed, limit: 512 * Mi},
			want: want{
				Request: 512 * Mi, ReqSrc: policy.RequestFromGuaranteedLimit, Limit: 512 * Mi,
				Min: i64(maxProt512), Swap: &policy.Swap{}, Swappiness: i64(0),
				Unified: map[string]string{"memory.min": "483180544", "memory.swap.max": "0"},
				V1:      policy.V1Values{SoftLimit: i64(maxProt512), Swappiness: i64(0), MemSwLimit: i64(512 * Mi)},
			},
			wantReclaim: config.Reclaim{HighWatermark: 0.95, LowWatermark: 0.9, Priority: 100, ProtectFromLowerPriority: true, PressureThreshold: 5, RefaultThreshold: 1000, StealThreshold: 256},
		},
		{
			name: "burstable on guaranteed pod: low capped, no high",
			in:   in{class: "burstable", parent: parentGuaranteed, limit: 512 * Mi},
			want: want{
				Request: 512 * Mi, ReqSrc: policy.RequestFromGuaranteedLimit, Limit: 512 * Mi,
				Low:     i64(maxProt512),
				Unified: map[string]string{"memory.low": "483180544"},
				V1:      policy.V1Values{SoftLimit: i64(maxProt512)},
			},
			wantReclaim: config.Reclaim{HighWatermark: 0.9, LowWatermark: 0.8, Priority: 50},
		},
		{
			name: "latency-sensitive request from pod annotation",
			in:   in{class: "latency-sensitive", ann: map[string]string{policy.AnnotationRequest: "128Mi"}, limit: 512 * Mi},
			want: want{
				Request: 128 * Mi, ReqSrc: policy.RequestFromPodAnnotation, Limit: 512 * Mi,
				Min: i64(128 * Mi), Swap: &policy.Swap{}, Swappiness: i64(0),
				Unified: map[string]string{"memory.min": "134217728", "memory.swap.max": "0"},
				V1:      policy.V1Values{SoftLimit: i64(128 * Mi), Swappiness: i64(0), MemSwLimit: i64(512 * Mi)},
			},
			wantReclaim: config.Reclaim{HighWatermark: 0.95, LowWatermark: 0.9, Priority: 100, ProtectFromLowerPriority: true, PressureThreshold: 5, RefaultThreshold: 1000, StealThreshold: 256},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := run(t, tc.in)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			checkDecision(t, d, tc.want)
			if d.Class != tc.in.class || d.ClassSource != policy.ClassFromPodLabel {
				t.Errorf("Class = %q (%s), want %q from pod label", d.Class, d.ClassSource, tc.in.class)
			}
			if want := policy.KubeQOS(d2parent(tc.in)); d.QOS != want {
				t.Errorf("QOS = %q, want %q", d.QOS, want)
			}
			if d.Reclaim == nil || *d.Reclaim != tc.wantReclaim {
				t.Errorf("Reclaim = %+v, want %+v", d.Reclaim, tc.wantReclaim)
			}
		})
	}
}

func d2parent(i in) string {
	if i.parent == "" {
		return parentBurstable
	}
	return i.parent
}

// TestDecideReclaimIsCopy: the decision must not alias the config's class.
func TestDecideReclaimIsCopy(t *testing.T) {
	cfg := config.Default()
	p := policy.Pod{Namespace: "default", Name: "web", Labels: map[string]string{policy.LabelClass: "burstable"}, CgroupParent: parentBurstable}
	d, err := policy.Decide(cfg, p, policy.Container{Name: "app"}, node8G)
	if err != nil {
		t.Fatal(err)
	}
	d.Reclaim.Priority = 999
	if cfg.Classes["burstable"].Reclaim.Priority != 50 {
		t.Error("Decision.Reclaim aliases the config's Reclaim")
	}
}

// alloc sets nodeAllocatable over a config maker.
func alloc(mk func() *config.Config, q string) func() *config.Config {
	return func() *config.Config {
		c := mk()
		c.NodeAllocatable = qty(q)
		return c
	}
}

func TestDecideMemoryHighKEP2570(t *testing.T) {
	factor := func(f float64) func() *config.Config {
		return withClass(map[string]*config.Class{"kep": {ThrottlingFactor: f64(f)}})
	}
	tests := []struct {
		name string
		in   in
		high *int64
	}{
		{"request 85Mi limit 100Mi factor 0.8 gives 97Mi", in{cfg: factor(0.8), class: "kep", ann: req("85Mi"), limit: 100 * Mi}, i64(97 * Mi)},
		{"factor so small the result is not above the request", in{cfg: factor(0.0001), class: "kep", ann: req("85Mi"), limit: 100 * Mi}, nil},
		{"factor 1.0 is not below the limit", in{cfg: factor(1.0), class: "kep", ann: req("85Mi"), limit: 100 * Mi}, nil},
		{"request equals limit", in{cfg: factor(0.8), class: "kep", ann: req("100Mi"), limit: 100 * Mi}, nil},
		{"no limit: node allocatable stands in", in{cfg: alloc(factor(0.8), "100Mi"), class: "kep", ann: req("85Mi"), node: policy.Node{MemTotal: 8 * Gi}}, i64(97 * Mi)},
		{"no limit: MemTotal when allocatable unset", in{cfg: factor(0.8), class: "kep", ann: req("85Mi"), node: policy.Node{MemTotal: 100 * Mi}}, i64(97 * Mi)},
		{"no limit, request all of allocatable", in{cfg: alloc(factor(0.8), "100Mi"), class: "kep", ann: req("100Mi"), node: policy.Node{MemTotal: 8 * Gi}}, nil},
		{"unaligned limit 1G, request 0, factor 0.9", in{cfg: factor(0.9), class: "kep", limit: 1000000000}, i64(899997696)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := run(t, tc.in)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if !eqPtr(d.High, tc.high) {
				t.Errorf("High = %s, want %s", fmtPtr(d.High), fmtPtr(tc.high))
			}
			if _, ok := d.UnifiedV2()["memory.high"]; ok != (tc.high != nil) {
				t.Errorf("UnifiedV2 memory.high present = %v, want %v", ok, tc.high != nil)
			}
		})
	}
}

func TestDecideDefaultLimit(t *testing.T) {
	cfg := withClass(map[string]*config.Class{
		"capped":    {Low: f64(1), ThrottlingFactor: f64(0.5), DefaultLimit: qty("1Gi")},
		"unaligned": {ThrottlingFactor: f64(0.5), DefaultLimit: qty("1000000")},
		"small":     {Min: f64(1), DefaultLimit: qty("256Mi")},
	})
	tests := []struct {
		name string
		in   in
		want want
	}{
		{
			name: "no container limit: default limit set",
			in:   in{cfg: cfg, class: "capped", ann: req("256Mi")},
			want: want{
				Request: 256 * Mi, Limit: 1 * Gi, SetLimit: 1 * Gi,
				Low: i64(256 * Mi), High: i64(640 * Mi),
				Unified: map[string]string{"memory.low": "268435456", "memory.high": "671088640"},
				V1:      policy.V1Values{SoftLimit: i64(256 * Mi)},
			},
		},
		{
			name: "container limit wins over default limit",
			in:   in{cfg: cfg, class: "capped", ann: req("256Mi"), limit: 512 * Mi},
			want: want{
				Request: 256 * Mi, Limit: 512 * Mi,
				Low: i64(256 * Mi), High: i64(384 * Mi),
				Unified: map[string]string{"memory.low": "268435456", "memory.high": "402653184"},
				V1:      policy.V1Values{SoftLimit: i64(256 * Mi)},
			},
		},
		{
			name: "default limit page-aligned down",
			in:   in{cfg: cfg, class: "unaligned"},
			want: want{
				Request: 0, Limit: 999424, SetLimit: 999424,
				High:    i64(499712), // floor(0.5*999424)
				Unified: map[string]string{"memory.high": "499712"},
				V1:      policy.V1Values{SoftLimit: i64(0)},
			},
		},
		{
			name: "request above default limit clamped to it, min capped",
			in:   in{cfg: cfg, class: "small", ann: req("512Mi")},
			want: want{
				Request: 256 * Mi, Limit: 256 * Mi, SetLimit: 256 * Mi,
				Min:     i64(241590272), // alignDown(0.9*256Mi)
				Unified: map[string]string{"memory.min": "241590272"},
				V1:      policy.V1Values{SoftLimit: i64(241590272)},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := run(t, tc.in)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			checkDecision(t, d, tc.want)
		})
	}
}

func TestDecideSwap(t *testing.T) {
	cls := withClass(map[string]*config.Class{
		"half":      {Swap: swap("0.5")},
		"unlimited": {Swap: swap("max")},
		"noswap":    {Swap: swap("none"), Swappiness: intp(60)},
		"tight":     {Swappiness: intp(0)},
		"loose":     {Swappiness: intp(60)},
	})
	tests := []struct {
		name string
		in   in
		want want
	}{
		{
			name: "fraction 0.5 of limit 512Mi",
			in:   in{cfg: cls, class: "half", ann: req("256Mi"), limit: 512 * Mi},
			want: want{
				Request: 256 * Mi, Limit: 512 * Mi, Swap: &policy.Swap{Bytes: 256 * Mi},
				Unified: map[string]string{"memory.swap.max": "268435456"},
				V1:      policy.V1Values{SoftLimit: i64(0), MemSwLimit: i64(768 * Mi)},
			},
		},
		{
			name: "fraction 0.5 without limit: of node allocatable, no memsw",
			in:   in{cfg: cls, class: "half", ann: req("256Mi")},
			want: want{
				Request: 256 * Mi, Swap: &policy.Swap{Bytes: 4 * Gi},
				Unified: map[string]string{"memory.swap.max": "4294967296"},
				V1:      policy.V1Values{SoftLimit: i64(0)},
			},
		},
		{
			name: "fraction 0.5 of unaligned limit aligned down",
			in:   in{cfg: cls, class: "half", limit: 1000000},
			want: want{
				Limit: 1000000, Swap: &policy.Swap{Bytes: 499712},
				Unified: map[string]string{"memory.swap.max": "499712"},
				V1:      policy.V1Values{SoftLimit: i64(0), MemSwLimit: i64(1000000 + 499712)},
			},
		},
		{
			name: "max",
			in:   in{cfg: cls, class: "unlimited", ann: req("256Mi"), limit: 512 * Mi},
			want: want{
				Request: 256 * Mi, Limit: 512 * Mi, Swap: &policy.Swap{Max: true},
				Unified: map[string]string{"memory.swap.max": "max"},
				V1:      policy.V1Values{SoftLimit: i64(0), MemSwLimit: i64(-1)},
			},
		},
		{
			name: "max without limit: no memsw",
			in:   in{cfg: cls, class: "unlimited", ann: req("256Mi")},
			want: want{
				Request: 256 * Mi, Swap: &policy.Swap{Max: true},
				Unified: map[string]string{"memory.swap.max": "max"},
				V1:      policy.V1Values{SoftLimit: i64(0)},
			},
		},
		{
			name: "swappiness 0 without swap setting gives swap.max 0 on v2",
			in:   in{cfg: cls, class: "tight", ann: req("256Mi"), limit: 512 * Mi},
			want: want{
				Request: 256 * Mi, Limit: 512 * Mi, Swappiness: i64(0),
				Unified: map[string]string{"memory.swap.max": "0"},
				V1:      policy.V1Values{SoftLimit: i64(0), Swappiness: i64(0)},
			},
		},
		{
			name: "swappiness 60 without swap setting: nothing on v2",
			in:   in{cfg: cls, class: "loose", ann: req("256Mi"), limit: 512 * Mi},
			want: want{
				Request: 256 * Mi, Limit: 512 * Mi, Swappiness: i64(60),
				V1: policy.V1Values{SoftLimit: i64(0), Swappiness: i64(60)},
			},
		},
		{
			name: "swap none with swappiness 60",
			in:   in{cfg: cls, class: "noswap", ann: req("256Mi"), limit: 512 * Mi},
			want: want{
				Request: 256 * Mi, Limit: 512 * Mi, Swap: &policy.Swap{}, Swappiness: i64(60),
				Unified: map[string]string{"memory.swap.max": "0"},
				V1:      policy.V1Values{SoftLimit: i64(0), Swappiness: i64(60), MemSwLimit: i64(512 * Mi)},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := run(t, tc.in)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			checkDecision(t, d, tc.want)
		})
	}
}

func TestDecideNodeCap(t *testing.T) {
	minLow := withClass(map[string]*config.Class{"both": {Min: f64(0.5), Low: f64(1)}})
	tests := []struct {
		name    string
		in      in
		wantMin *int64
		wantLow *int64
		// wantUnified is the exact UnifiedV2 map, wantSoft the V1 soft limit.
		wantUnified map[string]string
		wantSoft    *int64
		warn        bool
	}{
		{
			// The keys the class owns become explicit zeros, so a value
			// promised before is taken back; low stays unset (the class
			// does not set it).
			name: "cap reached: no protection, one warning",
			in: in{class: "latency-sensitive", ann: req("256Mi"), limit: 512 * Mi,
				node: policy.Node{MemTotal: 8 * Gi, PromisedMin: 6*Gi - 1*Mi, PageSize: page}},
			wantMin:     i64(0),
			wantUnified: map[string]string{"memory.min": "0", "memory.swap.max": "0"},
			wantSoft:    i64(0),
			warn:        true,
		},
		{
			name: "nothing promised yet: min set",
			in: in{class: "latency-sensitive", ann: req("256Mi"), limit: 512 * Mi,
				node: policy.Node{MemTotal: 8 * Gi, PromisedMin: 0, PageSize: page}},
			wantMin:     i64(256 * Mi),
			wantUnified: map[string]string{"memory.min": "268435456", "memory.swap.max": "0"},
			wantSoft:    i64(256 * Mi),
		},
		{
			name: "exactly at the cap is allowed",
			in: in{class: "latency-sensitive", ann: req("256Mi"), limit: 512 * Mi,
				node: policy.Node{MemTotal: 8 * Gi, PromisedMin: 6*Gi - 256*Mi, PageSize: page}},
			wantMin:     i64(256 * Mi),
			wantUnified: map[string]string{"memory.min": "268435456", "memory.swap.max": "0"},
			wantSoft:    i64(256 * Mi),
		},
		{
			name: "cap reached zeroes low too",
			in: in{cfg: minLow, class: "both", ann: req("256Mi"), limit: 512 * Mi,
				node: policy.Node{MemTotal: 8 * Gi, PromisedMin: 6 * Gi, PageSize: page}},
			wantMin:     i64(0),
			wantLow:     i64(0),
			wantUnified: map[string]string{"memory.min": "0", "memory.low": "0"},
			wantSoft:    i64(0),
			warn:        true,
		},
		{
			name: "low alone is not capped",
			in: in{class: "burstable", ann: req("256Mi"), limit: 512 * Mi,
				node: policy.Node{MemTotal: 8 * Gi, PromisedMin: 8 * Gi, PageSize: page}},
			wantLow:     i64(256 * Mi),
			wantUnified: map[string]string{"memory.low": "268435456", "memory.high": "510025728"},
			wantSoft:    i64(256 * Mi),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := run(t, tc.in)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if !eqPtr(d.Min, tc.wantMin) || !eqPtr(d.Low, tc.wantLow) {
				t.Errorf("Min, Low = %s, %s; want %s, %s", fmtPtr(d.Min), fmtPtr(d.Low), fmtPtr(tc.wantMin), fmtPtr(tc.wantLow))
			}
			if u := d.UnifiedV2(); !reflect.DeepEqual(u, tc.wantUnified) {
				t.Errorf("UnifiedV2 = %v, want %v", u, tc.wantUnified)
			}
			if v := d.V1().SoftLimit; !eqPtr(v, tc.wantSoft) {
				t.Errorf("V1 SoftLimit = %s, want %s", fmtPtr(v), fmtPtr(tc.wantSoft))
			}
			if tc.warn {
				if len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], "node protection cap") {
					t.Errorf("Warnings = %q, want exactly one containing %q", d.Warnings, "node protection cap")
				}
			} else if len(d.Warnings) != 0 {
				t.Errorf("Warnings = %q, want none", d.Warnings)
			}
		})
	}
}

// The node cap is a fraction of node memory (MemTotal), not of the
// allocatable that the memory.high formula uses.
func TestDecideNodeCapUsesMemTotal(t *testing.T) {
	d, err := run(t, in{cfg: alloc(config.Default, "4Gi"), class: "latency-sensitive", ann: req("256Mi"), limit: 512 * Mi,
		node: policy.Node{MemTotal: 8 * Gi, PromisedMin: 3*Gi - 1*Mi, PageSize: page}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Min == nil || *d.Min != 256*Mi || len(d.Warnings) != 0 {
		t.Errorf("Min = %s, warnings %q; want 256Mi: 3Gi-1Mi+256Mi is below 0.75 of MemTotal 8Gi", fmtPtr(d.Min), d.Warnings)
	}
	d, err = run(t, in{cfg: alloc(config.Default, "8Gi"), class: "latency-sensitive", ann: req("256Mi"), limit: 512 * Mi,
		node: policy.Node{MemTotal: 4 * Gi, PromisedMin: 3*Gi - 1*Mi, PageSize: page}})
	if err != nil {
		t.Fatal(err)
	}
	if !eqPtr(d.Min, i64(0)) || len(d.Warnings) != 1 {
		t.Errorf("Min = %s, warnings %q; want memory.min 0 and one warning: 3Gi-1Mi+256Mi exceeds 0.75 of MemTotal 4Gi", fmtPtr(d.Min), d.Warnings)
	}
	if got := d.UnifiedV2()["memory.min"]; got != "0" {
		t.Errorf("UnifiedV2 memory.min = %q, want \"0\"", got)
	}
	if v := d.V1().SoftLimit; !eqPtr(v, i64(0)) {
		t.Errorf("V1 SoftLimit = %s, want 0", fmtPtr(v))
	}
}

func TestDecideOverrides(t *testing.T) {
	ov := func(key, v string) map[string]string {
		return map[string]string{
			policy.AnnotationRequestPrefix + "app":                                 "256Mi",
			policy.AnnotationPrefix + key + policy.AnnotationOverrideInfix + "app": v,
		}
	}
	all := withClass(nil, allowAll)
	onlyMin := withClass(nil, func(c *config.Config) { c.AllowedOverrides = []string{config.OverrideMin} })
	tests := []struct {
		name    string
		in      in
		wantErr []string
		check   func(t *testing.T, d *policy.Decision)
	}{
		{
			name:    "low not allowed by default",
			in:      in{class: "burstable", ann: ov("memory.low", "100Mi"), limit: 512 * Mi},
			wantErr: []string{"annotation memqos.nri.io/memory.low.container.app", `"100Mi"`, "allowedOverrides", "allowed: overrides of none"},
		},
		{
			name:    "low not in allowedOverrides",
			in:      in{cfg: onlyMin, class: "burstable", ann: ov("memory.low", "100Mi"), limit: 512 * Mi},
			wantErr: []string{"allowedOverrides", "allowed: overrides of memory.min"},
		},
		{
			name: "low allowed",
			in:   in{cfg: all, class: "burstable", ann: ov("memory.low", "100Mi"), limit: 512 * Mi},
			check: func(t *testing.T, d *policy.Decision) {
				checkDecision(t, d, want{
					Request: 256 * Mi, Limit: 512 * Mi, Low: i64(100 * Mi), High: i64(510025728),
					Unified:    map[string]string{"memory.low": "104857600", "memory.high": "510025728"},
					V1:         policy.V1Values{SoftLimit: i64(100 * Mi)},
					Overridden: []string{"memory.low"},
				})
			},
		},
		{
			name:    "low above request",
			in:      in{cfg: all, class: "burstable", ann: ov("memory.low", "300Mi"), limit: 512 * Mi},
			wantErr: []string{"above the container's memory request 268435456", "allowed: 0 to 268435456 (the request)"},
		},
		{
			name:    "min above request",
			in:      in{cfg: all, class: "burstable", ann: ov("memory.min", "257Mi"), limit: 512 * Mi},
			wantErr: []string{"annotation memqos.nri.io/memory.min.container.app", `"257Mi"`, "above the container's memory request", "allowed:"},
		},
		{
			name:    "min not a quantity",
			in:      in{cfg: all, class: "burstable", ann: ov("memory.min", "abc"), limit: 512 * Mi},
			wantErr: []string{"not a quantity", "allowed: a memory quantity from 0 to 8Ei"},
		},
		{
			name:    "min negative",
			in:      in{cfg: all, class: "burstable", ann: ov("memory.min", "-1Mi"), limit: 512 * Mi},
			wantErr: []string{"negative", "allowed:"},
		},
		{
			name: "min equal to request allowed",
			in:   in{cfg: all, class: "burstable", ann: ov("memory.min", "256Mi"), limit: 512 * Mi},
			check: func(t *testing.T, d *policy.Decision) {
				if !eqPtr(d.Min, i64(256*Mi)) || !eqPtr(d.Low, i64(256*Mi)) {
					t.Errorf("Min, Low = %s, %s; want 256Mi, 256Mi", fmtPtr(d.Min), fmtPtr(d.Low))
				}
			},
		},
		{
			name:    "high equal to request",
			in:      in{cfg: all, class: "burstable", ann: ov("memory.high", "256Mi"), limit: 512 * Mi},
			wantErr: []string{"annotation memqos.nri.io/memory.high.container.app", "out of range", "allowed: above the request 268435456 up to 536870912"},
		},
		{
			name:    "high below request",
			in:      in{cfg: all, class: "burstable", ann: ov("memory.high", "100Mi"), limit: 512 * Mi},
			wantErr: []string{"out of range", "allowed: above the request"},
		},
		{
			name:    "high above limit",
			in:      in{cfg: all, class: "burstable", ann: ov("memory.high", "513Mi"), limit: 512 * Mi},
			wantErr: []string{"out of range", "up to 536870912"},
		},
		{
			name:    "high above node allocatable without limit",
			in:      in{cfg: all, class: "burstable", ann: ov("memory.high", "9Gi")},
			wantErr: []string{"out of range", "up to 8589934592"},
		},
		{
			name: "high valid",
			in:   in{cfg: all, class: "burstable", ann: ov("memory.high", "400Mi"), limit: 512 * Mi},
			check: func(t *testing.T, d *policy.Decision) {
				checkDecision(t, d, want{
					Request: 256 * Mi, Limit: 512 * Mi, Low: i64(256 * Mi), High: i64(400 * Mi),
					Unified:    map[string]string{"memory.low": "268435456", "memory.high": "419430400"},
					V1:         policy.V1Values{SoftLimit: i64(256 * Mi)},
					Overridden: []string{"memory.high"},
				})
			},
		},
		{
			name: "high equal to limit accepted but dropped (not below the limit)",
			in:   in{cfg: all, class: "best-effort", ann: ov("memory.high", "512Mi"), limit: 512 * Mi},
			check: func(t *testing.T, d *policy.Decision) {
				if d.High != nil {
					t.Errorf("High = %d, want nil", *d.High)
				}
			},
		},
		{
			name: "high on class without throttling",
			in:   in{cfg: all, class: "latency-sensitive", ann: ov("memory.high", "300Mi"), limit: 512 * Mi},
			check: func(t *testing.T, d *policy.Decision) {
				if !eqPtr(d.High, i64(300*Mi)) {
					t.Errorf("High = %s, want %d", fmtPtr(d.High), 300*Mi)
				}
			},
		},
		{
			name:    "swappiness 101",
			in:      in{cfg: all, class: "burstable", ann: ov("swappiness", "101"), limit: 512 * Mi},
			wantErr: []string{"annotation memqos.nri.io/swappiness.container.app", `"101"`, "not a swappiness", "allowed: an integer from 0 to 100"},
		},
		{
			name:    "swappiness -1",
			in:      in{cfg: all, class: "burstable", ann: ov("swappiness", "-1"), limit: 512 * Mi},
			wantErr: []string{"not a swappiness", "allowed:"},
		},
		{
			name:    "swappiness 5.5",
			in:      in{cfg: all, class: "burstable", ann: ov("swappiness", "5.5"), limit: 512 * Mi},
			wantErr: []string{"not a swappiness", "allowed:"},
		},
		{
			name: "swappiness 100",
			in:   in{cfg: all, class: "latency-sensitive", ann: ov("swappiness", "100"), limit: 512 * Mi},
			check: func(t *testing.T, d *policy.Decision) {
				if !eqPtr(d.Swappiness, i64(100)) || !slices.Contains(d.Overridden, "swappiness") {
					t.Errorf("Swappiness = %s, Overridden %v; want 100, [swappiness]", fmtPtr(d.Swappiness), d.Overridden)
				}
			},
		},
		{
			name: "swap.max max",
			in:   in{cfg: all, class: "latency-sensitive", ann: ov("memory.swap.max", "max"), limit: 512 * Mi},
			check: func(t *testing.T, d *policy.Decision) {
				if d.Swap == nil || !d.Swap.Max {
					t.Errorf("Swap = %s, want max", fmtSwap(d.Swap))
				}
				if got := d.UnifiedV2()["memory.swap.max"]; got != "max" {
					t.Errorf("UnifiedV2 memory.swap.max = %q, want max", got)
				}
				if v := d.V1().MemSwLimit; v == nil || *v != -1 {
					t.Errorf("V1 MemSwLimit = %s, want -1", fmtPtr(v))
				}
				if !slices.Equal(d.Overridden, []string{"memory.swap.max"}) {
					t.Errorf("Overridden = %v", d.Overridden)
				}
			},
		},
		{
			name: "swap.max bytes",
			in:   in{cfg: all, class: "latency-sensitive", ann: ov("memory.swap.max", "1Gi"), limit: 512 * Mi},
			check: func(t *testing.T, d *policy.Decision) {
				if d.Swap == nil || d.Swap.Max || d.Swap.Bytes != 1*Gi {
					t.Errorf("Swap = %s, want %d", fmtSwap(d.Swap), 1*Gi)
				}
				if v := d.V1().MemSwLimit; v == nil || *v != 1*Gi+512*Mi {
					t.Errorf("V1 MemSwLimit = %s, want %d", fmtPtr(v), 1*Gi+512*Mi)
				}
			},
		},
		{
			name:    "swap.max garbage",
			in:      in{cfg: all, class: "latency-sensitive", ann: ov("memory.swap.max", "lots"), limit: 512 * Mi},
			wantErr: []string{"not a quantity", "allowed: max or a memory quantity from 0 to 8Ei"},
		},
		{
			name:    "override for another container ignored, own one checked",
			in:      in{class: "burstable", ann: map[string]string{"memqos.nri.io/memory.low.container.other": "1Mi", policy.AnnotationRequestPrefix + "app": "256Mi"}, limit: 512 * Mi},
			wantErr: nil,
			check: func(t *testing.T, d *policy.Decision) {
				if len(d.Overridden) != 0 || !eqPtr(d.Low, i64(256*Mi)) {
					t.Errorf("Overridden = %v, Low = %s; want none, 256Mi", d.Overridden, fmtPtr(d.Low))
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := run(t, tc.in)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Decide succeeded (%+v), want error", d)
				}
				if d != nil {
					t.Errorf("Decide returned a decision with the error")
				}
				checkInputError(t, err)
				containsAll(t, err.Error(), append([]string{"pod default/web", `container "app"`}, tc.wantErr...)...)
				return
			}
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			tc.check(t, d)
		})
	}
}

// TestDecideLowNeverBelowMin: whatever the class and overrides, low is raised
// to min.
func TestDecideLowNeverBelowMin(t *testing.T) {
	both := withClass(map[string]*config.Class{"both": {Min: f64(0.5), Low: f64(0.5)}}, allowAll)
	all := withClass(nil, allowAll)
	ann := func(kv ...string) map[string]string {
		m := map[string]string{policy.AnnotationRequestPrefix + "app": "256Mi"}
		for i := 0; i < len(kv); i += 2 {
			m[policy.AnnotationPrefix+kv[i]+policy.AnnotationOverrideInfix+"app"] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name     string
		in       in
		min, low int64
	}{
		{"low override below class min", in{cfg: all, class: "latency-sensitive", ann: ann("memory.low", "100Mi"), limit: 512 * Mi}, 256 * Mi, 256 * Mi},
		{"min override above class low", in{cfg: both, class: "both", ann: ann("memory.min", "200Mi"), limit: 512 * Mi}, 200 * Mi, 200 * Mi},
		{"both overrides, low below min", in{cfg: both, class: "both", ann: ann("memory.min", "200Mi", "memory.low", "50Mi"), limit: 512 * Mi}, 200 * Mi, 200 * Mi},
		{"both overrides, low above min", in{cfg: both, class: "both", ann: ann("memory.min", "50Mi", "memory.low", "200Mi"), limit: 512 * Mi}, 50 * Mi, 200 * Mi},
		{"min override capped by maxProtectionFraction", in{cfg: both, class: "both", ann: map[string]string{
			policy.AnnotationRequestPrefix + "app": "100Mi", "memqos.nri.io/memory.min.container.app": "100Mi"}, limit: 100 * Mi}, 94371840, 94371840},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := run(t, tc.in)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if !eqPtr(d.Min, i64(tc.min)) || !eqPtr(d.Low, i64(tc.low)) {
				t.Errorf("Min, Low = %s, %s; want %d, %d", fmtPtr(d.Min), fmtPtr(d.Low), tc.min, tc.low)
			}
			if d.Limit > 0 && (*d.Min >= d.Limit || *d.Low >= d.Limit) {
				t.Errorf("protection not strictly below limit %d", d.Limit)
			}
		})
	}
}

// TestDecidePageAlignment: every byte value the plugin writes is a page
// multiple, aligned down.
func TestDecidePageAlignment(t *testing.T) {
	all := withClass(map[string]*config.Class{
		"half":   {Swap: swap("0.5")},
		"dlimit": {DefaultLimit: qty("1000000")},
	}, allowAll)
	o := func(key string) string { return policy.AnnotationPrefix + key + policy.AnnotationOverrideInfix + "app" }
	tests := []struct {
		name string
		in   in
		get  func(d *policy.Decision) int64
		want int64
	}{
		{"min from unaligned request", in{class: "latency-sensitive", ann: req("1000000")}, func(d *policy.Decision) int64 { return *d.Min }, 999424},
		{"low from unaligned request", in{class: "burstable", ann: req("1000000")}, func(d *policy.Decision) int64 { return *d.Low }, 999424},
		{"min override", in{cfg: all, class: "burstable", ann: map[string]string{policy.AnnotationRequestPrefix + "app": "256Mi", o("memory.min"): "5000"}}, func(d *policy.Decision) int64 { return *d.Min }, 4096},
		{"low override", in{cfg: all, class: "burstable", ann: map[string]string{policy.AnnotationRequestPrefix + "app": "256Mi", o("memory.low"): "100001"}}, func(d *policy.Decision) int64 { return *d.Low }, 98304},
		{"high override", in{cfg: all, class: "burstable", ann: map[string]string{policy.AnnotationRequestPrefix + "app": "256Mi", o("memory.high"): "400000001"}, limit: 512 * Mi}, func(d *policy.Decision) int64 { return *d.High }, 399998976},
		{"swap.max override", in{cfg: all, class: "burstable", ann: map[string]string{o("memory.swap.max"): "1000000"}}, func(d *policy.Decision) int64 { return d.Swap.Bytes }, 999424},
		{"swap fraction of unaligned limit", in{cfg: all, class: "half", limit: 1000000}, func(d *policy.Decision) int64 { return d.Swap.Bytes }, 499712},
		{"default limit", in{cfg: all, class: "dlimit"}, func(d *policy.Decision) int64 { return d.SetLimit }, 999424},
		{"min capped at unaligned limit", in{class: "latency-sensitive", parent: parentGuaranteed, limit: 1000000}, func(d *policy.Decision) int64 { return *d.Min }, 897024},
		{"high from unaligned limit", in{class: "burstable", limit: 1000000000}, func(d *policy.Decision) int64 { return *d.High }, 899997696},
		{"64Ki pages", in{class: "latency-sensitive", ann: req("100000"), node: policy.Node{MemTotal: 8 * Gi, PageSize: 65536}}, func(d *policy.Decision) int64 { return *d.Min }, 65536},
		{"oom_score_adj-derived request", in{class: "latency-sensitive", adj: i64(998), node: policy.Node{MemTotal: 8 * Gi}}, func(d *policy.Decision) int64 { return *d.Min }, 17178624},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := run(t, tc.in)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if got := tc.get(d); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

// TestDecideHugeQuantities: quantities beyond int64 must be rejected or
// saturate; they must never turn into 0 or a negative number.
func TestDecideHugeQuantities(t *testing.T) {
	all := withClass(nil, allowAll)
	t.Run("request annotation 2^63 on best-effort", func(t *testing.T) {
		d, err := run(t, in{class: "best-effort", ann: req("9223372036854775808"), limit: 512 * Mi})
		if err != nil {
			return
		}
		if d.Request < 0 {
			t.Errorf("Request = %d, want >= 0", d.Request)
		}
		if d.High != nil && *d.High <= 0 {
			t.Errorf("High = %d: memory.high would throttle the container to nothing", *d.High)
		}
	})
	for _, v := range []string{"10E", "9223372036854775808", "1e19"} {
		t.Run("swap.max override "+v, func(t *testing.T) {
			d, err := run(t, in{cfg: all, class: "burstable", ann: map[string]string{"memqos.nri.io/memory.swap.max.container.app": v}, limit: 512 * Mi})
			if err != nil {
				return
			}
			if d.Swap == nil || (!d.Swap.Max && d.Swap.Bytes < 1<<62) {
				t.Errorf("swap.max %q decided as %s, want an error, max, or a saturated value", v, fmtSwap(d.Swap))
			}
		})
	}
}

// TestDecideMemSwLimitOverflow: V1 MemSwLimit = limit + swap must not wrap
// around int64 (it is either -1 for unlimited or at least the limit).
func TestDecideMemSwLimitOverflow(t *testing.T) {
	all := withClass(map[string]*config.Class{"quarter": {Swap: swap("0.25")}}, allowAll)
	tests := []struct {
		name string
		in   in
	}{
		{"swap.max override 8Ei with limit 512Mi", in{cfg: all, class: "burstable", ann: map[string]string{"memqos.nri.io/memory.swap.max.container.app": "8Ei"}, limit: 512 * Mi}},
		{"swap.max override 9E with limit 1Ei", in{cfg: all, class: "burstable", ann: map[string]string{"memqos.nri.io/memory.swap.max.container.app": "9E"}, limit: 1 << 60}},
		// Found by FuzzDecide: limit MaxInt64-88, swap fraction 0.25.
		{"swap fraction with huge limit", in{cfg: all, class: "quarter", limit: math.MaxInt64 - 88}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := run(t, tc.in)
			if err != nil {
				return // rejecting is fine
			}
			if v := d.V1().MemSwLimit; v != nil && *v != -1 && *v < d.Limit {
				t.Errorf("V1 MemSwLimit = %d with limit %d and swap %s: overflowed", *v, d.Limit, fmtSwap(d.Swap))
			}
		})
	}
}
