package config

import (
	"testing"
)

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
