package config

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func f64(v float64) *float64 { return &v }

func intp(v int) *int { return &v }

func qty(s string) *Quantity {
	q := Quantity(s)
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
		b.WriteString(" nodeAllocatable=" + string(*c.NodeAllocatable))
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
	if cl.Swap != "" {
		parts = append(parts, "swap="+cl.Swap)
	}
	if cl.Swappiness != nil {
		parts = append(parts, "swappiness="+fmtAny(*cl.Swappiness))
	}
	if cl.OOMGroup {
		parts = append(parts, "oomGroup")
	}
	if cl.DefaultLimit != nil {
		parts = append(parts, "defaultLimit="+string(*cl.DefaultLimit))
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

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want func() *Config
	}{
		{
			name: "empty input gives defaults",
			yaml: "",
			want: Default,
		},
		{
			name: "whitespace-only input gives defaults",
			yaml: "  \n\t\n",
			want: Default,
		},
		{
			name: "YAML null document gives defaults",
			yaml: "~\n",
			want: Default,
		},
		{
			name: "comment-only document gives defaults",
			yaml: "# nothing here\n",
			want: Default,
		},
		{
			name: "empty mapping gives defaults",
			yaml: "{}\n",
			want: Default,
		},
		{
			name: "scalars overridden",
			yaml: `
cgroupVersion: auto
cgroupRoot: /host/sys/fs/cgroup
defaultClass: burstable
namespaceClasses:
  batch: best-effort
  infra: none
koordinator:
  enabled: true
maxProtectionFraction: 0.8
nodeProtectionFraction: 1
nodeAllocatable: 6Gi
allowedOverrides: [memory.low, swappiness]
`,
			want: func() *Config {
				c := Default()
				c.CgroupRoot = "/host/sys/fs/cgroup"
				c.DefaultClass = ClassBurstable
				c.NamespaceClasses = map[string]string{"batch": ClassBestEffort, "infra": ClassNone}
				c.Koordinator.Enabled = true
				c.MaxProtectionFraction = 0.8
				c.NodeProtectionFraction = 1
				c.NodeAllocatable = qty("6Gi")
				c.AllowedOverrides = []string{OverrideLow, OverrideSwappiness}
				return c
			},
		},
		{
			name: "JSON input accepted",
			yaml: `{"cgroupVersion": "2", "maxProtectionFraction": 0.5}`,
			want: func() *Config {
				c := Default()
				c.CgroupVersion = "2"
				c.MaxProtectionFraction = 0.5
				return c
			},
		},
		{
			name: "class given replaces built-in class whole, other built-ins stay",
			yaml: `
classes:
  burstable:
    min: 0.5
`,
			want: func() *Config {
				c := Default()
				c.Classes[ClassBurstable] = &Class{Min: f64(0.5)}
				return c
			},
		},
		{
			name: "empty class replaces built-in class with an empty class",
			yaml: `
classes:
  best-effort: {}
`,
			want: func() *Config {
				c := Default()
				c.Classes[ClassBestEffort] = &Class{}
				return c
			},
		},
		{
			name: "new class added next to built-ins with every field",
			yaml: `
classes:
  gold:
    min: 0.25
    low: 0.75
    throttlingFactor: 0.6
    swap: "0.5"
    swappiness: 10
    oomGroup: true
    defaultLimit: 1Gi
    reclaim:
      highWatermark: 0.9
      lowWatermark: 0.5
      priority: 7
    namespaces: [team-a, team-b]
namespaceClasses:
  team-a: gold
`,
			want: func() *Config {
				c := Default()
				c.NamespaceClasses = map[string]string{"team-a": "gold"}
				c.Classes["gold"] = &Class{
					Min:              f64(0.25),
					Low:              f64(0.75),
					ThrottlingFactor: f64(0.6),
					Swap:             "0.5",
					Swappiness:       intp(10),
					OOMGroup:         true,
					DefaultLimit:     qty("1Gi"),
					Reclaim:          &Reclaim{HighWatermark: 0.9, LowWatermark: 0.5, Priority: 7},
					Namespaces:       []string{"team-a", "team-b"},
				}
				return c
			},
		},
		{
			name: "koordinator class mapping merged over defaults",
			yaml: `
koordinator:
  enabled: true
  classes:
    LS: latency-sensitive
    BE: none
`,
			want: func() *Config {
				c := Default()
				c.Koordinator.Enabled = true
				c.Koordinator.Classes["LS"] = ClassLatencySensitive
				c.Koordinator.Classes["BE"] = ClassNone
				return c
			},
		},
		{
			name: "cgroupVersion 1 as number",
			yaml: "cgroupVersion: 1\n",
			want: func() *Config {
				c := Default()
				c.CgroupVersion = "1"
				return c
			},
		},
		{
			name: "cgroupVersion 2 as string",
			yaml: `cgroupVersion: "2"` + "\n",
			want: func() *Config {
				c := Default()
				c.CgroupVersion = "2"
				return c
			},
		},
		{
			name: "cgroupVersion 2 as number",
			yaml: "cgroupVersion: 2\n",
			want: func() *Config {
				c := Default()
				c.CgroupVersion = "2"
				return c
			},
		},
		{
			name: "cgroupVersion 1 as string",
			yaml: `cgroupVersion: "1"` + "\n",
			want: func() *Config {
				c := Default()
				c.CgroupVersion = "1"
				return c
			},
		},
		{
			name: "cgroupVersion auto explicit",
			yaml: "cgroupVersion: auto\n",
			want: Default,
		},
		{
			name: "defaultClass none accepted",
			yaml: "defaultClass: none\n",
			want: func() *Config {
				c := Default()
				c.DefaultClass = ClassNone
				return c
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatalf("Parse: unexpected error: %v", err)
			}
			want := tc.want()
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse mismatch\n got: %s\nwant: %s", dump(got), dump(want))
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate on parsed config: %v", err)
			}
		})
	}
}

// TestParseDoesNotShareDefaults checks that parsing cannot mutate the
// built-in classes seen by later callers.
func TestParseDoesNotShareDefaults(t *testing.T) {
	if _, err := Parse([]byte("classes:\n  burstable:\n    low: 0.5\nnamespaceClasses:\n  x: burstable\n")); err != nil {
		t.Fatal(err)
	}
	c := Default()
	if got := *c.Classes[ClassBurstable].Low; got != 1.0 {
		t.Errorf("Default burstable low = %v after Parse, want 1", got)
	}
	if len(c.NamespaceClasses) != 0 {
		t.Errorf("Default namespaceClasses = %v after Parse, want empty", c.NamespaceClasses)
	}
	a, b := BuiltinClasses(), BuiltinClasses()
	*a[ClassLatencySensitive].Min = 0.1
	a[ClassBurstable].Reclaim.Priority = 1
	if *b[ClassLatencySensitive].Min != 1.0 || b[ClassBurstable].Reclaim.Priority != 50 {
		t.Errorf("BuiltinClasses returns shared pointers")
	}
}

func TestDefaultValidates(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	want := []string{ClassBestEffort, ClassBurstable, ClassLatencySensitive}
	if got := Default().ClassNames(); !reflect.DeepEqual(got, want) {
		t.Errorf("ClassNames = %v, want %v", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		// field is the path the message must name, as "invalid config: <field>: ";
		// empty for decoding errors that do not go through Validate.
		field string
		// reason is a substring of the message explaining what is wrong or allowed.
		reason string
	}{
		{"YAML syntax error", "cgroupRoot: [unclosed\n", "", "invalid config"},
		{"unknown top-level key", "cgroupRot: /sys/fs/cgroup\n", "", `unknown field "cgroupRot"`},
		{"unknown class key", "classes:\n  burstable:\n    mni: 0.5\n", "", `unknown field "mni"`},
		{"unknown reclaim key", "classes:\n  burstable:\n    reclaim:\n      high: 0.5\n", "", `unknown field "high"`},
		{"unknown koordinator key", "koordinator:\n  enable: true\n", "", `unknown field "enable"`},
		{"wrong type for fraction", "maxProtectionFraction: lots\n", "", "invalid config"},

		{"bad cgroupVersion number", "cgroupVersion: 3\n", "cgroupVersion", "allowed: auto, 1, 2"},
		{"bad cgroupVersion string", "cgroupVersion: v2\n", "cgroupVersion", `"v2" is not allowed`},
		{"empty cgroupVersion", "cgroupVersion: \"\"\n", "cgroupVersion", "allowed: auto, 1, 2"},
		{"relative cgroupRoot", "cgroupRoot: sys/fs/cgroup\n", "cgroupRoot", "must be an absolute path"},
		{"empty cgroupRoot", "cgroupRoot: \"\"\n", "cgroupRoot", "must be an absolute path"},
		{"maxProtectionFraction 0", "maxProtectionFraction: 0\n", "maxProtectionFraction", "allowed: above 0 and below 1"},
		{"maxProtectionFraction 1", "maxProtectionFraction: 1\n", "maxProtectionFraction", "allowed: above 0 and below 1"},
		{"maxProtectionFraction negative", "maxProtectionFraction: -0.5\n", "maxProtectionFraction", "out of range"},
		{"nodeProtectionFraction 0", "nodeProtectionFraction: 0\n", "nodeProtectionFraction", "allowed: above 0 up to 1"},
		{"nodeProtectionFraction 1.5", "nodeProtectionFraction: 1.5\n", "nodeProtectionFraction", "allowed: above 0 up to 1"},
		{"negative nodeAllocatable", "nodeAllocatable: -1Gi\n", "nodeAllocatable", "allowed: a positive memory quantity"},
		{"zero nodeAllocatable", "nodeAllocatable: \"0\"\n", "nodeAllocatable", "allowed: a positive memory quantity"},
		{"unknown allowedOverrides key", "allowedOverrides: [memory.low, memory.max]\n", "allowedOverrides", `"memory.max" is not a known key; allowed: memory.min, memory.low, memory.high, memory.swap.max, swappiness`},
		{"reserved class name none", "classes:\n  none: {}\n", "classes", `"none" is reserved`},
		{"bad class name Bad_Name", "classes:\n  Bad_Name: {}\n", "classes", `"Bad_Name" is not a valid class name`},
		{"class name with trailing dash", "classes:\n  gold-: {}\n", "classes", `"gold-" is not a valid class name`},
		{"null class", "classes:\n  gold: null\n", "classes.gold", "class is empty"},
		{"null built-in class", "classes:\n  burstable: ~\n", "classes.burstable", "class is empty"},
		{"min 1.5", "classes:\n  burstable:\n    min: 1.5\n", "classes.burstable.min", "allowed: 0 up to 1"},
		{"min negative", "classes:\n  burstable:\n    min: -0.1\n", "classes.burstable.min", "allowed: 0 up to 1"},
		{"low 1.5", "classes:\n  burstable:\n    low: 1.5\n", "classes.burstable.low", "allowed: 0 up to 1"},
		{"low below min", "classes:\n  burstable:\n    min: 0.5\n    low: 0.25\n", "classes.burstable.low", "is below min 0.5"},
		{"throttlingFactor 0", "classes:\n  burstable:\n    throttlingFactor: 0\n", "classes.burstable.throttlingFactor", "allowed: above 0 up to 1"},
		{"throttlingFactor 1.1", "classes:\n  burstable:\n    throttlingFactor: 1.1\n", "classes.burstable.throttlingFactor", "allowed: above 0 up to 1"},
		{"swap lots", "classes:\n  burstable:\n    swap: lots\n", "classes.burstable.swap", "allowed: none, max, or a fraction"},
		{"swap 1.5", "classes:\n  burstable:\n    swap: \"1.5\"\n", "classes.burstable.swap", "allowed: none, max, or a fraction"},
		{"swap 0", "classes:\n  burstable:\n    swap: \"0\"\n", "classes.burstable.swap", `"0" is not a swap setting`},
		{"swap NaN", "classes:\n  burstable:\n    swap: NaN\n", "classes.burstable.swap", "allowed: none, max, or a fraction"},
		{"swappiness 101", "classes:\n  burstable:\n    swappiness: 101\n", "classes.burstable.swappiness", "allowed: 0 to 100"},
		{"swappiness -1", "classes:\n  burstable:\n    swappiness: -1\n", "classes.burstable.swappiness", "allowed: 0 to 100"},
		{"defaultLimit -1Gi", "classes:\n  burstable:\n    defaultLimit: -1Gi\n", "classes.burstable.defaultLimit", "allowed: a memory quantity from 4Ki"},
		{"defaultLimit 0", "classes:\n  burstable:\n    defaultLimit: \"0\"\n", "classes.burstable.defaultLimit", "allowed: a memory quantity from 4Ki"},
		{"reclaim highWatermark 0", "classes:\n  burstable:\n    reclaim:\n      highWatermark: 0\n      lowWatermark: 0.5\n", "classes.burstable.reclaim.highWatermark", "allowed: above 0 up to 1"},
		{"reclaim highWatermark 1.2", "classes:\n  burstable:\n    reclaim:\n      highWatermark: 1.2\n      lowWatermark: 0.5\n", "classes.burstable.reclaim.highWatermark", "allowed: above 0 up to 1"},
		{"reclaim lowWatermark equal highWatermark", "classes:\n  burstable:\n    reclaim:\n      highWatermark: 0.8\n      lowWatermark: 0.8\n", "classes.burstable.reclaim.lowWatermark", "allowed: above 0 and below highWatermark 0.8"},
		{"reclaim lowWatermark above highWatermark", "classes:\n  burstable:\n    reclaim:\n      highWatermark: 0.8\n      lowWatermark: 0.9\n", "classes.burstable.reclaim.lowWatermark", "below highWatermark"},
		{"reclaim lowWatermark 0", "classes:\n  burstable:\n    reclaim:\n      highWatermark: 0.8\n      lowWatermark: 0\n", "classes.burstable.reclaim.lowWatermark", "allowed: above 0"},
		{"bad namespace name", "classes:\n  burstable:\n    namespaces: [team-a, Team_B]\n", "classes.burstable.namespaces", `"Team_B" is not a valid namespace name`},
		{"defaultClass unknown", "defaultClass: gold\n", "defaultClass", `class "gold" is not defined; defined: best-effort, burstable, latency-sensitive`},
		{"namespaceClasses unknown class", "namespaceClasses:\n  batch: gold\n", "namespaceClasses.batch", `class "gold" is not defined`},
		{"koordinator classes unknown key XX", "koordinator:\n  classes:\n    XX: burstable\n", "koordinator.classes", `"XX" is not a Koordinator QoS class; allowed: LSE, LSR, LS, BE, SYSTEM`},
		{"koordinator classes unknown target class", "koordinator:\n  classes:\n    LS: gold\n", "koordinator.classes.LS", `class "gold" is not defined`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded, want error; config: %s", dump(got))
			}
			if got != nil {
				t.Errorf("Parse returned a config with the error: %s", dump(got))
			}
			msg := err.Error()
			if tc.field != "" {
				if want := "invalid config: " + tc.field + ": "; !strings.Contains(msg, want) {
					t.Errorf("error %q does not name field %q", msg, tc.field)
				}
			}
			if !strings.Contains(msg, tc.reason) {
				t.Errorf("error %q does not contain %q", msg, tc.reason)
			}
		})
	}
}

// TestValidateDirect covers values that cannot come from YAML/JSON but can be
// set by code building a Config.
func TestValidateDirect(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		field  string
		reason string
	}{
		{"nil class", func(c *Config) { c.Classes["x"] = nil }, "classes.x", "class is empty"},
		{"empty class name", func(c *Config) { c.Classes[""] = &Class{} }, "classes", `"" is not a valid class name`},
		{"negative nodeAllocatable", func(c *Config) { c.NodeAllocatable = qty("-5") }, "nodeAllocatable", "allowed: a positive memory quantity"},
		{"NaN maxProtectionFraction", func(c *Config) { c.MaxProtectionFraction = math.NaN() }, "maxProtectionFraction", "out of range"},
		{"NaN nodeProtectionFraction", func(c *Config) { c.NodeProtectionFraction = math.NaN() }, "nodeProtectionFraction", "out of range"},
		{"koordinator empty target", func(c *Config) { c.Koordinator.Classes["LS"] = "" }, "koordinator.classes.LS", "is not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate succeeded, want error")
			}
			if want := "invalid config: " + tc.field + ": "; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name field %q", err, tc.field)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q does not contain %q", err, tc.reason)
			}
		})
	}
}

func TestParseSwap(t *testing.T) {
	tests := []struct {
		in      string
		want    SwapPolicy
		wantErr bool
	}{
		{in: "", want: SwapPolicy{Mode: SwapUnset}},
		{in: "none", want: SwapPolicy{Mode: SwapNone}},
		{in: "max", want: SwapPolicy{Mode: SwapMax}},
		{in: "0.5", want: SwapPolicy{Mode: SwapFraction, Fraction: 0.5}},
		{in: "1", want: SwapPolicy{Mode: SwapFraction, Fraction: 1}},
		{in: "1.0", want: SwapPolicy{Mode: SwapFraction, Fraction: 1}},
		{in: "0.001", want: SwapPolicy{Mode: SwapFraction, Fraction: 0.001}},
		{in: "0", wantErr: true},
		{in: "0.0", wantErr: true},
		{in: "-0.5", wantErr: true},
		{in: "1.5", wantErr: true},
		{in: "1.0000001", wantErr: true},
		{in: "lots", wantErr: true},
		{in: "None", wantErr: true},
		{in: "MAX", wantErr: true},
		{in: " max", wantErr: true},
		{in: "50%", wantErr: true},
		{in: "1Gi", wantErr: true},
		{in: "Inf", wantErr: true},
		{in: "-Inf", wantErr: true},
		{in: "1e-400", wantErr: true}, // underflows to 0
		{in: "NaN", wantErr: true},
		{in: "nan", wantErr: true},
	}
	for _, tc := range tests {
		t.Run("swap="+tc.in, func(t *testing.T) {
			got, err := ParseSwap(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseSwap(%q) = %+v, want error", tc.in, got)
				}
				if !strings.Contains(err.Error(), "allowed: none, max, or a fraction of the limit above 0 up to 1") {
					t.Errorf("error %q does not say what is allowed", err)
				}
				if got != (SwapPolicy{}) {
					t.Errorf("ParseSwap(%q) returned %+v with the error, want zero", tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSwap(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("ParseSwap(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestOverrideAllowed(t *testing.T) {
	c, err := Parse([]byte("allowedOverrides: [memory.low]\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key  string
		want bool
	}{{OverrideLow, true}, {OverrideMin, false}, {OverrideHigh, false}, {"", false}} {
		if got := c.OverrideAllowed(tc.key); got != tc.want {
			t.Errorf("OverrideAllowed(%q) = %v, want %v", tc.key, got, tc.want)
		}
	}
	if Default().OverrideAllowed(OverrideLow) {
		t.Error("Default allows memory.low overrides, want none")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("cgroupVersion: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(good)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.CgroupVersion != "2" {
		t.Errorf("CgroupVersion = %q, want 2", c.CgroupVersion)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("cgroupVersion: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "cgroupVersion") {
		t.Errorf("Load(bad) error = %v, want one naming the file and the field", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want a wrapped fs.ErrNotExist", err)
	}
}

// TestShippedConfigIsDefault checks that the documented configuration file
// matches Default() exactly.
func TestShippedConfigIsDefault(t *testing.T) {
	path := filepath.Join("..", "..", "config", "nri-memqos.yaml")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s does not exist yet", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(%s): %v", path, err)
	}
	want := Default()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s does not parse to Default()\n got: %s\nwant: %s", path, dump(got), dump(want))
		// Narrow down which part differs.
		for _, n := range want.ClassNames() {
			if !reflect.DeepEqual(got.Classes[n], want.Classes[n]) {
				t.Errorf("class %s: got %s, want %s", n, dumpClass(got.Classes[n]), dumpClass(want.Classes[n]))
			}
		}
		for _, n := range got.ClassNames() {
			if _, ok := want.Classes[n]; !ok {
				t.Errorf("extra class %s: %s", n, dumpClass(got.Classes[n]))
			}
		}
	}
}

// TestParseHugeQuantities: Validate checks quantities with Sign(), but the
// policy uses Value() (int64). A quantity accepted as positive must not turn
// into 0 or a negative number of bytes.
func TestParseHugeQuantities(t *testing.T) {
	for _, v := range []string{"10E", "9223372036854775808", "18446744073709551616", "1e999999", "1e99999999", "9e18000000"} {
		for _, field := range []string{"nodeAllocatable", "classes.gold.defaultLimit"} {
			t.Run(field+"="+v, func(t *testing.T) {
				doc := "nodeAllocatable: " + v + "\n"
				if field != "nodeAllocatable" {
					doc = "classes:\n  gold:\n    defaultLimit: " + v + "\n"
				}
				c, err := Parse([]byte(doc))
				if err != nil {
					if !strings.Contains(err.Error(), field) {
						t.Errorf("error %q does not name %s", err, field)
					}
					return
				}
				q := c.NodeAllocatable
				if field != "nodeAllocatable" {
					q = c.Classes["gold"].DefaultLimit
				}
				if got, err := q.Bytes(); err != nil || got <= 0 {
					t.Errorf("%s %s accepted as positive but Bytes() = %d, %v", field, v, got, err)
				}
			})
		}
	}
}

func TestQuantityForms(t *testing.T) {
	tests := []struct {
		yaml string
		want int64
	}{
		{"nodeAllocatable: 1073741824\n", 1 << 30},
		{"nodeAllocatable: \"1Gi\"\n", 1 << 30},
		{"nodeAllocatable: 1G\n", 1_000_000_000},
		{"nodeAllocatable: 1.5Gi\n", 3 << 29},
		{"nodeAllocatable: 1e9\n", 1_000_000_000},
	}
	for _, tc := range tests {
		c, err := Parse([]byte(tc.yaml))
		if err != nil {
			t.Errorf("%q: %v", tc.yaml, err)
			continue
		}
		if got, err := c.NodeAllocatable.Bytes(); err != nil || got != tc.want {
			t.Errorf("%q: Bytes() = %d, %v; want %d", tc.yaml, got, err, tc.want)
		}
	}
}
