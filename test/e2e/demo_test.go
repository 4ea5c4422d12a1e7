package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"nri-memqos/test/internal/cgtest"
)

// demoPrefix marks the guest's demo lines on the console.
const demoPrefix = "DEMO| "

// TestDemo is `make demo`: the cgroup v2 VM with real containerd, runc and
// the plugin, a latency-sensitive and a best-effort pod, a table of what
// each got, and a few seconds of what the reconciler did.
func TestDemo(t *testing.T) {
	fmt.Println("booting a cgroup v2 VM (qemu, TCG) with containerd, runc and nri-memqos...")
	start := time.Now()
	_, code := runGuest(t, guestRun{pattern: "^TestDemoGuest$", onLine: func(line string) {
		if s, ok := strings.CutPrefix(line, demoPrefix); ok {
			fmt.Println(s)
		} else if strings.Contains(line, "--- FAIL") || strings.Contains(line, "_test.go:") {
			fmt.Println("  vm:", line)
		}
	}})
	fmt.Printf("demo finished in %v\n", time.Since(start).Round(time.Second))
	if code != 0 {
		t.Fatalf("the demo failed in the VM (exit %d)", code)
	}
}

func say(format string, args ...any) {
	for _, l := range strings.Split(fmt.Sprintf(format, args...), "\n") {
		fmt.Println(demoPrefix + l)
	}
}

// TestDemoGuest is the demo's guest side (run only by TestDemo).
func TestDemoGuest(t *testing.T) {
	if os.Getenv(envInVM) != "1" {
		t.Log("the demo's guest side: run `make demo`")
		return
	}
	e := loadEnv(t)
	data := os.Getenv(envDataDir)
	removeKubepodsCgroups()
	r := newRuntime(t, e)
	r.importImage()
	say("containerd %s up; cgroup v%d; plugin nri-memqos connecting over NRI", "v2.4.2", e.version)
	p := r.startPlugin("reconciler: {interval: 500ms}\n")
	_ = p

	writeFile(t, filepath.Join(data, "ls"), 128*mi)
	writeFile(t, filepath.Join(data, "be"), 600*mi)
	dropCaches(t)

	ls := classPod("web", "00000000-0000-0000-0000-000000000501", "burstable", "latency-sensitive")
	lsID := r.runPod(ls)
	lsCtr := r.runContainer(lsID, ls, container{name: "app", limit: limit, oomScoreAdj: 900,
		command: []string{"/bin/sh", "-c", "cat /data/f >/dev/null; sleep 3600"},
		mounts:  []mount{{host: filepath.Join(data, "ls"), container: "/data/f"}}})
	be := pod{name: "batch", uid: "00000000-0000-0000-0000-000000000502", qos: "burstable",
		labels:      map[string]string{"memqos.nri.io/class": "best-effort"},
		annotations: map[string]string{}}
	beID := r.runPod(be)
	beCtr := r.runContainer(beID, be, container{name: "stream", limit: 256 * mi, oomScoreAdj: 999,
		command: []string{"/bin/sh", "-c", "while :; do cat /data/f >/dev/null; done"},
		mounts:  []mount{{host: filepath.Join(data, "be"), container: "/data/f"}}})

	say("")
	say("pods: web (label memqos.nri.io/class=latency-sensitive, request 256Mi, limit 512Mi)")
	say("      batch (label memqos.nri.io/class=best-effort, no request, limit 256Mi, streams a 600 MiB file)")
	say("")
	say("%-8s %-18s %12s %12s %12s %12s %10s %6s", "pod", "class", "memory.min", "memory.low", "memory.high", "memory.max", "swap.max", "oom.g")
	for _, row := range []struct{ pod, class, id string }{{"web", "latency-sensitive", lsCtr}, {"batch", "best-effort", beCtr}} {
		dir := r.cgroupDir(row.id)
		v := snapshot(t, dir, v2Files)
		say("%-8s %-18s %12s %12s %12s %12s %10s %6s", row.pod, row.class, human(v["memory.min"]), human(v["memory.low"]),
			human(v["memory.high"]), human(v["memory.max"]), human(v["memory.swap.max"]), v["memory.oom.group"])
	}
	say("")
	say("ancestors protect what was promised below them (cgroup v2 effective protection):")
	for _, rel := range []string{"/kubepods", "/kubepods/burstable", "/kubepods/burstable/pod" + ls.uid} {
		dir := memoryDir(2, rel)
		say("  %-60s memory.min %s", rel, human(cgtest.Read(t, dir, "memory.min")))
	}
	say("")
	say("reconciler, every second for 10 s (batch: watermarks 0.85/0.7 of memory.high):")
	say("%4s %16s %16s %18s %14s", "t", "batch current", "web page cache", "batch reclaimed", "batch max hits")
	beDir, lsDir := r.cgroupDir(beCtr), r.cgroupDir(lsCtr)
	for i := 1; i <= 10; i++ {
		time.Sleep(time.Second)
		say("%3ds %16s %16s %18s %14d", i, human(cgtest.Read(t, beDir, "memory.current")), human(cgtest.Itoa(memStat(t, lsDir, "file"))),
			human(cgtest.Itoa(int64(scrape(t, "nri_memqos_container_reclaimed_bytes_total", `pod="batch"`, `reason="watermark"`)))),
			readStall(t, beDir).maxHits)
	}
	say("")
	say("node protection promised: %s of a cap of %s",
		human(cgtest.Itoa(int64(scrape(t, "nri_memqos_node_protection_promised_bytes")))),
		human(cgtest.Itoa(int64(scrape(t, "nri_memqos_node_protection_cap_bytes")))))
	r.removePod(beID)
	r.removePod(lsID)
}

// scrape reads one sample from the plugin's /metrics whose line holds
// every part.
func scrape(t *testing.T, name string, parts ...string) float64 {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:9464/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? (\S+)$`)
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		all := true
		for _, p := range parts {
			all = all && strings.Contains(m[1], p)
		}
		if all {
			v, _ := strconv.ParseFloat(m[2], 64)
			return v
		}
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("scrape %s: %v", name, err)
	}
	return 0
}

// human writes a byte count in MiB; "max" stays.
func human(s string) string {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return s
	}
	if v == 0 {
		return "0"
	}
	return fmt.Sprintf("%.1f MiB", float64(v)/float64(mi))
}
