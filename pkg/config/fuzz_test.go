package config

import "testing"

// FuzzParseConfig checks that Parse never panics and that whatever it accepts
// is valid.
func FuzzParseConfig(f *testing.F) {
	for _, seed := range []string{
		"",
		"~",
		"{}",
		"cgroupVersion: 1\n",
		"cgroupVersion: \"2\"\ncgroupRoot: /sys/fs/cgroup\n",
		"maxProtectionFraction: 0.5\nnodeProtectionFraction: 1\nnodeAllocatable: 4Gi\n",
		"allowedOverrides: [memory.low, memory.min]\n",
		"defaultClass: burstable\nnamespaceClasses:\n  batch: best-effort\n",
		"koordinator:\n  enabled: true\n  classes:\n    LS: none\n",
		"classes:\n  gold:\n    min: 0.5\n    low: 0.75\n    throttlingFactor: 0.8\n    swap: \"0.5\"\n    swappiness: 10\n    oomGroup: true\n    defaultLimit: 1Gi\n    reclaim: {highWatermark: 0.9, lowWatermark: 0.8, priority: 3}\n    namespaces: [a, b]\n",
		"classes:\n  burstable: null\n",
		"classes:\n  none: {}\n",
		`{"classes": {"x": {"swap": "max"}}}`,
		"cgroupVersion: [1]\n",
		"nodeAllocatable: -1\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			if cfg != nil {
				t.Fatalf("Parse returned both a config and error %v", err)
			}
			return
		}
		if cfg == nil {
			t.Fatal("Parse returned nil config and nil error")
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
		}
		for _, q := range []Quantity{cfg.Reconciler.MaxReclaimPerTick, cfg.Reconciler.NodePressure.MaxReclaimPerTick} {
			if q.err != nil || q.Bytes() < 4096 {
				t.Fatalf("accepted quantity %q that holds %d bytes (%v)", q.String(), q.Bytes(), q.err)
			}
		}
		for name, cl := range cfg.Classes {
			if cl == nil {
				t.Fatalf("accepted nil class %q", name)
			}
			sp := cl.Swap
			if sp.err != nil {
				t.Fatalf("accepted class %q with bad swap: %v", name, sp.err)
			}
			if sp.Mode == SwapFraction && !(sp.Fraction > 0 && sp.Fraction <= 1) {
				t.Fatalf("accepted class %q with swap fraction %v outside (0, 1]", name, sp.Fraction)
			}
		}
	})
}
