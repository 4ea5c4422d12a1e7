package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Quantity is a memory quantity in the configuration ("256Mi", "1G" or a
// plain number of bytes). It is parsed once, when the configuration is
// read; Validate refuses one that did not parse, naming its field, so after
// Parse every Quantity holds its bytes.
type Quantity struct {
	text  string
	bytes int64
	err   error
}

// ParseQuantity parses text as a Quantity; one that does not parse is kept
// with its error, for Validate to report.
func ParseQuantity(text string) Quantity {
	b, err := ParseBytes(text)
	return Quantity{text: text, bytes: b, err: err}
}

// Bytes is the quantity in bytes.
func (q Quantity) Bytes() int64 { return q.bytes }

// String is the quantity as written.
func (q Quantity) String() string { return q.text }

// check returns the bytes, or why the text is not a quantity.
func (q Quantity) check() (int64, error) { return q.bytes, q.err }

// UnmarshalJSON accepts a string or a number.
func (q *Quantity) UnmarshalJSON(b []byte) error {
	*q = ParseQuantity(strings.Trim(string(bytes.TrimSpace(b)), `"`))
	return nil
}

// MarshalJSON writes the quantity as written.
func (q Quantity) MarshalJSON() ([]byte, error) { return json.Marshal(q.text) }

// quantityRE is the syntax of a Kubernetes quantity with at most two
// exponent digits: longer exponents (1e99999999) make the quantity parser
// spin for seconds, and anything past e18 is out of range anyway.
var quantityRE = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,2}|[KMGTPE]i|[mkMGTPE]|[nu])?$`)

// ParseBytes parses a Kubernetes memory quantity ("256Mi", "1G") into bytes.
// Negative values and values above 8Ei (int64) are errors; fractional bytes
// round up.
func ParseBytes(s string) (int64, error) {
	if len(s) > 64 || !quantityRE.MatchString(s) {
		return 0, fmt.Errorf("not a quantity")
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("not a quantity")
	}
	if q.Sign() < 0 {
		return 0, fmt.Errorf("negative")
	}
	if q.Cmp(*maxBytes) > 0 {
		return 0, fmt.Errorf("too large")
	}
	return q.Value(), nil
}

var maxBytes = resource.NewQuantity(math.MaxInt64, resource.BinarySI)

// Duration is a time.Duration written as "1s", "500ms" in the configuration.
type Duration struct{ time.Duration }

// UnmarshalJSON parses a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(bytes.TrimSpace(b)), `"`)
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 1s or 500ms", s)
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// SwapMode tells how a class treats swap.
type SwapMode int

// Swap modes.
const (
	SwapUnset SwapMode = iota
	SwapNone
	SwapMax
	SwapFraction
)

// SwapPolicy is a class's swap setting, written "none", "max" or a
// fraction (0..1] of the memory limit. Like Quantity it is parsed once,
// when the configuration is read.
type SwapPolicy struct {
	Mode     SwapMode
	Fraction float64
	err      error
}

// ParseSwap parses a swap setting.
func ParseSwap(s string) (SwapPolicy, error) {
	switch s {
	case "":
		return SwapPolicy{}, nil
	case "none":
		return SwapPolicy{Mode: SwapNone}, nil
	case "max":
		return SwapPolicy{Mode: SwapMax}, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f > 0 && f <= 1) { // also rejects NaN
		return SwapPolicy{}, fmt.Errorf("%q is not a swap setting; allowed: none, max, or a fraction of the limit above 0 up to 1", s)
	}
	return SwapPolicy{Mode: SwapFraction, Fraction: f}, nil
}

// String is the setting as written ("" when unset).
func (p SwapPolicy) String() string {
	switch p.Mode {
	case SwapNone:
		return "none"
	case SwapMax:
		return "max"
	case SwapFraction:
		return strconv.FormatFloat(p.Fraction, 'g', -1, 64)
	}
	return ""
}

// UnmarshalJSON parses the setting; an invalid one is kept for Validate.
func (p *SwapPolicy) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(bytes.TrimSpace(b)), `"`)
	sp, err := ParseSwap(s)
	sp.err = err
	*p = sp
	return nil
}

// MarshalJSON writes the setting as written.
func (p SwapPolicy) MarshalJSON() ([]byte, error) { return json.Marshal(p.String()) }
