package node_test

import (
	"slices"
	"strings"
	"testing"
)

func TestConfigureRefusesBadRuntimeConfig(t *testing.T) {
	f := newFixture(t, 2, "", "")
	err := f.n.Configure("maxProtectionFraction: 2\n")
	if err == nil || !strings.Contains(err.Error(), "maxProtectionFraction") {
		t.Fatalf("Configure(bad) = %v; want an error naming maxProtectionFraction", err)
	}
	if w := f.warnings(); !slices.ContainsFunc(w, func(m string) bool { return strings.Contains(m, "refusing configuration from runtime") }) {
		t.Errorf("logged %q; want a line refusing the runtime's configuration", w)
	}
}

// TestReloadIgnoredUnderRuntimeConfig: a pre-registered plugin's
// configuration comes from the runtime; a changed file must not replace it.
func TestReloadIgnoredUnderRuntimeConfig(t *testing.T) {
	f := newFixture(t, 2, "", "")
	if err := f.n.Configure(f.configYAML("")); err != nil {
		t.Fatal(err)
	}
	a := ctrSpec{id: "a", pod: "a", class: "latency-sensitive", request: request256, limit: limit512}
	f.apply(t, 0, op{kind: "create", ctr: a})
	f.apply(t, 1, op{kind: "reload", config: "classes:\n  latency-sensitive: {min: 0.5}\n",
		want: ancestors(request256, 0, map[string][2]int64{"a": {request256, 0}})})
	if w := f.warnings(); !slices.ContainsFunc(w, func(m string) bool { return strings.Contains(m, "runtime's plugin configuration is in force") }) {
		t.Errorf("logged %q; want the reload refused", w)
	}
}
