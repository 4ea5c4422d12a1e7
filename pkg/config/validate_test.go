package config

import (
	"math"
	"strings"
	"testing"
)

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
		{"reclaim pressureThreshold 101", "classes:\n  burstable:\n    reclaim:\n      pressureThreshold: 101\n", "classes.burstable.reclaim.pressureThreshold", "allowed: 0 (not a signal) up to 100"},
		{"reclaim refaultThreshold negative", "classes:\n  burstable:\n    reclaim:\n      refaultThreshold: -1\n", "classes.burstable.reclaim.refaultThreshold", "allowed: 0 (not a signal) up to 1e9"},
		{"protectFromLowerPriority without a signal", "classes:\n  burstable:\n    reclaim:\n      protectFromLowerPriority: true\n", "classes.burstable.reclaim.protectFromLowerPriority", "allowed: with pressureThreshold, refaultThreshold or stealThreshold above 0"},
		{"reclaim stealThreshold negative", "classes:\n  burstable:\n    reclaim:\n      stealThreshold: -1\n", "classes.burstable.reclaim.stealThreshold", "allowed: 0 (not a signal) up to 1e9 pages per second"},
		{"nodePressure pressureThreshold 150", "reconciler:\n  nodePressure:\n    pressureThreshold: 150\n", "reconciler.nodePressure.pressureThreshold", "allowed: 0 (off) up to 100"},
		{"tiers step 0", "reconciler:\n  tiers:\n    step: 0\n", "reconciler.tiers.step", "allowed: above 0 up to 1"},
		{"tiers throttleAfter below interval", "reconciler:\n  tiers:\n    throttleAfter: 100ms\n", "reconciler.tiers.throttleAfter", "allowed: 1s or more"},
		{"tiers calmFor below interval", "reconciler:\n  tiers:\n    calmFor: 0s\n", "reconciler.tiers.calmFor", "allowed: 1s or more"},
		{"tiers headroom negative", "reconciler:\n  tiers:\n    headroom: -1Mi\n", "reconciler.tiers.headroom", "allowed: a memory quantity from 0"},
		{"tiers maxReclaimPerTick 0", "reconciler:\n  tiers:\n    maxReclaimPerTick: \"0\"\n", "reconciler.tiers.maxReclaimPerTick", "allowed: a memory quantity from 4Ki"},
		{"unknown tiers key", "reconciler:\n  tiers:\n    stepp: 0.5\n", "", `unknown field "stepp"`},
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
