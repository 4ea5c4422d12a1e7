package reconcile

import (
	"slices"
	"testing"
	"time"

	"nri-memqos/pkg/config"
)

func TestCeiling(t *testing.T) {
	tests := []struct {
		name        string
		high, limit int64
		want        int64
	}{
		{name: "high below limit", high: 1000, limit: 2000, want: 1000},
		{name: "limit below high", high: 2000, limit: 1000, want: 1000},
		{name: "equal", high: 1000, limit: 1000, want: 1000},
		{name: "high only", high: 1000, limit: 0, want: 1000},
		{name: "limit only", high: 0, limit: 2000, want: 2000},
		{name: "neither", high: 0, limit: 0, want: 0},
		{name: "negative high counts as none", high: -1, limit: 2000, want: 2000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ceiling(tc.high, tc.limit); got != tc.want {
				t.Fatalf("ceiling(%d, %d) = %d; want %d", tc.high, tc.limit, got, tc.want)
			}
		})
	}
}

func TestWatermarkReclaim(t *testing.T) {
	std := &config.Reclaim{HighWatermark: 0.9, LowWatermark: 0.8}
	const unbounded = int64(1) << 40
	tests := []struct {
		name                            string
		current, high, limit, protected int64
		r                               *config.Reclaim
		maxPerTick                      int64
		want                            int64
	}{
		{name: "no reclaim config", current: 999_999, high: 1_000_000, r: nil, maxPerTick: unbounded, want: 0},
		{name: "zero watermarks", current: 999_999, high: 1_000_000, r: &config.Reclaim{}, maxPerTick: unbounded, want: 0},
		{name: "zero high watermark with a low watermark", current: 999_999, high: 1_000_000, r: &config.Reclaim{LowWatermark: 0.5}, maxPerTick: unbounded, want: 0},
		{name: "priority only", current: 999_999, limit: 1_000_000, r: &config.Reclaim{Priority: 7}, maxPerTick: unbounded, want: 0},
		{name: "well below high watermark", current: 500_000, high: 1_000_000, r: std, maxPerTick: unbounded, want: 0},
		{name: "one byte below high watermark", current: 899_999, high: 1_000_000, r: std, maxPerTick: unbounded, want: 0},
		{name: "at high watermark", current: 900_000, high: 1_000_000, r: std, maxPerTick: unbounded, want: 0},
		{name: "one byte above high watermark", current: 900_001, high: 1_000_000, r: std, maxPerTick: unbounded, want: 100_001},
		{name: "at ceiling", current: 1_000_000, high: 1_000_000, r: std, maxPerTick: unbounded, want: 200_000},
		{name: "above ceiling", current: 1_100_000, high: 1_000_000, r: std, maxPerTick: unbounded, want: 300_000},
		{name: "ceiling is high when below limit", current: 950_000, high: 1_000_000, limit: 2_000_000, r: std, maxPerTick: unbounded, want: 150_000},
		{name: "ceiling is limit when below high", current: 950_000, high: 2_000_000, limit: 1_000_000, r: std, maxPerTick: unbounded, want: 150_000},
		{name: "above watermark of high but below that of limit uses the smaller", current: 950_000, high: 1_000_000, limit: 4_000_000, r: std, maxPerTick: unbounded, want: 150_000},
		{name: "high only", current: 950_000, high: 1_000_000, limit: 0, r: std, maxPerTick: unbounded, want: 150_000},
		{name: "limit only", current: 950_000, high: 0, limit: 1_000_000, r: std, maxPerTick: unbounded, want: 150_000},
		{name: "limit only below its watermark", current: 850_000, high: 0, limit: 1_000_000, r: std, maxPerTick: unbounded, want: 0},
		{name: "neither high nor limit", current: 1 << 40, high: 0, limit: 0, r: std, maxPerTick: unbounded, want: 0},
		{name: "bounded by maxPerTick", current: 950_000, high: 1_000_000, r: std, maxPerTick: 50_000, want: 50_000},
		{name: "maxPerTick equal to want", current: 950_000, high: 1_000_000, r: std, maxPerTick: 150_000, want: 150_000},
		{name: "zero maxPerTick", current: 950_000, high: 1_000_000, r: std, maxPerTick: 0, want: 0},
		{name: "never into protection", current: 950_000, high: 1_000_000, protected: 900_000, r: std, maxPerTick: unbounded, want: 50_000},
		{name: "protection below low watermark does not bound", current: 950_000, high: 1_000_000, protected: 700_000, r: std, maxPerTick: unbounded, want: 150_000},
		{name: "protection and maxPerTick: the smaller wins", current: 950_000, high: 1_000_000, protected: 900_000, r: std, maxPerTick: 20_000, want: 20_000},
		{name: "protected equals current", current: 950_000, high: 1_000_000, protected: 950_000, r: std, maxPerTick: unbounded, want: 0},
		{name: "protected above current", current: 950_000, high: 1_000_000, protected: 1_000_000, r: std, maxPerTick: unbounded, want: 0},
		{name: "other watermarks", current: 900_000, limit: 1_000_000, r: &config.Reclaim{HighWatermark: 0.85, LowWatermark: 0.7}, maxPerTick: unbounded, want: 200_000},
		{name: "high watermark 1 at ceiling", current: 1_000_000, limit: 1_000_000, r: &config.Reclaim{HighWatermark: 1, LowWatermark: 0.5}, maxPerTick: unbounded, want: 0},
		{name: "high watermark 1 above ceiling", current: 1_000_001, limit: 1_000_000, r: &config.Reclaim{HighWatermark: 1, LowWatermark: 0.5}, maxPerTick: unbounded, want: 500_001},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := WatermarkReclaim(tc.current, tc.high, tc.limit, tc.protected, tc.r, tc.maxPerTick)
			if got != tc.want {
				t.Fatalf("WatermarkReclaim(current %d, high %d, limit %d, protected %d, %+v, maxPerTick %d) = %d; want %d",
					tc.current, tc.high, tc.limit, tc.protected, tc.r, tc.maxPerTick, got, tc.want)
			}
		})
	}
}

func TestNodePressurePlan(t *testing.T) {
	tests := []struct {
		name           string
		need, maxTotal int64
		cands          []Candidate
		want           []Take // nil means a nil plan
		wantEmpty      bool   // a non-nil plan with nothing in it
	}{
		{name: "need zero", need: 0, maxTotal: 1000,
			cands: []Candidate{{ID: "a", Current: 100}}, want: nil},
		{name: "need negative", need: -5, maxTotal: 1000,
			cands: []Candidate{{ID: "a", Current: 100}}, want: nil},
		{name: "maxTotal zero", need: 100, maxTotal: 0,
			cands: []Candidate{{ID: "a", Current: 100}}, want: nil},
		{name: "maxTotal negative", need: 100, maxTotal: -1,
			cands: []Candidate{{ID: "a", Current: 100}}, want: nil},
		{name: "no candidates", need: 100, maxTotal: 1000, cands: nil, wantEmpty: true},
		{name: "nothing above protection", need: 100, maxTotal: 1000,
			cands: []Candidate{{ID: "a", Current: 100, Request: 100, Protected: 100}, {ID: "b", Current: 50, Protected: 80}}, wantEmpty: true},
		{name: "one candidate, need below its excess", need: 30, maxTotal: 1000,
			cands: []Candidate{{ID: "a", Current: 100, Request: 50}},
			want:  []Take{{ID: "a", Bytes: 30}}},
		{name: "lowest priority first even when less above request", need: 50, maxTotal: 1000,
			cands: []Candidate{
				{ID: "ls", Priority: 100, Current: 1000, Request: 100},
				{ID: "be", Priority: 0, Current: 120, Request: 100},
				{ID: "bu", Priority: 50, Current: 300, Request: 100},
			},
			want: []Take{{ID: "be", Bytes: 20}, {ID: "bu", Bytes: 30}}},
		{name: "priority order across three classes", need: 1000, maxTotal: 1000,
			cands: []Candidate{
				{ID: "ls", Priority: 100, Current: 500, Request: 400, Protected: 400},
				{ID: "bu", Priority: 50, Current: 300, Request: 250, Protected: 250},
				{ID: "be", Priority: 0, Current: 200, Request: 100},
			},
			// pass 1: be 100, bu 50, ls 100; pass 2: be 100 more (down to 0).
			want: []Take{{ID: "be", Bytes: 200}, {ID: "bu", Bytes: 50}, {ID: "ls", Bytes: 100}}},
		{name: "negative priority before zero", need: 10, maxTotal: 1000,
			cands: []Candidate{{ID: "z", Priority: 0, Current: 500}, {ID: "n", Priority: -1, Current: 50}},
			want:  []Take{{ID: "n", Bytes: 10}}},
		{name: "inside a priority furthest above request first", need: 25, maxTotal: 1000,
			cands: []Candidate{
				{ID: "a", Current: 110, Request: 100},
				{ID: "b", Current: 130, Request: 100},
				{ID: "c", Current: 120, Request: 100},
			},
			want: []Take{{ID: "b", Bytes: 25}}},
		{name: "inside a priority, excess not absolute usage", need: 60, maxTotal: 1000,
			cands: []Candidate{
				{ID: "big", Current: 10_000, Request: 9_990},
				{ID: "small", Current: 100, Request: 50},
			},
			want: []Take{{ID: "small", Bytes: 50}, {ID: "big", Bytes: 10}}},
		{name: "first pass above request then second pass down to protection", need: 100, maxTotal: 1000,
			cands: []Candidate{
				{ID: "a", Current: 100, Request: 60, Protected: 20},
				{ID: "b", Current: 100, Request: 80, Protected: 50},
			},
			// pass 1: a 40, b 20 (60); pass 2: a 40 more (100-40-20).
			want: []Take{{ID: "a", Bytes: 80}, {ID: "b", Bytes: 20}}},
		{name: "second pass reaches the second candidate", need: 125, maxTotal: 1000,
			cands: []Candidate{
				{ID: "a", Current: 100, Request: 60, Protected: 20},
				{ID: "b", Current: 100, Request: 80, Protected: 50},
			},
			want: []Take{{ID: "a", Bytes: 80}, {ID: "b", Bytes: 45}}},
		{name: "second pass follows priority too", need: 200, maxTotal: 1000,
			cands: []Candidate{
				{ID: "hi", Priority: 100, Current: 100, Request: 100},
				{ID: "lo", Priority: 0, Current: 100, Request: 100},
			},
			want: []Take{{ID: "lo", Bytes: 100}, {ID: "hi", Bytes: 100}}},
		{name: "protection never taken even when need is larger", need: 1000, maxTotal: 1000,
			cands: []Candidate{
				{ID: "a", Current: 100, Request: 60, Protected: 20},
				{ID: "b", Current: 100, Request: 80, Protected: 50},
			},
			want: []Take{{ID: "a", Bytes: 80}, {ID: "b", Bytes: 50}}},
		{name: "protection above request is the first-pass floor", need: 1000, maxTotal: 1000,
			cands: []Candidate{{ID: "a", Current: 100, Request: 10, Protected: 70}},
			want:  []Take{{ID: "a", Bytes: 30}}},
		{name: "below request: only the second pass takes", need: 1000, maxTotal: 1000,
			cands: []Candidate{{ID: "a", Current: 100, Request: 200, Protected: 40}},
			want:  []Take{{ID: "a", Bytes: 60}}},
		{name: "maxTotal bounds the need", need: 1000, maxTotal: 50,
			cands: []Candidate{
				{ID: "a", Current: 100, Request: 60, Protected: 20},
				{ID: "b", Current: 100, Request: 80, Protected: 50},
			},
			want: []Take{{ID: "a", Bytes: 40}, {ID: "b", Bytes: 10}}},
		{name: "need bounds below maxTotal", need: 45, maxTotal: 50,
			cands: []Candidate{
				{ID: "a", Current: 100, Request: 60, Protected: 20},
				{ID: "b", Current: 100, Request: 80, Protected: 50},
			},
			want: []Take{{ID: "a", Bytes: 40}, {ID: "b", Bytes: 5}}},
		{name: "ties broken by ID", need: 10, maxTotal: 1000,
			cands: []Candidate{
				{ID: "c", Current: 150, Request: 100},
				{ID: "a", Current: 150, Request: 100},
				{ID: "b", Current: 150, Request: 100},
			},
			want: []Take{{ID: "a", Bytes: 10}}},
		{name: "ties broken by ID across the whole plan", need: 120, maxTotal: 1000,
			cands: []Candidate{
				{ID: "c", Current: 150, Request: 100},
				{ID: "a", Current: 150, Request: 100},
				{ID: "b", Current: 150, Request: 100},
			},
			want: []Take{{ID: "a", Bytes: 50}, {ID: "b", Bytes: 50}, {ID: "c", Bytes: 20}}},
		{name: "equal excess at different usage: ID decides", need: 15, maxTotal: 1000,
			cands: []Candidate{
				{ID: "y", Current: 1000, Request: 990},
				{ID: "x", Current: 20, Request: 10},
			},
			want: []Take{{ID: "x", Bytes: 10}, {ID: "y", Bytes: 5}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.cands)
			got := NodePressurePlan(tc.need, tc.maxTotal, tc.cands)
			if !slices.Equal(in, tc.cands) {
				t.Errorf("NodePressurePlan reordered its input: %+v; was %+v", tc.cands, in)
			}
			switch {
			case tc.wantEmpty:
				if got == nil || len(got) != 0 {
					t.Fatalf("NodePressurePlan(%d, %d, %+v) = %#v; want an empty, non-nil plan", tc.need, tc.maxTotal, tc.cands, got)
				}
			case tc.want == nil:
				if got != nil {
					t.Fatalf("NodePressurePlan(%d, %d, %+v) = %#v; want nil", tc.need, tc.maxTotal, tc.cands, got)
				}
			default:
				if !slices.Equal(got, tc.want) {
					t.Fatalf("NodePressurePlan(%d, %d, %+v) = %+v; want %+v", tc.need, tc.maxTotal, tc.cands, got, tc.want)
				}
			}
			// Invariants: never more than asked, never into protection.
			var sum int64
			for _, tk := range got {
				sum += tk.Bytes
				if tk.Bytes <= 0 {
					t.Errorf("take %+v is not positive", tk)
				}
				for _, c := range tc.cands {
					if c.ID == tk.ID && c.Current-tk.Bytes < c.Protected {
						t.Errorf("take %+v goes into the protection of %+v", tk, c)
					}
				}
			}
			if sum > max(min(tc.need, tc.maxTotal), 0) {
				t.Errorf("plan takes %d in all; more than min(need %d, maxTotal %d)", sum, tc.need, tc.maxTotal)
			}
		})
	}
}

func TestNodeShort(t *testing.T) {
	np := config.NodePressure{LowFraction: 0.1, HighFraction: 0.15, MaxReclaimPerTick: config.ParseQuantity("256Mi")}
	psiNP := config.NodePressure{LowFraction: 0.1, HighFraction: 0.15, MaxReclaimPerTick: config.ParseQuantity("256Mi"), PressureThreshold: 20}
	const total = 10_000 // low mark 1000, high mark 1500
	tests := []struct {
		name         string
		avail, total int64
		pressure     float64
		np           config.NodePressure
		active       bool
		want         bool
		wantNeed     int64
		wantPressure bool
	}{
		{name: "inactive, plenty", avail: 5000, total: total, np: np, want: false},
		{name: "inactive, between marks does not start", avail: 1200, total: total, np: np, want: false},
		{name: "inactive, at low mark does not start", avail: 1000, total: total, np: np, want: false},
		{name: "inactive, one byte below low mark starts", avail: 999, total: total, np: np, want: true, wantNeed: 501},
		{name: "inactive, nothing available", avail: 0, total: total, np: np, want: true, wantNeed: 1500},
		{name: "active, below low mark", avail: 500, total: total, np: np, active: true, want: true, wantNeed: 1000},
		{name: "active, between marks continues", avail: 1200, total: total, np: np, active: true, want: true, wantNeed: 300},
		{name: "active, one byte below high mark continues", avail: 1499, total: total, np: np, active: true, want: true, wantNeed: 1},
		{name: "active, at high mark stops", avail: 1500, total: total, np: np, active: true, want: false},
		{name: "active, above high mark stops", avail: 1501, total: total, np: np, active: true, want: false},
		{name: "off when LowFraction is 0", avail: 0, total: total, np: config.NodePressure{HighFraction: 0.15}, want: false},
		{name: "off when LowFraction is 0, even active", avail: 0, total: total, np: config.NodePressure{HighFraction: 0.15}, active: true, want: false},
		{name: "no MemTotal", avail: 0, total: 0, np: np, want: false},
		{name: "negative MemTotal", avail: 0, total: -1, np: np, active: true, want: false},
		{name: "high equals low: no hysteresis band", avail: 1000, total: total, np: config.NodePressure{LowFraction: 0.1, HighFraction: 0.1}, active: true, want: false},
		{name: "high equals low: below starts", avail: 999, total: total, np: config.NodePressure{LowFraction: 0.1, HighFraction: 0.1}, want: true, wantNeed: 1},
		{name: "16Gi node at 5%", avail: 858_993_459, total: 16 << 30, np: np, want: true, wantNeed: 2_576_980_377 - 858_993_459},
		{name: "pressure without a threshold: off", avail: 5000, total: total, pressure: 90, np: np, want: false},
		{name: "pressure at the threshold starts, above requests only", avail: 5000, total: total, pressure: 20, np: psiNP, want: true, wantNeed: 256 << 20, wantPressure: true},
		{name: "pressure below the threshold does not start", avail: 5000, total: total, pressure: 19.9, np: psiNP, want: false},
		{name: "active, pressure at half the threshold continues", avail: 5000, total: total, pressure: 10, np: psiNP, active: true, want: true, wantNeed: 256 << 20, wantPressure: true},
		{name: "active, pressure below half stops", avail: 5000, total: total, pressure: 9.9, np: psiNP, active: true, want: false},
		{name: "short of memory and pressure: MemAvailable decides, all passes", avail: 500, total: total, pressure: 80, np: psiNP, want: true, wantNeed: 1000},
		{name: "pressure alone with LowFraction 0", avail: 0, total: total, pressure: 50, np: config.NodePressure{PressureThreshold: 20, MaxReclaimPerTick: config.ParseQuantity("1Mi")}, want: true, wantNeed: 1 << 20, wantPressure: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, need, byPressure := NodeShort(tc.avail, tc.total, tc.pressure, tc.np, tc.active)
			if got != tc.want || need != tc.wantNeed || byPressure != tc.wantPressure {
				t.Fatalf("NodeShort(avail %d, total %d, pressure %v, %+v, active %v) = %v, %d, %v; want %v, %d, %v",
					tc.avail, tc.total, tc.pressure, tc.np, tc.active, got, need, byPressure, tc.want, tc.wantNeed, tc.wantPressure)
			}
		})
	}
}

func TestNodeShortHysteresisSequence(t *testing.T) {
	np := config.NodePressure{LowFraction: 0.1, HighFraction: 0.15}
	const total = 10_000
	steps := []struct {
		name  string
		avail int64
		want  bool
	}{
		{"plenty", 3000, false},
		{"between marks, not started", 1200, false},
		{"below low starts", 900, true},
		{"between marks continues", 1200, true},
		{"still between marks", 1499, true},
		{"above high stops", 1600, false},
		{"between marks again does not restart", 1200, false},
		{"below low restarts", 999, true},
		{"at high stops", 1500, false},
	}
	active := false
	for _, s := range steps {
		got, _, _ := NodeShort(s.avail, total, 0, np, active)
		if got != s.want {
			t.Fatalf("step %q: NodeShort(%d, active %v) = %v; want %v", s.name, s.avail, active, got, s.want)
		}
		active = got
	}
}

func TestAlignUp(t *testing.T) {
	tests := []struct {
		name    string
		v, page int64
		want    int64
	}{
		{name: "zero", v: 0, page: 4096, want: 0},
		{name: "one byte", v: 1, page: 4096, want: 4096},
		{name: "aligned", v: 8192, page: 4096, want: 8192},
		{name: "one above aligned", v: 8193, page: 4096, want: 12288},
		{name: "64k pages", v: 65537, page: 65536, want: 131072},
		{name: "page 0 means 4096", v: 1, page: 0, want: 4096},
		{name: "negative page means 4096", v: 4097, page: -1, want: 8192},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := alignUp(tc.v, tc.page); got != tc.want {
				t.Fatalf("alignUp(%d, %d) = %d; want %d", tc.v, tc.page, got, tc.want)
			}
		})
	}
}

// Guard numbers: orig 1000 pages, ceiling 1000+1001 pages. The step is
// alignUp(0.25 × 1001 pages) = alignUp(1025024) = 251 pages = 1028096.
const (
	gPage = 4096
	gOrig = 1000 * gPage       // 4096000
	gCeil = gOrig + 1001*gPage // 8196096
	gStep = 251 * gPage        // 1028096
	gH1   = gOrig + gStep      // 5124096
	gH2   = gOrig + 2*gStep    // 6152192
	gH3   = gOrig + 3*gStep    // 7180288
	gR1   = gCeil - gStep      // 7168000
	gR2   = gCeil - 2*gStep    // 6139904
	gR3   = gCeil - 3*gStep    // 5111808
	gNear = gOrig * 95 / 100   // 3891200: exactly 95% of orig
	gFar  = gOrig * 90 / 100   // 3686400
	gHigh = 80.0               // full avg10 well above StallPressure 40
	gMid  = 20.0               // between ReleasePressure 5 and StallPressure 40
	gCalm = 0.0                // below ReleasePressure
)

func guardConfig(t *testing.T) config.Guard {
	t.Helper()
	g := config.Default().Reconciler.Guard
	if g.StallFor.Duration != 5*time.Second || g.ReleaseFor.Duration != 30*time.Second || g.Step != 0.25 ||
		g.StallPressure != 40 || g.ReleasePressure != 5 {
		t.Fatalf("default guard config changed: %+v", g)
	}
	return g
}

func TestGuardStepConstants(t *testing.T) {
	// The hand-computed step agrees with the formula.
	if got := alignUp(int64(0.25*float64(gCeil-gOrig)), gPage); got != gStep {
		t.Fatalf("step = %d; want %d", got, gStep)
	}
}

type guardTick struct {
	at      time.Duration // since the start of the sequence
	current int64
	full    float64
	act     GuardAction
	high    int64 // the state's High after the step
	raised  bool
}

func TestGuardStepSequences(t *testing.T) {
	cfg := guardConfig(t)
	s := time.Second
	// raiseTwice brings the state to gH2 at 10s.
	raiseTwice := []guardTick{
		{0, gOrig, gHigh, GuardNone, gOrig, false},
		{5 * s, gOrig, gHigh, GuardRaise, gH1, true},
		{6 * s, gH1, gHigh, GuardNone, gH1, true},
		{10 * s, gH1, gHigh, GuardRaise, gH2, true},
	}
	tests := []struct {
		name   string
		orig   int64
		ceil   int64
		ticks  []guardTick
		start  GuardState
		fromAt time.Duration // offset of start times relative to base
	}{
		{name: "not near high: no action however long the pressure", orig: gOrig, ceil: gCeil, ticks: []guardTick{
			{0, gFar, gHigh, GuardNone, gOrig, false},
			{5 * s, gFar, gHigh, GuardNone, gOrig, false},
			{10 * s, gFar, 100, GuardNone, gOrig, false},
			{60 * s, gFar, 100, GuardNone, gOrig, false},
			{600 * s, gNear - 1, 100, GuardNone, gOrig, false},
		}},
		{name: "near high but no pressure: no action", orig: gOrig, ceil: gCeil, ticks: []guardTick{
			{0, gOrig, gCalm, GuardNone, gOrig, false},
			{60 * s, gOrig, gCalm, GuardNone, gOrig, false},
		}},
		{name: "pressure at StallPressure is not a stall", orig: gOrig, ceil: gCeil, ticks: []guardTick{
			{0, gOrig, 40, GuardNone, gOrig, false},
			{5 * s, gOrig, 40, GuardNone, gOrig, false},
			{60 * s, gOrig, 40, GuardNone, gOrig, false},
		}},
		{name: "stalled for less than StallFor: no action", orig: gOrig, ceil: gCeil, ticks: []guardTick{
			{0, gOrig, gHigh, GuardNone, gOrig, false},
			{1 * s, gOrig, gHigh, GuardNone, gOrig, false},
			{4 * s, gOrig, gHigh, GuardNone, gOrig, false},
			{5*s - time.Nanosecond, gOrig, gHigh, GuardNone, gOrig, false},
		}},
		{name: "stalled at exactly 95% of high counts", orig: gOrig, ceil: gCeil, ticks: []guardTick{
			{0, gNear, 40.01, GuardNone, gOrig, false},
			{5 * s, gNear, 40.01, GuardRaise, gH1, true},
		}},
		{name: "stalled StallFor raises by the exact step, then each StallFor up to ceiling and never beyond", orig: gOrig, ceil: gCeil, ticks: []guardTick{
			{0, gOrig, gHigh, GuardNone, gOrig, false},
			{4 * s, gOrig, gHigh, GuardNone, gOrig, false},
			{5 * s, gOrig, gHigh, GuardRaise, gH1, true},
			{6 * s, gH1, gHigh, GuardNone, gH1, true},
			{9 * s, gH1, gHigh, GuardNone, gH1, true},
			{10 * s, gH1, gHigh, GuardRaise, gH2, true},
			{15 * s, gH2, gHigh, GuardRaise, gH3, true},
			{20 * s, gH3, gHigh, GuardRaise, gCeil, true},
			{25 * s, gCeil, gHigh, GuardNone, gCeil, true},
			{30 * s, gCeil, 100, GuardNone, gCeil, true},
			{300 * s, gCeil, 100, GuardNone, gCeil, true},
		}},
		{name: "a raise needs usage near the raised high", orig: gOrig, ceil: gCeil, ticks: []guardTick{
			{0, gOrig, gHigh, GuardNone, gOrig, false},
			{5 * s, gOrig, gHigh, GuardRaise, gH1, true},
			// Usage stays at the old high: 4096000 < 0.95 × 5124096, no stall.
			{10 * s, gOrig, gHigh, GuardNone, gH1, true},
			{20 * s, gOrig, gHigh, GuardNone, gH1, true},
			{21 * s, gH1, gHigh, GuardNone, gH1, true},
			{26 * s, gH1, gHigh, GuardRaise, gH2, true},
		}},
		{name: "late tick raises only one step", orig: gOrig, ceil: gCeil, ticks: []guardTick{
			{0, gOrig, gHigh, GuardNone, gOrig, false},
			{60 * s, gOrig, gHigh, GuardRaise, gH1, true},
			{61 * s, gH1, gHigh, GuardNone, gH1, true},
			{65 * s, gH1, gHigh, GuardRaise, gH2, true},
		}},
		{name: "pressure between thresholds resets the stall clock", orig: gOrig, ceil: gCeil, ticks: []guardTick{
			{0, gOrig, gHigh, GuardNone, gOrig, false},
			{4 * s, gOrig, gMid, GuardNone, gOrig, false},
			{5 * s, gOrig, gHigh, GuardNone, gOrig, false},
			{9 * s, gOrig, gHigh, GuardNone, gOrig, false},
			{10 * s, gOrig, gHigh, GuardRaise, gH1, true},
		}},
		{name: "pressure between thresholds: no action even after a long time", orig: gOrig, ceil: gCeil, ticks: []guardTick{
			{0, gOrig, gMid, GuardNone, gOrig, false},
			{5 * s, gOrig, gMid, GuardNone, gOrig, false},
			{60 * s, gOrig, gMid, GuardNone, gOrig, false},
			{3600 * s, gOrig, gMid, GuardNone, gOrig, false},
		}},
		{name: "pressure at ReleasePressure is not calm", orig: gOrig, ceil: gCeil, ticks: append(slices.Clone(raiseTwice),
			guardTick{11 * s, gH2, 5, GuardNone, gH2, true},
			guardTick{41 * s, gH2, 5, GuardNone, gH2, true},
			guardTick{600 * s, gH2, 5, GuardNone, gH2, true},
		)},
		{name: "raised, pressure between thresholds: held, no restore, no raise", orig: gOrig, ceil: gCeil, ticks: append(slices.Clone(raiseTwice),
			guardTick{11 * s, gH2, gMid, GuardNone, gH2, true},
			guardTick{60 * s, gH2, gMid, GuardNone, gH2, true},
			guardTick{3600 * s, gH2, gMid, GuardNone, gH2, true},
		)},
		{name: "calm for ReleaseFor restores one step at a time down to orig", orig: gOrig, ceil: gCeil, ticks: append(slices.Clone(raiseTwice),
			guardTick{11 * s, gFar, gCalm, GuardNone, gH2, true},
			guardTick{40 * s, gFar, gCalm, GuardNone, gH2, true},
			guardTick{41 * s, gFar, gCalm, GuardRestore, gH1, true},
			guardTick{70 * s, gFar, gCalm, GuardNone, gH1, true},
			guardTick{71 * s, gFar, gCalm, GuardRestore, gOrig, false},
			guardTick{101 * s, gFar, gCalm, GuardNone, gOrig, false},
			guardTick{600 * s, gFar, gCalm, GuardNone, gOrig, false},
		)},
		{name: "calm interrupted by a stall restarts the calm clock", orig: gOrig, ceil: gCeil, ticks: append(slices.Clone(raiseTwice),
			guardTick{11 * s, gH2, gCalm, GuardNone, gH2, true},
			guardTick{30 * s, gH2, gHigh, GuardNone, gH2, true},
			guardTick{31 * s, gH2, gCalm, GuardNone, gH2, true},
			guardTick{60 * s, gH2, gCalm, GuardNone, gH2, true},
			guardTick{61 * s, gH2, gCalm, GuardRestore, gH1, true},
		)},
		{name: "calm interrupted by middle pressure restarts the calm clock", orig: gOrig, ceil: gCeil, ticks: append(slices.Clone(raiseTwice),
			guardTick{11 * s, gH2, gCalm, GuardNone, gH2, true},
			guardTick{40 * s, gH2, gMid, GuardNone, gH2, true},
			guardTick{41 * s, gH2, gCalm, GuardNone, gH2, true},
			guardTick{70 * s, gH2, gCalm, GuardNone, gH2, true},
			guardTick{71 * s, gH2, gCalm, GuardRestore, gH1, true},
		)},
		{name: "stall interrupted by calm while not raised restarts the stall clock", orig: gOrig, ceil: gCeil, ticks: []guardTick{
			{0, gOrig, gHigh, GuardNone, gOrig, false},
			{3 * s, gOrig, gCalm, GuardNone, gOrig, false},
			{5 * s, gOrig, gHigh, GuardNone, gOrig, false},
			{9 * s, gOrig, gHigh, GuardNone, gOrig, false},
			{10 * s, gOrig, gHigh, GuardRaise, gH1, true},
		}},
		{name: "restore from ceiling steps back and stops at orig", orig: gOrig, ceil: gCeil, ticks: []guardTick{
			{0, gOrig, gHigh, GuardNone, gOrig, false},
			{5 * s, gOrig, gHigh, GuardRaise, gH1, true},
			{10 * s, gH1, gHigh, GuardRaise, gH2, true},
			{15 * s, gH2, gHigh, GuardRaise, gH3, true},
			{20 * s, gH3, gHigh, GuardRaise, gCeil, true},
			{21 * s, gFar, gCalm, GuardNone, gCeil, true},
			{51 * s, gFar, gCalm, GuardRestore, gR1, true},
			{81 * s, gFar, gCalm, GuardRestore, gR2, true},
			{111 * s, gFar, gCalm, GuardRestore, gR3, true},
			{141 * s, gFar, gCalm, GuardRestore, gOrig, false},
			{171 * s, gFar, gCalm, GuardNone, gOrig, false},
		}},
		{name: "ceiling equal to orig: never raised", orig: gOrig, ceil: gOrig, ticks: []guardTick{
			{0, gOrig, 100, GuardNone, gOrig, false},
			{5 * s, gOrig, 100, GuardNone, gOrig, false},
			{600 * s, gOrig, 100, GuardNone, gOrig, false},
		}},
		{name: "ceiling below orig: never raised", orig: gOrig, ceil: gOrig - gPage, ticks: []guardTick{
			{0, gOrig, 100, GuardNone, gOrig, false},
			{5 * s, gOrig, 100, GuardNone, gOrig, false},
			{600 * s, gOrig, 100, GuardNone, gOrig, false},
		}},
		{name: "ceiling one page above orig: raised straight to ceiling", orig: gOrig, ceil: gOrig + gPage, ticks: []guardTick{
			{0, gOrig, gHigh, GuardNone, gOrig, false},
			{5 * s, gOrig, gHigh, GuardRaise, gOrig + gPage, true},
			{10 * s, gOrig + gPage, gHigh, GuardNone, gOrig + gPage, true},
			{11 * s, gFar, gCalm, GuardNone, gOrig + gPage, true},
			{41 * s, gFar, gCalm, GuardRestore, gOrig, false},
		}},
	}
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.start
			for i, tk := range tc.ticks {
				prev := g
				var act GuardAction
				g, act = GuardStep(g, tc.orig, tc.ceil, tk.current, tk.full, base.Add(tk.at), cfg, gPage)
				if act != tk.act || g.High != tk.high || g.Raised != tk.raised {
					t.Fatalf("tick %d at %v (current %d, full %.2f) from %+v: action %v, High %d, Raised %v; want action %v, High %d, Raised %v",
						i, tk.at, tk.current, tk.full, prev, act, g.High, g.Raised, tk.act, tk.high, tk.raised)
				}
				if g.High > max(tc.ceil, tc.orig) {
					t.Fatalf("tick %d: High %d beyond ceiling %d", i, g.High, tc.ceil)
				}
				if g.High < tc.orig {
					t.Fatalf("tick %d: High %d below orig %d", i, g.High, tc.orig)
				}
			}
		})
	}
}

func TestGuardStepState(t *testing.T) {
	cfg := guardConfig(t)
	now := time.Date(2030, 1, 1, 0, 10, 0, 0, time.UTC)
	long := now.Add(-time.Hour)
	tests := []struct {
		name       string
		g          GuardState
		orig, ceil int64
		current    int64
		full       float64
		wantAct    GuardAction
		want       GuardState
	}{
		{name: "zero state starts at orig and the stall clock",
			g: GuardState{}, orig: gOrig, ceil: gCeil, current: gOrig, full: gHigh,
			wantAct: GuardNone, want: GuardState{High: gOrig, StallSince: now}},
		{name: "zero state, calm: clocks stay zero",
			g: GuardState{}, orig: gOrig, ceil: gCeil, current: gOrig, full: gCalm,
			wantAct: GuardNone, want: GuardState{High: gOrig}},
		{name: "orig change when not raised resets state and the stall clock",
			g: GuardState{High: gOrig - 10*gPage, StallSince: long}, orig: gOrig, ceil: gCeil, current: gOrig, full: gHigh,
			wantAct: GuardNone, want: GuardState{High: gOrig, StallSince: now}},
		{name: "orig change when not raised drops the calm clock",
			g: GuardState{High: gOrig + 10*gPage, CalmSince: long}, orig: gOrig, ceil: gCeil, current: gFar, full: gMid,
			wantAct: GuardNone, want: GuardState{High: gOrig}},
		{name: "same orig keeps the stall clock and raises",
			g: GuardState{High: gOrig, StallSince: long}, orig: gOrig, ceil: gCeil, current: gOrig, full: gHigh,
			wantAct: GuardRaise, want: GuardState{High: gH1, Raised: true, StallSince: now}},
		{name: "orig change when raised keeps the raised high",
			g: GuardState{High: gH2, Raised: true}, orig: gOrig + gPage, ceil: gCeil, current: gFar, full: gMid,
			wantAct: GuardNone, want: GuardState{High: gH2, Raised: true}},
		{name: "ceiling equal to orig: no action, state at orig",
			g: GuardState{High: gOrig, StallSince: long}, orig: gOrig, ceil: gOrig, current: gOrig, full: 100,
			wantAct: GuardNone, want: GuardState{High: gOrig, StallSince: long}},
		{name: "ceiling below orig: no action",
			g: GuardState{}, orig: gOrig, ceil: gOrig - 1, current: gOrig, full: 100,
			wantAct: GuardNone, want: GuardState{High: gOrig}},
		{name: "ceiling zero: no action",
			g: GuardState{}, orig: gOrig, ceil: 0, current: gOrig, full: 100,
			wantAct: GuardNone, want: GuardState{High: gOrig}},
		{name: "at ceiling and stalled: no action, clock kept",
			g: GuardState{High: gCeil, Raised: true, StallSince: long}, orig: gOrig, ceil: gCeil, current: gCeil, full: 100,
			wantAct: GuardNone, want: GuardState{High: gCeil, Raised: true, StallSince: long}},
		{name: "calm when not raised: nothing to restore, clocks cleared",
			g: GuardState{High: gOrig, StallSince: long}, orig: gOrig, ceil: gCeil, current: gOrig, full: gCalm,
			wantAct: GuardNone, want: GuardState{High: gOrig}},
		{name: "restore never below orig",
			g: GuardState{High: gOrig + gPage, Raised: true, CalmSince: long}, orig: gOrig, ceil: gCeil, current: gFar, full: gCalm,
			wantAct: GuardRestore, want: GuardState{High: gOrig, Raised: false, CalmSince: now}},
		{name: "StallFor zero raises on the first stalled step",
			g: GuardState{}, orig: gOrig, ceil: gCeil, current: gOrig, full: gHigh,
			wantAct: GuardRaise, want: GuardState{High: gH1, Raised: true, StallSince: now}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			if tc.name == "StallFor zero raises on the first stalled step" {
				c.StallFor.Duration = 0
			}
			got, act := GuardStep(tc.g, tc.orig, tc.ceil, tc.current, tc.full, now, c, gPage)
			if act != tc.wantAct || got != tc.want {
				t.Fatalf("GuardStep(%+v, orig %d, ceil %d, current %d, full %.2f) = %+v, %v; want %+v, %v",
					tc.g, tc.orig, tc.ceil, tc.current, tc.full, got, act, tc.want, tc.wantAct)
			}
		})
	}
}

// A raise must raise: when Step × (ceiling − orig) is under one byte the
// step rounds to 0 and GuardStep reports GuardRaise while leaving memory.high
// where it was (and a later GuardRestore that restores nothing).
func TestGuardStepRaiseAlwaysRaises(t *testing.T) {
	cfg := guardConfig(t)
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		orig, ceil int64
	}{
		{name: "ceiling 1 byte above orig", orig: gOrig, ceil: gOrig + 1},
		{name: "ceiling 3 bytes above orig", orig: gOrig, ceil: gOrig + 3},
		{name: "ceiling 4 bytes above orig", orig: gOrig, ceil: gOrig + 4},
		{name: "ceiling 4095 bytes above orig", orig: gOrig, ceil: gOrig + 4095},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, _ := GuardStep(GuardState{}, tc.orig, tc.ceil, tc.orig, gHigh, base, cfg, gPage)
			g, act := GuardStep(g, tc.orig, tc.ceil, tc.orig, gHigh, base.Add(5*time.Second), cfg, gPage)
			if act != GuardRaise {
				t.Fatalf("action %v; want GuardRaise", act)
			}
			if g.High != tc.ceil {
				t.Fatalf("GuardRaise left High at %d (orig %d); want it raised to the ceiling %d", g.High, tc.orig, tc.ceil)
			}
		})
	}
}

func TestProactiveReclaim(t *testing.T) {
	cfg := config.Default().Reconciler.Proactive // target 0.5, fraction 0.02
	const unbounded = int64(1) << 40
	tests := []struct {
		name                       string
		inactive, current, protect int64
		some                       float64
		cfg                        config.Proactive
		maxPerTick                 int64
		want                       int64
	}{
		{name: "idle: 2% of inactive", inactive: 157_286_400, current: 1 << 30, some: 0, cfg: cfg, maxPerTick: unbounded, want: 3_145_728},
		{name: "just below target", inactive: 100_000_000, current: 1 << 30, some: 0.49, cfg: cfg, maxPerTick: unbounded, want: 2_000_000},
		{name: "at target: none", inactive: 100_000_000, current: 1 << 30, some: 0.5, cfg: cfg, maxPerTick: unbounded, want: 0},
		{name: "above target: none", inactive: 100_000_000, current: 1 << 30, some: 12.3, cfg: cfg, maxPerTick: unbounded, want: 0},
		{name: "no inactive memory", inactive: 0, current: 1 << 30, some: 0, cfg: cfg, maxPerTick: unbounded, want: 0},
		{name: "fraction rounds down", inactive: 99, current: 1 << 30, some: 0, cfg: cfg, maxPerTick: unbounded, want: 1},
		{name: "bounded by maxPerTick", inactive: 100_000_000, current: 1 << 30, some: 0, cfg: cfg, maxPerTick: 1_000_000, want: 1_000_000},
		{name: "zero maxPerTick", inactive: 100_000_000, current: 1 << 30, some: 0, cfg: cfg, maxPerTick: 0, want: 0},
		{name: "bounded by protection", inactive: 100_000_000, current: 50_000_000, protect: 49_500_000, some: 0, cfg: cfg, maxPerTick: unbounded, want: 500_000},
		{name: "protection equals usage", inactive: 100_000_000, current: 50_000_000, protect: 50_000_000, some: 0, cfg: cfg, maxPerTick: unbounded, want: 0},
		{name: "protection above usage", inactive: 100_000_000, current: 50_000_000, protect: 60_000_000, some: 0, cfg: cfg, maxPerTick: unbounded, want: 0},
		{name: "other fraction", inactive: 100_000_000, current: 1 << 30, some: 0, cfg: config.Proactive{TargetPressure: 1, Fraction: 0.5}, maxPerTick: unbounded, want: 50_000_000},
		{name: "target 0: never", inactive: 100_000_000, current: 1 << 30, some: 0, cfg: config.Proactive{TargetPressure: 0, Fraction: 0.5}, maxPerTick: unbounded, want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ProactiveReclaim(tc.inactive, tc.current, tc.protect, tc.some, tc.cfg, tc.maxPerTick)
			if got != tc.want {
				t.Fatalf("ProactiveReclaim(inactive %d, current %d, protected %d, some %.2f, %+v, max %d) = %d; want %d",
					tc.inactive, tc.current, tc.protect, tc.some, tc.cfg, tc.maxPerTick, got, tc.want)
			}
		})
	}
}
