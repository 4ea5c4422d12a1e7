package config

import (
	"time"
)

func ptr[T any](v T) *T { return &v }

// Default returns the built-in configuration, the one documented in
// config/nri-memqos.yaml.
func Default() *Config {
	return &Config{
		CgroupVersion:             "auto",
		CgroupRoot:                "/sys/fs/cgroup",
		NamespaceClasses:          map[string]string{},
		MaxProtectionFraction:     0.9,
		NodeProtectionFraction:    0.75,
		NodeLowProtectionFraction: 0.9,
		AllowedOverrides:          []string{},
		Koordinator: Koordinator{
			Classes: map[string]string{
				"LSE":    ClassLatencySensitive,
				"LSR":    ClassLatencySensitive,
				"LS":     ClassBurstable,
				"BE":     ClassBestEffort,
				"SYSTEM": ClassNone,
			},
		},
		Classes: BuiltinClasses(),
		Reconciler: Reconciler{
			Enabled:           true,
			Interval:          Duration{time.Second},
			DriftInterval:     Duration{10 * time.Second},
			AncestorInterval:  Duration{2 * time.Second},
			MaxReclaimPerTick: ParseQuantity("64Mi"),
			NodePressure:      NodePressure{LowFraction: 0.1, HighFraction: 0.15, MaxReclaimPerTick: ParseQuantity("256Mi"), PressureThreshold: 20},
			Guard: Guard{Enabled: true, StallPressure: 40, StallFor: Duration{5 * time.Second},
				ReleasePressure: 5, ReleaseFor: Duration{30 * time.Second}, Step: 0.25},
			Proactive: Proactive{TargetPressure: 0.5, Fraction: 0.02, Interval: Duration{10 * time.Second}},
			Tiers: Tiers{Enabled: true, MaxReclaimPerTick: ParseQuantity("128Mi"), ThrottleAfter: Duration{time.Second},
				Step: 0.25, CalmFor: Duration{10 * time.Second}, Headroom: ParseQuantity("32Mi")},
		},
	}
}

// BuiltinClasses returns fresh copies of the built-in classes.
func BuiltinClasses() map[string]*Class {
	return map[string]*Class{
		ClassLatencySensitive: {
			Min:        ptr(1.0),
			Swap:       SwapPolicy{Mode: SwapNone},
			Swappiness: ptr(0),
			Reclaim: &Reclaim{HighWatermark: 0.95, LowWatermark: 0.9, Priority: 100,
				ProtectFromLowerPriority: true, PressureThreshold: 5, RefaultThreshold: 1000, StealThreshold: 256},
		},
		ClassBurstable: {
			Low:              ptr(1.0),
			ThrottlingFactor: ptr(0.9),
			Reclaim:          &Reclaim{HighWatermark: 0.9, LowWatermark: 0.8, Priority: 50},
		},
		ClassBestEffort: {
			ThrottlingFactor: ptr(0.8),
			OOMGroup:         true,
			Reclaim:          &Reclaim{HighWatermark: 0.85, LowWatermark: 0.7, Priority: 0},
		},
	}
}
