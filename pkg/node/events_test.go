package node_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"nri-memqos/pkg/node"
	"nri-memqos/pkg/policy"
)

// op is one event fed to the core, and what must hold after it.
type op struct {
	kind string // create, start, update, postupdate, remove, resync, reload
	ctr  ctrSpec
	list []ctrSpec // resync; inactive ones are listed in inactive
	// inactive lists containers that resync reports as neither created
	// nor running.
	inactive []ctrSpec
	config   string // reload: extra YAML over the tree
	// wantErr is a substring of the error create or update must return.
	wantErr string
	// wantRequest is the request decided per container ID (create,
	// update: the container; resync: every update returned).
	wantRequest map[string]int64
	// want are files ("rel/file" → value) after the event.
	want map[string]string
}

// ancestors gives the memory.min and memory.low of /kubepods,
// /kubepods/burstable and each pod ("a" → /kubepods/burstable/poda).
func ancestors(kubeMin, kubeLow int64, pods map[string][2]int64) map[string]string {
	w := map[string]string{
		"/kubepods/memory.min": itoa(kubeMin), "/kubepods/memory.low": itoa(kubeLow),
		"/kubepods/burstable/memory.min": itoa(kubeMin), "/kubepods/burstable/memory.low": itoa(kubeLow),
	}
	for pod, v := range pods {
		w["/kubepods/burstable/pod"+pod+"/memory.min"] = itoa(v[0])
		w["/kubepods/burstable/pod"+pod+"/memory.low"] = itoa(v[1])
	}
	return w
}

func (f *fixture) apply(t *testing.T, i int, o op) {
	t.Helper()
	var err error
	decided := map[string]int64{}
	switch o.kind {
	case "create", "update":
		f.cgroup(o.ctr.rel())
		var d *policy.Decision
		if o.kind == "create" {
			d, err = f.n.Create(o.ctr.facts())
		} else {
			d, err = f.n.Update(o.ctr.facts())
		}
		if d != nil {
			decided[o.ctr.id] = d.Request
		}
	case "start":
		f.n.Start(o.ctr.facts())
	case "postupdate":
		f.n.PostUpdate(o.ctr.facts())
	case "remove":
		f.n.Remove(o.ctr.facts())
	case "resync":
		var list []node.Container
		for _, s := range o.list {
			f.cgroup(s.rel())
			list = append(list, s.facts())
		}
		for _, s := range o.inactive {
			c := s.facts()
			c.Inactive = true
			list = append(list, c)
		}
		var updates []node.Update
		updates, err = f.n.Resync(list)
		for _, u := range updates {
			decided[u.ID] = u.Decision.Request
		}
	case "reload":
		f.n.Reload(mustConfig(t, f.configYAML(o.config)))
	default:
		t.Fatalf("step %d: unknown op %q", i, o.kind)
	}
	switch {
	case o.wantErr == "" && err != nil:
		t.Fatalf("step %d (%s %s): %v", i, o.kind, o.ctr.id, err)
	case o.wantErr != "" && (err == nil || !strings.Contains(err.Error(), o.wantErr)):
		t.Fatalf("step %d (%s %s): err = %v; want one containing %q", i, o.kind, o.ctr.id, err, o.wantErr)
	}
	if o.wantRequest != nil && !maps.Equal(decided, o.wantRequest) {
		t.Errorf("step %d (%s): decided requests = %v; want %v", i, o.kind, decided, o.wantRequest)
	}
	f.check(o.want)
}

// TestEventSequences feeds sequences of runtime events to the core over a
// fake cgroup v2 tree and checks the ancestors' protection after each.
func TestEventSequences(t *testing.T) {
	a := ctrSpec{id: "a", pod: "a", class: "latency-sensitive", request: request256, limit: limit512, created: 2}
	b := ctrSpec{id: "b", pod: "b", class: "latency-sensitive", request: 128 * mi, limit: limit512, created: 1}
	aSmall, aBig := a, a
	aSmall.request, aBig.request = 128*mi, 384*mi
	aBurst := a
	aBurst.class = "burstable"
	aBad := a
	aBad.annotations = map[string]string{"memqos.nri.io/memory-request": "lots"}
	bBig := b
	bBig.request = request256
	zero := ancestors(0, 0, map[string][2]int64{"a": {0, 0}})

	tests := []struct {
		name   string
		config string
		ops    []op
	}{{
		name: "create raises every ancestor, remove lowers them",
		ops: []op{
			{kind: "create", ctr: a, wantRequest: map[string]int64{"a": request256},
				want: ancestors(request256, 0, map[string][2]int64{"a": {request256, 0}})},
			{kind: "start", ctr: a, want: ancestors(request256, 0, nil)},
			{kind: "remove", ctr: a, want: zero},
		},
	}, {
		name: "two pods add up at the shared ancestors",
		ops: []op{
			{kind: "create", ctr: a},
			{kind: "create", ctr: b, want: ancestors(384*mi, 0, map[string][2]int64{"a": {request256, 0}, "b": {128 * mi, 0}})},
			{kind: "remove", ctr: a, want: ancestors(128*mi, 0, map[string][2]int64{"a": {0, 0}, "b": {128 * mi, 0}})},
		},
	}, {
		name: "burstable promises memory.low",
		ops: []op{
			{kind: "create", ctr: aBurst, want: ancestors(0, request256, map[string][2]int64{"a": {0, request256}})},
			{kind: "remove", ctr: aBurst, want: zero},
		},
	}, {
		name: "an in-place shrink lowers ancestors only after the update landed",
		ops: []op{
			{kind: "create", ctr: a},
			{kind: "update", ctr: aSmall, wantRequest: map[string]int64{"a": 128 * mi},
				want: ancestors(request256, 0, map[string][2]int64{"a": {request256, 0}})},
			{kind: "postupdate", ctr: aSmall, want: ancestors(128*mi, 0, map[string][2]int64{"a": {128 * mi, 0}})},
		},
	}, {
		name: "an in-place grow raises ancestors before the update",
		ops: []op{
			{kind: "create", ctr: a},
			{kind: "update", ctr: aBig, wantRequest: map[string]int64{"a": 384 * mi},
				want: ancestors(384*mi, 0, map[string][2]int64{"a": {384 * mi, 0}})},
		},
	}, {
		name: "a bad annotation fails only its container",
		ops: []op{
			{kind: "create", ctr: aBad, wantErr: `pod team-a/pod-a container "app-a": annotation memqos.nri.io/memory-request "lots": not a quantity; allowed: a memory quantity`,
				wantRequest: map[string]int64{}, want: zero},
			{kind: "create", ctr: b, wantRequest: map[string]int64{"b": 128 * mi},
				want: ancestors(128*mi, 0, map[string][2]int64{"a": {0, 0}, "b": {128 * mi, 0}})},
		},
	}, {
		// cap: 0.05 × 8Gi = 409.6Mi; two 256Mi promises do not fit.
		name:   "node cap: first come first served, and resync keeps the oldest",
		config: "nodeProtectionFraction: 0.05\n",
		ops: []op{
			{kind: "create", ctr: a},
			{kind: "create", ctr: bBig, want: ancestors(request256, 0, map[string][2]int64{"a": {request256, 0}, "b": {0, 0}})},
			// b was created first: after a resync it is the one protected.
			{kind: "resync", list: []ctrSpec{a, bBig}, wantRequest: map[string]int64{"a": request256, "b": request256},
				want: ancestors(request256, 0, map[string][2]int64{"a": {0, 0}, "b": {request256, 0}})},
			// a reload keeps the resync's order.
			{kind: "reload", config: "nodeProtectionFraction: 0.05\n",
				want: ancestors(request256, 0, map[string][2]int64{"a": {0, 0}, "b": {request256, 0}})},
			{kind: "remove", ctr: bBig, want: ancestors(0, 0, map[string][2]int64{"a": {0, 0}, "b": {0, 0}})},
		},
	}, {
		name: "reload re-decides every container",
		ops: []op{
			{kind: "create", ctr: a},
			{kind: "reload", config: "classes:\n  latency-sensitive: {min: 0.5, swap: none}\n",
				want: ancestors(128*mi, 0, map[string][2]int64{"a": {128 * mi, 0}})},
			{kind: "reload", want: ancestors(request256, 0, map[string][2]int64{"a": {request256, 0}})},
		},
	}, {
		name: "resync decides only active containers and lowers what nobody needs",
		ops: []op{
			{kind: "create", ctr: a},
			{kind: "create", ctr: b},
			{kind: "resync", list: []ctrSpec{b}, inactive: []ctrSpec{a}, wantRequest: map[string]int64{"b": 128 * mi},
				want: ancestors(128*mi, 0, map[string][2]int64{"a": {0, 0}, "b": {128 * mi, 0}})},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 2, tc.config, "")
			for i, o := range tc.ops {
				f.apply(t, i, o)
			}
		})
	}
}

// TestCgroupV1 checks that the core writes the cgroup v1 values itself at
// start and at resync, and promises nothing to ancestors there.
func TestCgroupV1(t *testing.T) {
	a := ctrSpec{id: "a", pod: "a", class: "latency-sensitive", limit: limit512,
		annotations: map[string]string{"memqos.nri.io/memory-request": "256Mi"}}
	f := newFixture(t, 1, "", "")
	f.apply(t, 0, op{kind: "create", ctr: a, wantRequest: map[string]int64{"a": request256}})
	unlimited := "9223372036854771712"
	// Before start the cgroup is left alone (containerd creates it at start).
	f.check(map[string]string{a.rel() + "/memory.soft_limit_in_bytes": unlimited, a.rel() + "/memory.swappiness": "60"})
	f.apply(t, 1, op{kind: "start", ctr: a, want: map[string]string{
		a.rel() + "/memory.soft_limit_in_bytes": itoa(request256), a.rel() + "/memory.swappiness": "0",
		"/kubepods/burstable/poda/memory.soft_limit_in_bytes": unlimited,
	}})
	// Someone resets the soft limit; a resync writes it back.
	f.cgroupWrite(a.rel(), "memory.soft_limit_in_bytes", unlimited)
	f.apply(t, 2, op{kind: "resync", list: []ctrSpec{a}, wantRequest: map[string]int64{"a": request256},
		want: map[string]string{a.rel() + "/memory.soft_limit_in_bytes": itoa(request256)}})
}

func TestEventsBeforeConfiguration(t *testing.T) {
	n := node.New(node.Options{Log: logrus.New(), Host: node.Host{MemTotal: 8 * gi, PageSize: 4096}})
	a := ctrSpec{id: "a", pod: "a", class: "latency-sensitive", request: request256, limit: limit512}
	if _, err := n.Create(a.facts()); err == nil || !strings.Contains(err.Error(), "no configuration") {
		t.Errorf("Create before Configure: err = %v; want a no-configuration error", err)
	}
	if _, err := n.Resync([]node.Container{a.facts()}); err == nil {
		t.Error("Resync before Configure: no error")
	}
	n.Start(a.facts())
	n.Remove(a.facts())
	if n.Version() != 0 {
		t.Errorf("Version() = %d before Configure; want 0", n.Version())
	}
}
