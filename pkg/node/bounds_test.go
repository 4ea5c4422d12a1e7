package node_test

import (
	"strconv"
	"strings"
	"testing"
)

// TestHugeRequestCannotBypassNodeCap is issue 10's item 1 as a node would
// see it: a normal latency-sensitive pod, then a pod without a limit
// annotated with a request of ~8 EiB. The second pod fails alone; the cap
// still holds for everyone; no ancestor ever holds a negative value or
// more than MemTotal.
func TestHugeRequestCannotBypassNodeCap(t *testing.T) {
	f := newFixture(t, 2, "", "")
	a := ctrSpec{id: "a", pod: "a", class: "latency-sensitive", request: request256, limit: limit512}
	huge := ctrSpec{id: "h", pod: "h", class: "latency-sensitive",
		annotations: map[string]string{"memqos.nri.io/memory-request": "9223372036854771712"}}
	f.apply(t, 0, op{kind: "create", ctr: a})
	f.cgroup(huge.rel())
	if _, err := f.n.Create(huge.facts()); err == nil || !strings.Contains(err.Error(), "above the node's allocatable memory") {
		t.Errorf("Create(huge) err = %v; want a refusal naming the node's allocatable memory", err)
	}
	checkBounded := func(when string) {
		t.Helper()
		for _, rel := range []string{"/kubepods", "/kubepods/burstable", "/kubepods/burstable/poda", "/kubepods/burstable/podh"} {
			for _, file := range []string{"memory.min", "memory.low"} {
				v, err := strconv.ParseInt(f.read(rel, file), 10, 64)
				if err != nil || v < 0 || v > f.host.MemTotal {
					t.Errorf("%s: %s/%s = %s; want 0..MemTotal", when, rel, file, f.read(rel, file))
				}
			}
		}
	}
	checkBounded("after the huge pod")
	f.check(ancestors(request256, 0, map[string][2]int64{"a": {request256, 0}, "h": {0, 0}}))
	f.n.Remove(a.facts())
	checkBounded("after the normal pod went")
	f.check(ancestors(0, 0, map[string][2]int64{"a": {0, 0}, "h": {0, 0}}))
}

// TestHugeLowWithoutLimit is item 2: a burstable pod without a limit asking
// for 7Ei gets no 7 EiB of memory.low anywhere.
func TestHugeLowWithoutLimit(t *testing.T) {
	f := newFixture(t, 2, "", "")
	b := ctrSpec{id: "b", pod: "b", class: "burstable", annotations: map[string]string{"memqos.nri.io/memory-request": "7Ei"}}
	f.cgroup(b.rel())
	if _, err := f.n.Create(b.facts()); err == nil {
		t.Error("Create(7Ei without a limit) succeeded; want a refusal")
	}
	f.check(ancestors(0, 0, map[string][2]int64{"b": {0, 0}}))
	// The largest request that fits gets memory.low capped at
	// maxProtectionFraction of allocatable.
	b.annotations = map[string]string{"memqos.nri.io/memory-request": "8Gi"}
	d, err := f.n.Create(b.facts())
	if err != nil {
		t.Fatal(err)
	}
	want := int64(7730941132) / 4096 * 4096 // 0.9 × 8Gi, page aligned
	if d.Low == nil || *d.Low != want {
		t.Errorf("memory.low = %v; want %d", d.Low, want)
	}
	f.check(ancestors(0, want, map[string][2]int64{"b": {0, want}}))
}
