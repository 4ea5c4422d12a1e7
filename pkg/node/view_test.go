package node_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"nri-memqos/pkg/config"
	"nri-memqos/pkg/metrics"
)

// scrapeCore serves /metrics over the core's metrics source.
func scrapeCore(t *testing.T, m *metrics.Metrics) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	b, err := io.ReadAll(rec.Result().Body)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Code, string(b)
}

// listed returns the IDs of the containers the metrics see.
func (f *fixture) listed() []string {
	var ids []string
	for _, c := range f.n.MetricsSource().Containers() {
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	return ids
}

// TestMetricsLeftoverCreated: containerd sends no StopContainer when a
// task fails to start (NewTask), so a container left CREATED stays known
// next to its successor of the same namespace, pod and container name. The
// scrape succeeds with both, told apart by container_id (it failed with
// 500 before); a minute after its creation the leftover leaves the
// per-container series, while its successor, started, stays.
func TestMetricsLeftoverCreated(t *testing.T) {
	f := newFixture(t, 2, "", "")
	now := time.Unix(1_000_000, 0)
	f.n.SetLifecycleClock(func() time.Time { return now })
	m := metrics.New(f.n.MetricsSource())

	const oldID, newID = "0000000000000000000000000000000000000000000000000000000000000001", "1111111111111111111111111111111111111111111111111111111111111112"
	old := ctrSpec{id: oldID, pod: "a", class: config.ClassBurstable, request: request256, limit: limit512}.facts()
	old.Ctr.Name = "app"
	f.cgroup(old.CgroupsPath)
	if _, err := f.n.Create(old); err != nil {
		t.Fatal(err)
	}
	// Its start fails: no StartContainer, no StopContainer. Kubelet
	// creates the next attempt.
	now = now.Add(10 * time.Second)
	succ := ctrSpec{id: newID, pod: "a", class: config.ClassBurstable, request: request256, limit: limit512}.facts()
	succ.Ctr.Name = "app"
	f.cgroup(succ.CgroupsPath)
	if _, err := f.n.Create(succ); err != nil {
		t.Fatal(err)
	}
	f.n.Start(succ)

	code, body := scrapeCore(t, m)
	if code != http.StatusOK {
		t.Fatalf("/metrics with two containers of the same name: HTTP %d: %s", code, body)
	}
	for _, id := range []string{oldID, newID} {
		want := `container_id="` + id[:12] + `"`
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no series with %s", want)
		}
	}
	if got, want := f.listed(), []string{oldID, newID}; !slices.Equal(got, want) {
		t.Errorf("within a minute of its creation: metrics list %v, want %v (a container about to start)", got, want)
	}

	now = now.Add(51 * time.Second) // the leftover's creation is 61 s ago
	if got, want := f.listed(), []string{newID}; !slices.Equal(got, want) {
		t.Errorf("a minute after: metrics list %v, want only the started successor %v "+
			"(Create must call n.noteCreated and Start n.noteStarted: see pkg/node/lifecycle.go)", got, want)
	}
	if code, body := scrapeCore(t, m); code != http.StatusOK || strings.Contains(body, oldID[:12]) {
		t.Errorf("/metrics a minute after: HTTP %d, leftover present %v", code, strings.Contains(body, oldID[:12]))
	}
	// The successor, started long ago, stays; so does one started late.
	now = now.Add(time.Hour)
	if got, want := f.listed(), []string{newID}; !slices.Equal(got, want) {
		t.Errorf("an hour after: metrics list %v, want %v", got, want)
	}
	f.n.Start(old)
	if got, want := f.listed(), []string{oldID, newID}; !slices.Equal(got, want) {
		t.Errorf("the leftover started after all: metrics list %v, want %v", got, want)
	}
	f.n.Remove(old)
	if got, want := f.listed(), []string{newID}; !slices.Equal(got, want) {
		t.Errorf("after Remove: metrics list %v, want %v", got, want)
	}
}
