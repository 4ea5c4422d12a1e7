package node_test

import (
	"os"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"nri-memqos/pkg/node"
)

// v1Writes counts the core's "cgroup v1 values written" log entries.
func (f *fixture) v1Writes() int {
	n := 0
	for _, e := range f.logs.AllEntries() {
		if e.Message == "cgroup v1 values written" {
			n++
		}
	}
	return n
}

// realWarnings are the warnings beyond the one about the fake tree.
func (f *fixture) realWarnings() []string {
	var out []string
	for _, w := range f.warnings() {
		if !strings.Contains(w, "plain test tree") {
			out = append(out, w)
		}
	}
	return out
}

// TestPostCreate checks that the cgroup v1 values land at the first event
// where the container's cgroup exists: at PostCreate when the runtime made
// it at creation (CRI-O), else at Start (containerd), with no warning at a
// PostCreate that finds no cgroup, and never in a sibling cgroup.
func TestPostCreate(t *testing.T) {
	unlimited := "9223372036854771712"
	a := ctrSpec{id: "a", pod: "a", class: "latency-sensitive", limit: limit512,
		annotations: map[string]string{"memqos.nri.io/memory-request": "256Mi"}}
	written := map[string]string{a.rel() + "/memory.soft_limit_in_bytes": itoa(request256), a.rel() + "/memory.swappiness": "0"}
	untouched := map[string]string{a.rel() + "/memory.soft_limit_in_bytes": unlimited, a.rel() + "/memory.swappiness": "60"}
	// CRI-O's conmon cgroup next to the container's (conmon_cgroup = "pod").
	conmon := "/kubepods/burstable/poda/crio-conmon-a"
	conmonUntouched := map[string]string{conmon + "/memory.soft_limit_in_bytes": unlimited, conmon + "/memory.swappiness": "60"}

	t.Run("cgroup made at creation", func(t *testing.T) {
		f := newFixture(t, 1, "", "")
		f.cgroup(conmon)
		f.apply(t, 0, op{kind: "create", ctr: a, want: untouched})
		f.n.PostCreate(a.facts())
		f.check(written)
		f.check(conmonUntouched)
		if n := f.v1Writes(); n != 1 {
			t.Errorf("%d v1 writes logged after PostCreate; want 1", n)
		}
		f.n.Start(a.facts())
		f.check(written)
		if n := f.v1Writes(); n != 1 {
			t.Errorf("%d v1 writes logged after Start; want still 1 (nothing left to write)", n)
		}
		f.check(conmonUntouched)
		if w := f.realWarnings(); len(w) > 0 {
			t.Errorf("warnings: %q", w)
		}
	})

	t.Run("cgroup made at start", func(t *testing.T) {
		f := newFixture(t, 1, "", "")
		if _, err := f.n.Create(a.facts()); err != nil {
			t.Fatal(err)
		}
		f.n.PostCreate(a.facts())
		if _, err := os.Stat(f.dir(a.rel())); !os.IsNotExist(err) {
			t.Errorf("PostCreate without a cgroup: %s exists (%v); want nothing made", f.dir(a.rel()), err)
		}
		if w := f.realWarnings(); len(w) > 0 {
			t.Errorf("PostCreate without a cgroup warned: %q", w)
		}
		f.cgroup(a.rel())
		f.n.Start(a.facts())
		f.check(written)
		if w := f.realWarnings(); len(w) > 0 {
			t.Errorf("warnings: %q", w)
		}
	})

	t.Run("not managed", func(t *testing.T) {
		f := newFixture(t, 1, "", "")
		plain := a
		plain.class = ""
		f.apply(t, 0, op{kind: "create", ctr: plain, want: untouched})
		f.n.PostCreate(plain.facts())
		f.check(untouched)
	})

	t.Run("cgroup v2", func(t *testing.T) {
		f := newFixture(t, 2, "", "")
		f.apply(t, 0, op{kind: "create", ctr: a})
		before := f.read(a.rel(), "memory.min")
		f.n.PostCreate(a.facts())
		if got := f.read(a.rel(), "memory.min"); got != before {
			t.Errorf("PostCreate on cgroup v2 changed the container's memory.min: %s → %s", before, got)
		}
		for _, file := range []string{"memory.soft_limit_in_bytes", "memory.swappiness"} {
			if _, err := os.Stat(f.dir(a.rel()) + "/" + file); err == nil {
				t.Errorf("PostCreate on cgroup v2 wrote %s", file)
			}
		}
	})

	t.Run("before configuration", func(t *testing.T) {
		n := node.New(node.Options{Log: logrus.New(), Host: node.Host{MemTotal: 8 * gi, PageSize: 4096}})
		n.PostCreate(a.facts())
	})
}

// TestPostCreateSystemdScope checks the systemd driver's layout as CRI-O
// makes it: the values land in crio-<id>.scope under the pod slice, and
// crio-conmon-<id>.scope next to it keeps the kernel's defaults.
func TestPostCreateSystemdScope(t *testing.T) {
	f := newFixture(t, 1, "", "")
	unlimited := "9223372036854771712"
	const id = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
	pod := "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podu1.slice"
	ctr, conmon := pod+"/crio-"+id+".scope", pod+"/crio-conmon-"+id+".scope"
	f.cgroup(ctr)
	f.cgroup(conmon)
	c := ctrSpec{id: id, pod: "u1", class: "burstable", limit: limit512,
		annotations: map[string]string{"memqos.nri.io/memory-request": "256Mi"}}.facts()
	c.Pod.CgroupParent = "kubepods-burstable-podu1.slice"
	c.CgroupsPath = "kubepods-burstable-podu1.slice:crio:" + id
	if _, err := f.n.Create(c); err != nil {
		t.Fatal(err)
	}
	f.n.PostCreate(c)
	f.check(map[string]string{
		ctr + "/memory.soft_limit_in_bytes":    itoa(request256),
		ctr + "/memory.swappiness":             "60",
		conmon + "/memory.soft_limit_in_bytes": unlimited,
		conmon + "/memory.swappiness":          "60",
		pod + "/memory.soft_limit_in_bytes":    unlimited,
	})
	if w := f.realWarnings(); len(w) > 0 {
		t.Errorf("warnings: %q", w)
	}
}
