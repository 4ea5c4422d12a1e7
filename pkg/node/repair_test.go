package node_test

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"nri-memqos/pkg/metrics"
)

// TestAncestorRepair is issue 10's item 6: an ancestor value reset by
// someone else (kubelet's QoS manager) is written back by the next check,
// counted, and a file reset again and again is reported as a fight.
func TestAncestorRepair(t *testing.T) {
	f := newFixture(t, 2, "", "")
	a := ctrSpec{id: "a", pod: "a", class: "burstable", request: request256, limit: limit512}
	f.apply(t, 0, op{kind: "create", ctr: a, want: ancestors(0, request256, map[string][2]int64{"a": {0, request256}})})

	now := time.Unix(1_000_000, 0)
	for i := range 5 {
		f.cgroupWrite("/kubepods/burstable", "memory.low", "0") // kubelet, every minute
		f.n.RepairAncestors(now.Add(time.Duration(i) * time.Minute))
		f.check(ancestors(0, request256, map[string][2]int64{"a": {0, request256}}))
	}
	if got := f.n.AncestorRepairs()["/kubepods/burstable"]; got != 5 {
		t.Errorf("AncestorRepairs[/kubepods/burstable] = %d; want 5", got)
	}
	var repaired, fights int
	for _, w := range f.warnings() {
		switch {
		case strings.Contains(w, "ancestor protection repaired"):
			repaired++
		case strings.Contains(w, "another agent keeps resetting /kubepods/burstable/memory.low") && strings.Contains(w, "TieredReservation"):
			fights++
		}
	}
	if repaired != 1 || fights != 1 {
		t.Errorf("warnings %q: %d repaired lines, %d fight lines; want 1 and 1", f.warnings(), repaired, fights)
	}

	// A value raised above the sum by someone else is theirs: kept, and
	// kept after the container goes.
	f.cgroupWrite("/kubepods", "memory.low", itoa(1*gi))
	f.n.RepairAncestors(now.Add(time.Hour))
	f.check(map[string]string{"/kubepods/memory.low": itoa(1 * gi)})
	f.n.Remove(a.facts())
	w := ancestors(0, 0, map[string][2]int64{"a": {0, 0}})
	w["/kubepods/memory.low"] = itoa(1 * gi)
	f.check(w)
}

// TestAncestorRepairV1 does nothing on cgroup v1 (no ancestor protection).
func TestAncestorRepairV1(t *testing.T) {
	f := newFixture(t, 1, "", "")
	f.n.RepairAncestors(time.Now())
	if got := f.n.AncestorRepairs(); len(got) != 0 {
		t.Errorf("AncestorRepairs = %v on cgroup v1; want none", got)
	}
}

// TestAncestorRepairMetric: the repairs show as
// nri_memqos_ancestor_repairs_total{path}.
func TestAncestorRepairMetric(t *testing.T) {
	f := newFixture(t, 2, "", "")
	a := ctrSpec{id: "a", pod: "a", class: "latency-sensitive", request: request256, limit: limit512}
	f.apply(t, 0, op{kind: "create", ctr: a})
	f.cgroupWrite("/kubepods/burstable", "memory.min", "0")
	f.cgroupWrite("/kubepods", "memory.min", "0")
	f.n.RepairAncestors(time.Now())
	m := metrics.New(f.n.MetricsSource())
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`nri_memqos_ancestor_repairs_total{path="/kubepods"} 1`,
		`nri_memqos_ancestor_repairs_total{path="/kubepods/burstable"} 1`,
		`nri_memqos_node_protection_promised_bytes 2.68435456e+08`,
		`nri_memqos_node_low_protection_cap_bytes 7.730941132e+09`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestAncestorCheckInterval: ancestorInterval, else every driftInterval;
// never with the reconciler off.
func TestAncestorCheckInterval(t *testing.T) {
	for _, tc := range []struct {
		extra string
		want  time.Duration
	}{
		{"", 2 * time.Second},
		{"reconciler:\n  ancestorInterval: 500ms\n", 500 * time.Millisecond},
		{"reconciler:\n  ancestorInterval: 0s\n  driftInterval: 7s\n", 7 * time.Second},
		{"reconciler:\n  enabled: false\n", 0},
	} {
		f := newFixture(t, 2, tc.extra, "")
		if got := f.n.AncestorCheckInterval(); got != tc.want {
			t.Errorf("%q: ancestors checked every %v; want %v", tc.extra, got, tc.want)
		}
	}
}

// TestRepairInProgress: an ancestor repair stuck on a file (a FIFO nobody
// writes) shows in RepairInProgress, for the liveness check.
func TestRepairInProgress(t *testing.T) {
	f := newFixture(t, 2, "", "")
	a := ctrSpec{id: "a", pod: "a", class: "latency-sensitive", request: request256, limit: limit512}
	f.apply(t, 0, op{kind: "create", ctr: a})
	if _, _, ok := f.n.RepairInProgress(); ok {
		t.Fatal("a repair in progress before any started")
	}
	fifo := filepath.Join(f.dir("/kubepods"), "memory.min")
	if err := os.Remove(fifo); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { f.n.RepairAncestors(time.Now()); close(done) }()
	var what string
	var ok bool
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !ok; time.Sleep(10 * time.Millisecond) {
		what, _, ok = f.n.RepairInProgress()
	}
	if !ok || what != "ancestor repair" {
		t.Errorf("RepairInProgress = %q, %v while stuck; want \"ancestor repair\", true", what, ok)
	}
	// Release the reader (each pass of the repair reads the file again):
	// feed the value to every read until the repair ends.
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			fd, err := unix.Open(fifo, unix.O_WRONLY|unix.O_NONBLOCK, 0)
			if err != nil {
				continue // no reader yet
			}
			_, _ = unix.Write(fd, []byte(itoa(request256)+"\n"))
			_ = unix.Close(fd)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the repair did not end once its read returned")
	}
	if _, _, ok := f.n.RepairInProgress(); ok {
		t.Error("a repair still in progress after it ended")
	}
}
