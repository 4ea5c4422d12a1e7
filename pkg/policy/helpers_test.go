package policy_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"nri-memqos/pkg/config"
	"nri-memqos/pkg/policy"
)

const (
	Ki int64 = 1024
	Mi       = 1024 * Ki
	Gi       = 1024 * Mi

	page int64 = 4096
)

func i64(v int64) *int64 { return &v }

func f64(v float64) *float64 { return &v }

func intp(v int) *int { return &v }

func fmtPtr(p *int64) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

func eqPtr(a, b *int64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func mustValidate(t testing.TB, c *config.Config) *config.Config {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatalf("test config invalid: %v", err)
	}
	return c
}

// inputError asserts err is an *policy.InputError and returns it.
// checkInputError fails the test unless err is an *policy.InputError.
func checkInputError(t *testing.T, err error) {
	t.Helper()
	_ = inputError(t, err)
}

func inputError(t *testing.T, err error) *policy.InputError {
	t.Helper()
	var ie *policy.InputError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v (%T) is not an *policy.InputError", err, err)
	}
	return ie
}

func containsAll(t *testing.T, msg string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(msg, s) {
			t.Errorf("message %q does not contain %q", msg, s)
		}
	}
}

const (
	parentBurstable  = "/kubepods/burstable/pod123"
	parentBestEffort = "/kubepods/besteffort/pod1"
	parentGuaranteed = "/kubepods/pod1"
)
