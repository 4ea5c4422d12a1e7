package integration

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"nri-memqos/test/internal/cgtest"
	"nri-memqos/test/internal/proc"
	"nri-memqos/test/internal/wait"
)

// metric family names, without the nri_memqos_ prefix.
const (
	famMin       = "container_memory_min_bytes"
	famLow       = "container_memory_low_bytes"
	famHigh      = "container_memory_high_bytes"
	famUsage     = "container_memory_usage_bytes"
	famReclaimed = "container_reclaimed_bytes_total"
	famRaises    = "container_guard_raises_total"
	famRestores  = "container_guard_restores_total"
	famOOMKills  = "container_oom_kills_total"
	famThrottle  = "container_throttle_events_total"
	famDrift     = "container_drift_repairs_total"
	famPromised  = "node_protection_promised_bytes"
	famCap       = "node_protection_cap_bytes"
	famEvents    = "event_duration_seconds"
)

// get fetches url and returns status and body.
func get(url string) (int, string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	rsp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer rsp.Body.Close()
	b, err := io.ReadAll(rsp.Body)
	return rsp.StatusCode, string(b), err
}

// scrape reads and parses /metrics (Prometheus text format).
func scrape(addr string) (map[string]*dto.MetricFamily, error) {
	code, body, err := get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("/metrics: HTTP %d: %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(strings.NewReader(body))
}

func mustScrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := scrape(addr)
	if err != nil {
		t.Fatalf("scraping /metrics: %v", err)
	}
	return fams
}

func labelMap(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// sample returns the value of the series of family nri_memqos_<fam> with
// exactly the given labels; a complaint when there is none.
func sample(fams map[string]*dto.MetricFamily, fam string, labels map[string]string) (float64, string) {
	mf := fams["nri_memqos_"+fam]
	if mf == nil {
		return 0, fmt.Sprintf("no metric family nri_memqos_%s", fam)
	}
	var seen []string
	for _, m := range mf.GetMetric() {
		ls := labelMap(m)
		if !maps.Equal(ls, labels) {
			seen = append(seen, fmtMap(ls))
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), ""
		case m.Counter != nil:
			return m.GetCounter().GetValue(), ""
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), ""
		default:
			return 0, fmt.Sprintf("nri_memqos_%s%s is neither a gauge nor a counter", fam, fmtMap(labels))
		}
	}
	return 0, fmt.Sprintf("nri_memqos_%s has no series %s; it has %v", fam, fmtMap(labels), seen)
}

// checkSample asserts one series' value.
func checkSample(t *testing.T, fams map[string]*dto.MetricFamily, fam string, labels map[string]string, want float64) {
	t.Helper()
	if msg := expectSample(fams, fam, labels, want); msg != "" {
		t.Error(msg)
	}
}

func expectSample(fams map[string]*dto.MetricFamily, fam string, labels map[string]string, want float64) string {
	got, msg := sample(fams, fam, labels)
	if msg != "" {
		return msg
	}
	if got != want {
		return fmt.Sprintf("nri_memqos_%s%s = %v, want %v", fam, fmtMap(labels), got, want)
	}
	return ""
}

// checkType asserts a family's type.
func checkType(t *testing.T, fams map[string]*dto.MetricFamily, fam string, want dto.MetricType) {
	t.Helper()
	if mf := fams["nri_memqos_"+fam]; mf != nil && mf.GetType() != want {
		t.Errorf("nri_memqos_%s has type %v, want %v", fam, mf.GetType(), want)
	}
}

// ctrLabels are the labels of a container's series: pod name, container
// "app" (as deploy names it), the container ID's first 12 characters,
// class, plus extra name/value pairs.
func ctrLabels(w workload, extra ...string) map[string]string {
	m := map[string]string{"namespace": testNamespace, "pod": w.name, "container": "app", "container_id": w.id[:min(len(w.id), 12)],
		"class": w.labels[labelClass]}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

// memEvents are the counters of a fake memory.events file.
type memEvents struct{ high, max, oom, oomKill int }

func (e *env) ctrDir(uid, id string) string {
	return filepath.Join(e.cgRoot, "kubepods", "burstable", "pod"+uid, id)
}

// replaceFile replaces a file of the fake tree at once (a new file renamed
// over it), so that the plugin, reading it meanwhile, never sees it
// truncated or half written as it could with os.WriteFile.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".new"
	cgtest.Write(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func (e *env) writeEvents(uid, id string, ev memEvents) {
	e.t.Helper()
	replaceFile(e.t, filepath.Join(e.ctrDir(uid, id), "memory.events"),
		fmt.Sprintf("low 0\nhigh %d\nmax %d\noom %d\noom_kill %d\noom_group_kill 0\n", ev.high, ev.max, ev.oom, ev.oomKill))
}

// deployRunning deploys w as deploy does, with the container's cgroup laid
// out as a running container's: the values the runtime wrote from the
// creation adjustment (w.want), memory.current = usage and quiet
// memory.events. The files exist before the plugin learns of the container,
// so that no reconciler tick sees it half made.
func (e *env) deployRunning(t *testing.T, w workload, usage int64) {
	t.Helper()
	dir := e.ctrDir(w.uid, w.id)
	for k, v := range w.want {
		cgtest.Write(t, filepath.Join(dir, k), v+"\n")
	}
	cgtest.Write(t, filepath.Join(dir, "memory.current"), cgtest.Itoa(usage)+"\n")
	e.writeEvents(w.uid, w.id, memEvents{})
	e.deploy(t, w)
}

// TestMetricsEndpoint scrapes /metrics while a latency-sensitive and a
// burstable container run under a fast reconciler, checks every family with
// its labels and values, follows an OOM kill and a drift repair into the
// counters, and checks /healthz and /readyz, the latter going 503 once the
// runtime is gone.
func TestMetricsEndpoint(t *testing.T) {
	addr := proc.FreeAddr(t)
	e, p := startExternal(t, 2, "reconciler:\n  interval: 100ms\n  driftInterval: 100ms\n",
		"-metrics-address", addr, "-reconnect-max", "500ms")

	if code, body, err := get("http://" + addr + "/healthz"); err != nil || code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz = %d %q (%v), want 200 \"ok\"", code, body, err)
	}
	if code, body, err := get("http://" + addr + "/readyz"); err != nil || code != http.StatusOK {
		t.Errorf("/readyz after synchronization = %d %q (%v), want 200", code, body, err)
	}

	ls := workload{
		name: "ls", uid: "d1b2c3d4-0001-4000-8000-000000000001", id: "ctr-ls",
		labels: map[string]string{labelClass: "latency-sensitive"}, annotations: map[string]string{annRequest: "256Mi"},
		kubelet: kubeletUnified,
		want:    map[string]string{"memory.min": "268435456", "memory.swap.max": "0"},
	}
	bu := workload{
		name: "bu", uid: "d1b2c3d4-0002-4000-8000-000000000002", id: "ctr-bu",
		labels: map[string]string{labelClass: "burstable"}, annotations: map[string]string{annRequest: "256Mi"},
		kubelet: kubeletUnified,
		want:    map[string]string{"memory.low": "268435456", "memory.high": cgtest.Itoa(burstableHigh512Mi)},
	}
	// Far below every watermark and the guard's threshold: the reconciler
	// only reads.
	const lsUsage, buUsage = 100 * mi, 200 * mi
	e.deployRunning(t, ls, lsUsage)
	e.deployRunning(t, bu, buUsage)

	// The reconciler has ticked over both containers once usage shows.
	var fams map[string]*dto.MetricFamily
	wait.Until(t, waitTimeout, func() string {
		var err error
		if fams, err = scrape(addr); err != nil {
			return err.Error()
		}
		if msg := expectSample(fams, famUsage, ctrLabels(ls), float64(lsUsage)); msg != "" {
			return msg
		}
		return expectSample(fams, famUsage, ctrLabels(bu), float64(buUsage))
	})
	if fams == nil {
		t.FailNow()
	}

	// What the plugin decided.
	checkSample(t, fams, famMin, ctrLabels(ls), 268435456)
	checkSample(t, fams, famLow, ctrLabels(ls), 0)
	checkSample(t, fams, famMin, ctrLabels(bu), 0)
	checkSample(t, fams, famLow, ctrLabels(bu), 268435456)
	checkSample(t, fams, famHigh, ctrLabels(bu), burstableHigh512Mi)
	if _, msg := sample(fams, famHigh, ctrLabels(ls)); msg == "" {
		t.Errorf("nri_memqos_%s has a series for the latency-sensitive container, which has no memory.high", famHigh)
	}
	// What the reconciler did: nothing yet.
	for _, w := range []workload{ls, bu} {
		for _, reason := range []string{"watermark", "node-pressure", "proactive"} {
			checkSample(t, fams, famReclaimed, ctrLabels(w, "reason", reason), 0)
		}
		checkSample(t, fams, famRaises, ctrLabels(w), 0)
		checkSample(t, fams, famRestores, ctrLabels(w), 0)
		checkSample(t, fams, famOOMKills, ctrLabels(w), 0)
		for _, ev := range []string{"high", "max", "oom"} {
			checkSample(t, fams, famThrottle, ctrLabels(w, "event", ev), 0)
		}
		checkSample(t, fams, famDrift, ctrLabels(w), 0)
	}
	// Node-wide protection.
	checkSample(t, fams, famPromised, map[string]string{}, 268435456)
	checkSample(t, fams, famCap, map[string]string{}, float64(int64(0.75*float64(cgtest.Meminfo(t, "MemTotal")))))

	for fam, typ := range map[string]dto.MetricType{
		famMin: dto.MetricType_GAUGE, famLow: dto.MetricType_GAUGE, famHigh: dto.MetricType_GAUGE, famUsage: dto.MetricType_GAUGE,
		famReclaimed: dto.MetricType_COUNTER, famRaises: dto.MetricType_COUNTER, famRestores: dto.MetricType_COUNTER,
		famOOMKills: dto.MetricType_COUNTER, famThrottle: dto.MetricType_COUNTER, famDrift: dto.MetricType_COUNTER,
		famPromised: dto.MetricType_GAUGE, famCap: dto.MetricType_GAUGE, famEvents: dto.MetricType_HISTOGRAM,
	} {
		if fams["nri_memqos_"+fam] == nil {
			t.Errorf("no metric family nri_memqos_%s", fam)
		}
		checkType(t, fams, fam, typ)
	}

	// Event timings.
	counts := map[string]uint64{}
	if mf := fams["nri_memqos_"+famEvents]; mf != nil {
		for _, m := range mf.GetMetric() {
			ls := labelMap(m)
			if len(ls) != 1 || ls["event"] == "" {
				t.Errorf("nri_memqos_%s series with labels %s, want only \"event\"", famEvents, fmtMap(ls))
			}
			counts[ls["event"]] = m.GetHistogram().GetSampleCount()
		}
	}
	if counts["CreateContainer"] < 2 || counts["Synchronize"] < 1 {
		t.Errorf("nri_memqos_%s counts %v, want CreateContainer >= 2 and Synchronize >= 1", famEvents, counts)
	}

	// The kernel counts memory events: the next tick turns them into the
	// counters.
	e.writeEvents(ls.uid, ls.id, memEvents{high: 3, max: 2, oom: 1, oomKill: 1})
	wait.Until(t, waitTimeout, func() string {
		fams, err := scrape(addr)
		if err != nil {
			return err.Error()
		}
		for _, c := range []struct {
			fam    string
			labels map[string]string
			want   float64
		}{
			{famOOMKills, ctrLabels(ls), 1},
			{famThrottle, ctrLabels(ls, "event", "high"), 3},
			{famThrottle, ctrLabels(ls, "event", "max"), 2},
			{famThrottle, ctrLabels(ls, "event", "oom"), 1},
			{famOOMKills, ctrLabels(bu), 0},
		} {
			if msg := expectSample(fams, c.fam, c.labels, c.want); msg != "" {
				return msg
			}
		}
		return ""
	})
	if !strings.Contains(p.log.String(), "container OOM-killed") {
		t.Errorf("plugin log does not report the OOM kill")
	}

	// Someone else resets the burstable container's memory.low: the drift
	// repair writes it back and counts it.
	lowFile := filepath.Join(e.ctrDir(bu.uid, bu.id), "memory.low")
	replaceFile(t, lowFile, "0\n")
	wait.Until(t, waitTimeout, func() string {
		if got := cgtest.Read(t, lowFile); got != "268435456" {
			return fmt.Sprintf("%s = %q, want the drift repair to restore 268435456", lowFile, got)
		}
		fams, err := scrape(addr)
		if err != nil {
			return err.Error()
		}
		return expectSample(fams, famDrift, ctrLabels(bu), 1)
	})

	// A removed container's series go, and its promise with it.
	e.remove(ls.id)
	fams = mustScrape(t, addr)
	for _, fam := range []string{famMin, famLow, famUsage, famOOMKills, famDrift} {
		if _, msg := sample(fams, fam, ctrLabels(ls)); msg == "" {
			t.Errorf("nri_memqos_%s still has a series for the removed container", fam)
		}
	}
	checkSample(t, fams, famMin, ctrLabels(bu), 0)
	checkSample(t, fams, famPromised, map[string]string{}, 0)

	// The runtime goes away: the plugin is alive but no longer ready.
	e.stopNRI()
	if n := e.dropConnections(); n == 0 {
		t.Fatal("found no plugin connection of the stopped adaptation to drop")
	}
	wait.Until(t, waitTimeout, func() string {
		code, body, err := get("http://" + addr + "/readyz")
		if err != nil {
			return err.Error()
		}
		if code != http.StatusServiceUnavailable {
			return fmt.Sprintf("/readyz without a runtime = %d %q, want 503", code, body)
		}
		return ""
	})
	if code, body, err := get("http://" + addr + "/healthz"); err != nil || code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz without a runtime = %d %q (%v), want 200 \"ok\"", code, body, err)
	}
	if p.Exited() {
		t.Fatalf("plugin exited: %v", p.Err())
	}

	// The runtime is back: ready again once synchronized.
	e.mustStartNRI()
	e.waitSync(p)
	if code, body, err := get("http://" + addr + "/readyz"); err != nil || code != http.StatusOK {
		t.Errorf("/readyz after the runtime came back = %d %q (%v), want 200", code, body, err)
	}
}

//
// Configuration reload.
//

// configText is what env.writeConfig writes.
func (e *env) configText(version int, extra string) string {
	return fmt.Sprintf("cgroupVersion: %d\ncgroupRoot: %s\n%s", version, e.cgRoot, extra)
}

// replaceConfig replaces the file at path as editors do: write a temporary
// file beside it, then rename it over the original.
func (e *env) replaceConfig(path string, version int, extra string) {
	e.t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".swp")
	if err := os.WriteFile(tmp, []byte(e.configText(version, extra)), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		e.t.Fatal(err)
	}
}

// waitLog waits until the plugin log holds more than n lines containing
// every one of words, and returns the last such line.
func waitLog(t *testing.T, p *pluginProc, n int, words ...string) (string, bool) {
	t.Helper()
	var last string
	ok := wait.Until(t, waitTimeout, func() string {
		lines := p.log.LinesWith(words...)
		if len(lines) > n {
			last = lines[len(lines)-1]
			return ""
		}
		return fmt.Sprintf("plugin log has %d lines with %q, want more than %d", len(lines), words, n)
	})
	return last, ok
}

// lsWorkload is a latency-sensitive workload asking 256Mi, whose creation
// adjustment is want.
func lsWorkload(name, uid, id string, want map[string]string) workload {
	return workload{
		name: name, uid: uid, id: id,
		labels: map[string]string{labelClass: "latency-sensitive"}, annotations: map[string]string{annRequest: "256Mi"},
		kubelet: kubeletUnified, want: want,
	}
}

// The latency-sensitive class as reloaded: it replaces the built-in class
// whole, so only memory.min remains.
const (
	fastReconciler = "reconciler:\n  interval: 50ms\n  driftInterval: 100ms\n"
	lsHalf         = fastReconciler + "classes:\n  latency-sensitive:\n    min: 0.5\n"
	lsQuarter      = fastReconciler + "classes:\n  latency-sensitive:\n    min: 0.25\n"
	half256Mi      = "134217728"
	quarter256Mi   = "67108864"
)

var lsBuiltin = map[string]string{"memory.min": "268435456", "memory.swap.max": "0"}

// TestReloadOnFileChange changes the configuration file under a running
// plugin: in place, by rename, with an invalid file and by SIGHUP. New
// containers get the configuration in force at once; running ones get it
// from the drift repair, their ancestors at once.
func TestReloadOnFileChange(t *testing.T) {
	e := newEnv(t)
	e.mustStartNRI()
	cfg := e.writeConfig("memqos.yaml", 2, "")
	p := e.startPlugin(cfg, "-metrics-address", proc.FreeAddr(t))
	e.waitSync(p)

	old := lsWorkload("old", "e1b2c3d4-0001-4000-8000-000000000001", "ctr-old", lsBuiltin)
	e.deployRunning(t, old, 100*mi)
	oldMin := filepath.Join(e.ctrDir(old.uid, old.id), "memory.min")
	checkFiles(t, e.ancestorFiles(old.uid, "268435456", "0", "268435456", "0"))

	// 1. Written in place.
	e.writeConfig("memqos.yaml", 2, lsHalf)
	if _, ok := waitLog(t, p, 0, "configuration reloaded"); !ok {
		t.FailNow()
	}
	// The ancestors follow at once, the running container's own memory.min
	// with the next drift repair.
	checkFiles(t, e.ancestorFiles(old.uid, half256Mi, "0", half256Mi, "0"))
	wait.Until(t, waitTimeout, func() string {
		if got := cgtest.Read(t, oldMin); got != half256Mi {
			return fmt.Sprintf("running container's %s = %q, want %s", oldMin, got, half256Mi)
		}
		return ""
	})
	n1 := lsWorkload("new1", "e1b2c3d4-0002-4000-8000-000000000002", "ctr-new1", map[string]string{"memory.min": half256Mi})
	e.deployRunning(t, n1, 100*mi)
	checkFiles(t, e.ancestorFiles(n1.uid, half256Mi, "0", "268435456", "0"))

	// 2. Replaced by rename, as editors save.
	reloads := len(p.log.LinesWith("configuration reloaded"))
	e.replaceConfig(cfg, 2, lsQuarter)
	if _, ok := waitLog(t, p, reloads, "configuration reloaded"); !ok {
		t.FailNow()
	}
	checkFiles(t, e.ancestorFiles(old.uid, quarter256Mi, "0", "134217728", "0"))
	checkFiles(t, e.ancestorFiles(n1.uid, quarter256Mi, "0", "134217728", "0"))
	n1Min := filepath.Join(e.ctrDir(n1.uid, n1.id), "memory.min")
	wait.Until(t, waitTimeout, func() string {
		for _, f := range []string{oldMin, n1Min} {
			if got := cgtest.Read(t, f); got != quarter256Mi {
				return fmt.Sprintf("running container's %s = %q, want %s", f, got, quarter256Mi)
			}
		}
		return ""
	})
	n2 := lsWorkload("new2", "e1b2c3d4-0003-4000-8000-000000000003", "ctr-new2", map[string]string{"memory.min": quarter256Mi})
	e.deployRunning(t, n2, 100*mi)

	// 3. An invalid file is rejected with its reason; the previous
	// configuration stays.
	reloads = len(p.log.LinesWith("configuration reloaded"))
	e.writeConfig("memqos.yaml", 2, lsHalf+"maxProtectionFraction: 2\n")
	line, ok := waitLog(t, p, 0, "configuration rejected")
	if !ok {
		t.FailNow()
	}
	for _, want := range []string{"maxProtectionFraction", "file changed"} {
		if !strings.Contains(line, want) {
			t.Errorf("rejection %q does not contain %q", line, want)
		}
	}
	n3 := lsWorkload("new3", "e1b2c3d4-0004-4000-8000-000000000004", "ctr-new3", map[string]string{"memory.min": quarter256Mi})
	e.deployRunning(t, n3, 100*mi)
	// SIGHUP reads the same invalid file: rejected again.
	if err := syscall.Kill(p.Pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if line, ok := waitLog(t, p, 0, "configuration rejected", "SIGHUP"); ok && !strings.Contains(line, "maxProtectionFraction") {
		t.Errorf("rejection %q does not contain %q", line, "maxProtectionFraction")
	}
	if n := len(p.log.LinesWith("configuration reloaded")); n != reloads {
		t.Errorf("plugin reloaded %d times on an invalid file", n-reloads)
	}
	checkFiles(t, map[string]string{oldMin: quarter256Mi, n1Min: quarter256Mi})

	// 4. A valid file again, then SIGHUP: each reloads.
	e.writeConfig("memqos.yaml", 2, lsHalf)
	if _, ok := waitLog(t, p, reloads, "configuration reloaded"); !ok {
		t.FailNow()
	}
	reloads = len(p.log.LinesWith("configuration reloaded"))
	if err := syscall.Kill(p.Pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, p, reloads, "configuration reloaded")
	n4 := lsWorkload("new4", "e1b2c3d4-0005-4000-8000-000000000005", "ctr-new4", map[string]string{"memory.min": half256Mi})
	e.deployRunning(t, n4, 100*mi)
	if p.Exited() {
		t.Errorf("plugin exited: %v", p.Err())
	}
}

// TestReloadSurvivesRuntimeRestart reloads the configuration file, then
// restarts the runtime: the plugin reconnects and must keep the reloaded
// configuration, not fall back to the one the file held at start.
func TestReloadSurvivesRuntimeRestart(t *testing.T) {
	e := newEnv(t)
	e.mustStartNRI()
	cfg := e.writeConfig("memqos.yaml", 2, "")
	p := e.startPlugin(cfg, "-reconnect-max", "500ms", "-metrics-address", proc.FreeAddr(t))
	e.waitSync(p)

	e.writeConfig("memqos.yaml", 2, lsHalf)
	if _, ok := waitLog(t, p, 0, "configuration reloaded"); !ok {
		t.FailNow()
	}
	before := lsWorkload("before", "f1b2c3d4-0001-4000-8000-000000000001", "ctr-before", map[string]string{"memory.min": half256Mi})
	e.deployRunning(t, before, 100*mi)

	e.stopNRI()
	if n := e.dropConnections(); n == 0 {
		t.Fatal("found no plugin connection of the stopped adaptation to drop")
	}
	e.mustStartNRI()
	ev := e.waitSync(p)
	checkSyncUpdates(t, ev.Updates, before)
	checkFiles(t, e.ancestorFiles(before.uid, half256Mi, "0", half256Mi, "0"))

	after := lsWorkload("after", "f1b2c3d4-0002-4000-8000-000000000002", "ctr-after", map[string]string{"memory.min": half256Mi})
	e.deployRunning(t, after, 100*mi)
}

// TestReloadNodeProtectionCap reloads a configuration that halves the
// protection of two running latency-sensitive containers and tightens the
// node protection cap to 320Mi: together they now promise 256Mi, within the
// cap, so both keep (halved) protection, as a plugin started with this
// configuration would give them.
func TestReloadNodeProtectionCap(t *testing.T) {
	e := newEnv(t)
	e.mustStartNRI()
	addr := proc.FreeAddr(t)
	cfg := e.writeConfig("memqos.yaml", 2, "")
	p := e.startPlugin(cfg, "-metrics-address", addr)
	e.waitSync(p)

	a := lsWorkload("cap-a", "c1b2c3d4-0001-4000-8000-000000000001", "ctr-a", lsBuiltin)
	b := lsWorkload("cap-b", "c1b2c3d4-0002-4000-8000-000000000002", "ctr-b", lsBuiltin)
	e.deployRunning(t, a, 100*mi)
	e.deployRunning(t, b, 100*mi)

	capBytes := 320 * mi
	fraction := strconv.FormatFloat(float64(capBytes)/float64(cgtest.Meminfo(t, "MemTotal")), 'g', -1, 64)
	e.writeConfig("memqos.yaml", 2, lsHalf+"nodeProtectionFraction: "+fraction+"\n")
	if _, ok := waitLog(t, p, 0, "configuration reloaded"); !ok {
		t.FailNow()
	}
	for _, l := range p.log.LinesWith("node protection cap reached") {
		t.Errorf("plugin refused protection although 256Mi fit the 320Mi cap: %s", l)
	}
	want := map[string]string{}
	maps.Copy(want, e.ancestorFiles(a.uid, half256Mi, "0", "268435456", "0"))
	maps.Copy(want, e.ancestorFiles(b.uid, half256Mi, "0", "268435456", "0"))
	checkFiles(t, want)
	fams := mustScrape(t, addr)
	for _, w := range []workload{a, b} {
		checkSample(t, fams, famMin, ctrLabels(w), 134217728)
	}
	checkSample(t, fams, famPromised, map[string]string{}, 268435456)
	// The containers' own memory.min follow with the drift repair.
	wait.Until(t, waitTimeout, func() string {
		for _, w := range []workload{a, b} {
			f := filepath.Join(e.ctrDir(w.uid, w.id), "memory.min")
			if got := cgtest.Read(t, f); got != half256Mi {
				return fmt.Sprintf("%s = %q, want %s", f, got, half256Mi)
			}
		}
		return ""
	})
}
