package config

import (
	"strings"
	"testing"
)

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
		if got := c.NodeAllocatable.Bytes(); got != tc.want {
			t.Errorf("%q: Bytes() = %d; want %d", tc.yaml, got, tc.want)
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
				if got := q.Bytes(); got <= 0 {
					t.Errorf("%s %s accepted as positive but Bytes() = %d", field, v, got)
				}
			})
		}
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
