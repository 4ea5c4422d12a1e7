package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

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
					Swap:             SwapPolicy{Mode: SwapFraction, Fraction: 0.5},
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

// TestLoadRejectsEmptyFile: a configuration file without a document (a
// truncated or half-created file) is an error naming the file and what is
// allowed, never the defaults; "{}" is how a file asks for the defaults.
// Parse of empty input (the runtime's "no configuration") stays the
// defaults.
func TestLoadRejectsEmptyFile(t *testing.T) {
	dir := t.TempDir()
	for _, text := range []string{"", "  \n\t\n", "# only a comment\n", "~\n", "null\n", "---\n"} {
		path := filepath.Join(dir, "empty.yaml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path)
		if err == nil {
			t.Errorf("Load(%q) = %s; want an error", text, dump(cfg))
			continue
		}
		msg := err.Error()
		for _, want := range []string{path, "empty", "allowed", `"{}"`} {
			if !strings.Contains(msg, want) {
				t.Errorf("Load(%q) error %q does not contain %q", text, msg, want)
			}
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("Load(%q) error %q is more than one line", text, msg)
		}
		if _, err := Parse([]byte(text)); err != nil {
			t.Errorf("Parse(%q) = %v; want the defaults", text, err)
		}
	}
	path := filepath.Join(dir, "defaults.yaml")
	if err := os.WriteFile(path, []byte("# the built-in defaults\n{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err := Load(path); err != nil || !reflect.DeepEqual(cfg, Default()) {
		t.Errorf("Load({}) = %s, %v; want the defaults", dump(cfg), err)
	}
}
