package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"nri-memqos/test/internal/cgtest"
	"nri-memqos/test/internal/wait"
)

// Issue 10, "Proof beyond the examples": kubelet's QoS manager (MemoryQoS
// gate, without TieredReservation) resets the QoS-level memory.min and
// memory.low to 0; the plugin's ancestor repair puts them back within
// reconciler.ancestorInterval, counts each repair in
// nri_memqos_ancestor_repairs_total{path} and logs the first repair of each
// file only.

const (
	// repairInterval is the plugin's reconciler.ancestorInterval here (the
	// default, set explicitly).
	repairInterval = 2 * time.Second
	// repairDeadline is how soon after a reset protection must be back.
	repairDeadline = repairInterval + time.Second
	// resetPeriod is how often the fake QoS manager resets the files.
	resetPeriod = 5 * time.Second
	// resets is how many resets the scenario makes.
	resets = 5
	// qosCgroup is the QoS-level cgroup the scenario's Burstable pods sit
	// under (cgroupfs driver: /kubepods/burstable/pod<uid>).
	qosCgroup = "/kubepods/burstable"

	ancestorRepairConfig = "reconciler:\n  ancestorInterval: 2s\n"
	ancestorRepairMetric = "nri_memqos_ancestor_repairs_total"
	repairedLogMsg       = "ancestor protection repaired"
	fightLogMsg          = "another agent keeps resetting"
)

// resetResult is what one reset of one file found and how long the plugin
// took to put it back.
type resetResult struct {
	n        int // reset number, from 1
	file     string
	found    int64         // the value the reset overwrote with 0
	recovery time.Duration // from the write of 0 to the first read of the target; -1: not back
	last     int64         // the last value read
	err      error
}

// TestAncestorRepairV2 plays kubelet's QoS manager against the plugin on
// cgroup v2 (inside the VM of TestCgroupV2VM): every 5 s it writes 0 to
// /kubepods/burstable/memory.min and memory.low while a latency-sensitive and
// a burstable pod run below it, and checks that protection is back within
// ancestorInterval + 1 s each time, that the metric counts the repairs and
// that the log names each file once.
func TestAncestorRepairV2(t *testing.T) {
	e := loadEnv(t)
	if e.version != 2 {
		t.Log("ancestor protection is cgroup v2's: this runs inside the VM of TestCgroupV2VM")
		return
	}
	start := time.Now()
	removeKubepodsCgroups()
	r := newRuntime(t, e)
	r.importImage()
	p := r.startPlugin(ancestorRepairConfig)

	// Two Burstable pods under /kubepods/burstable: one promises
	// memory.min, the other memory.low; distinct requests so that each sum
	// is told apart.
	ls := pod{name: "ls", uid: "00000000-0000-0000-0000-000000000a01", qos: "burstable",
		labels:      map[string]string{"memqos.nri.io/class": "latency-sensitive"},
		annotations: map[string]string{"memqos.nri.io/memory-request": "128Mi"}}
	bu := pod{name: "bu", uid: "00000000-0000-0000-0000-000000000a02", qos: "burstable",
		labels:      map[string]string{"memqos.nri.io/class": "burstable"},
		annotations: map[string]string{"memqos.nri.io/memory-request": "192Mi"}}
	var ctrDirs []string
	for _, pd := range []pod{ls, bu} {
		id := r.runPod(pd)
		ctr := r.runContainer(id, pd, container{name: "app", limit: limit, oomScoreAdj: 900})
		ctrDirs = append(ctrDirs, r.cgroupDir(ctr))
	}
	cgtest.CheckFiles(t, ctrDirs[0], map[string]string{"memory.min": cgtest.Itoa(128 * mi), "memory.low": "0"})
	cgtest.CheckFiles(t, ctrDirs[1], map[string]string{"memory.min": "0", "memory.low": cgtest.Itoa(192 * mi)})
	// The expected sums: what the containers below were promised (the QoS
	// cgroup is fresh, so its baseline is 0).
	want := map[string]int64{}
	for _, d := range ctrDirs {
		for _, f := range []string{"memory.min", "memory.low"} {
			want[f] += cgtest.ReadInt(t, d, f)
		}
	}
	qosDir := memoryDir(2, qosCgroup)
	wait.For(t, 10*time.Second, fmt.Sprintf("%s to hold memory.min %d and memory.low %d", qosCgroup, want["memory.min"], want["memory.low"]), func() bool {
		return cgtest.ReadInt(t, qosDir, "memory.min") == want["memory.min"] && cgtest.ReadInt(t, qosDir, "memory.low") == want["memory.low"]
	})
	before, _ := ancestorRepairs(t) // no series before the first repair
	repairs0 := before[qosCgroup]
	setup := time.Since(start)

	// The fake QoS manager: every resetPeriod it writes 0 to both files,
	// then polls them every 100 ms until they hold the sums again.
	results := make(chan []resetResult, resets)
	go func() {
		defer close(results)
		begin := time.Now()
		for i := 1; i <= resets; i++ {
			time.Sleep(time.Until(begin.Add(time.Duration(i-1) * resetPeriod)))
			results <- resetAndWatch(i, qosDir, want, resetPeriod-500*time.Millisecond)
		}
	}()
	var all []resetResult
	timeout := time.After(time.Duration(resets+2) * resetPeriod)
collect:
	for {
		select {
		case rs, ok := <-results:
			if !ok {
				break collect
			}
			all = append(all, rs...)
		case <-timeout:
			t.Fatalf("the fake QoS manager did not finish %d resets in %v", resets, time.Duration(resets+2)*resetPeriod)
		}
	}

	// Protection is back within ancestorInterval + 1 s after every reset.
	found := 0
	var times []string
	var worst time.Duration
	for _, rr := range all {
		switch {
		case rr.err != nil:
			t.Errorf("reset %d of %s: %v", rr.n, rr.file, rr.err)
			continue
		case rr.found == 0:
			t.Errorf("reset %d of %s found it at 0: not repaired since the reset before", rr.n, rr.file)
			continue
		}
		found++
		if rr.recovery < 0 {
			t.Errorf("reset %d: %s%s = %d, not back at %d %v after the reset (ancestorInterval %v)",
				rr.n, qosCgroup, "/"+rr.file, rr.last, want[rr.file], resetPeriod-500*time.Millisecond, repairInterval)
			continue
		}
		times = append(times, fmt.Sprintf("%d/%s %v", rr.n, strings.TrimPrefix(rr.file, "memory."), rr.recovery.Round(10*time.Millisecond)))
		worst = max(worst, rr.recovery)
		if rr.recovery > repairDeadline {
			t.Errorf("reset %d: %s/%s back after %v; want within ancestorInterval + 1s = %v",
				rr.n, qosCgroup, rr.file, rr.recovery.Round(10*time.Millisecond), repairDeadline)
		}
	}
	t.Logf("recovery after each reset (reset/file time, 100 ms polls): %s; worst %v of %v allowed",
		strings.Join(times, ", "), worst.Round(10*time.Millisecond), repairDeadline)
	if found < 2*4 {
		t.Fatalf("only %d of %d file resets found protection to take away: the scenario proves nothing", found, 2*resets)
	}

	// The metric counts every repair of the QoS cgroup (both files).
	var got uint64
	if !wait.Until(t, 5*time.Second, func() string {
		series, known := ancestorRepairs(t)
		if !known {
			return fmt.Sprintf("/metrics has no %s", ancestorRepairMetric)
		}
		got = series[qosCgroup] - repairs0
		if got >= uint64(found) {
			return ""
		}
		return fmt.Sprintf("%s{path=%q} rose by %d; want at least %d (the file resets that found protection); series: %v",
			ancestorRepairMetric, qosCgroup, got, found, series)
	}) {
		t.Logf("plugin log:\n%s", p.log.String())
	}
	t.Logf("%s{path=%q} = %d after %d file resets", ancestorRepairMetric, qosCgroup, got, found)

	// The log names each file's first repair, not every repair; after more
	// than 3 resets of a file it says once that another agent fights for it.
	for _, f := range []string{"memory.min", "memory.low"} {
		var n int
		for _, l := range p.log.LinesWith(repairedLogMsg) {
			if logField(l, "cgroup") == qosCgroup && logField(l, "file") == f {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%q logged %d times for %s/%s; want once", repairedLogMsg, n, qosCgroup, f)
		}
		fileResets := 0
		for _, rr := range all {
			if rr.file == f && rr.err == nil && rr.found > 0 {
				fileResets++
			}
		}
		if fights := len(p.log.LinesWith(fightLogMsg + " " + qosCgroup + "/" + f + " ")); fileResets > 3 && fights != 1 {
			t.Errorf("%q logged %d times for %s/%s after %d resets; want once", fightLogMsg, fights, qosCgroup, f, fileResets)
		}
	}
	if other := p.log.LinesWith(repairedLogMsg); len(other) != 2 {
		t.Logf("every %q line: %q", repairedLogMsg, other)
	}
	t.Logf("guest time: %v (setup %v)", time.Since(start).Round(100*time.Millisecond), setup.Round(100*time.Millisecond))
}

// resetAndWatch writes 0 to memory.min and memory.low of dir, as kubelet's
// QoS manager does, then polls both every 100 ms until they hold want again,
// for at most limit.
func resetAndWatch(n int, dir string, want map[string]int64, limit time.Duration) []resetResult {
	files := []string{"memory.min", "memory.low"}
	out := make([]resetResult, len(files))
	var at [2]time.Time
	for i, f := range files {
		out[i] = resetResult{n: n, file: f, recovery: -1}
		v, err := readCgroupInt(dir, f)
		if err != nil {
			out[i].err = err
			continue
		}
		out[i].found = v
		if err := os.WriteFile(filepath.Join(dir, f), []byte("0"), 0o644); err != nil {
			out[i].err = err
			continue
		}
		at[i] = time.Now()
	}
	for deadline := time.Now().Add(limit); ; time.Sleep(100 * time.Millisecond) {
		pending := false
		for i, f := range files {
			if out[i].err != nil || out[i].recovery >= 0 {
				continue
			}
			v, err := readCgroupInt(dir, f)
			if err != nil {
				out[i].err = err
				continue
			}
			out[i].last = v
			if v == want[f] {
				out[i].recovery = time.Since(at[i])
				continue
			}
			pending = true
		}
		if !pending || time.Now().After(deadline) {
			return out
		}
	}
}

func readCgroupInt(dir, file string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// ancestorRepairs reads every series of nri_memqos_ancestor_repairs_total
// from the plugin's /metrics, by path, and whether the family is there at
// all (a collector without samples leaves it out).
func ancestorRepairs(t *testing.T) (map[string]uint64, bool) {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:9464/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	out := map[string]uint64{}
	known := false
	sample := regexp.MustCompile(`^` + ancestorRepairMetric + `\{(?:[^}]*,)?path="([^"]*)"[^}]*\} (\S+)$`)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# TYPE "+ancestorRepairMetric+" ") {
			known = true
		}
		if m := sample.FindStringSubmatch(line); m != nil {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatalf("/metrics: %q", line)
			}
			out[m[1]] = uint64(v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	return out, known || len(out) > 0
}

var logFieldRE = regexp.MustCompile(`(?:^|\s)([A-Za-z_.]+)=("(?:[^"\\]|\\.)*"|\S*)`)

// logField is the value of a key=value field of a logrus text line ("" when
// absent), unquoted.
func logField(line, key string) string {
	for _, m := range logFieldRE.FindAllStringSubmatch(line, -1) {
		if m[1] != key {
			continue
		}
		if v, err := strconv.Unquote(m[2]); err == nil {
			return v
		}
		return m[2]
	}
	return ""
}
