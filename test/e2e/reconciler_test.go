package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"nri-memqos/test/internal/cgtest"
	"nri-memqos/test/internal/wait"
)

// envDataDir is a directory on a real filesystem (ext4 on the VM's virtio
// disk): page cache is reclaimable there, unlike on the initramfs tmpfs.
const envDataDir = "E2E_DATA_DIR"

// reconcilerConfig is the plugin configuration of TestReconcilerV2: fast
// ticks so that a 2-core TCG VM shows the effects within seconds.
const reconcilerConfig = `
reconciler:
  interval: 200ms
  driftInterval: 2s
  maxReclaimPerTick: 128Mi
  nodePressure: {lowFraction: 0.25, highFraction: 0.3, maxReclaimPerTick: 512Mi}
  guard: {enabled: %t, stallPressure: 20, stallFor: 2s, releasePressure: 2, releaseFor: 5s, step: 0.25}
classes:
  cache:
    reclaim: {highWatermark: 0.8, lowWatermark: 0.6, priority: 50}
  cache-nowm:
    reclaim: {priority: 50}
  throttled:
    throttlingFactor: 0.3
    reclaim: {priority: 10}
`

// TestReconcilerV2 runs the reconciler against real containers on cgroup v2
// (inside the VM of TestCgroupV2VM): background reclaim, node-pressure
// order, and the memory.high guard.
func TestReconcilerV2(t *testing.T) {
	r, data := v2DiskGuest(t, "memory.reclaim and PSI need cgroup v2")
	if r == nil {
		return
	}
	p := r.startPlugin(fmt.Sprintf(reconcilerConfig, false))

	t.Run("background reclaim keeps a reader under its watermark", func(t *testing.T) {
		for _, f := range []string{"wm", "nowm"} {
			writeFile(t, filepath.Join(data, f), 400*mi)
		}
		dropCaches(t)
		// Both read their 400 MiB file in 16 MiB bursts, limit 256 MiB.
		reader := func(name, uid, class, file string) (string, string) {
			pd := pod{name: name, uid: uid, qos: "burstable", labels: map[string]string{"memqos.nri.io/class": class}}
			id := r.runPod(pd)
			return id, r.runContainer(id, pd, container{name: "reader", limit: 256 * mi, oomScoreAdj: 900,
				command: []string{"/bin/sh", "-c", `i=0; while :; do dd if=/data/f of=/dev/null bs=1M count=16 skip=$i 2>/dev/null; i=$(( (i + 16) % 400 )); sleep 0.1; done`},
				mounts:  []mount{{host: filepath.Join(data, file), container: "/data/f"}}})
		}
		wmPod, wmCtr := reader("reader-wm", "00000000-0000-0000-0000-000000000101", "cache", "wm")
		nowmPod, nowmCtr := reader("reader-nowm", "00000000-0000-0000-0000-000000000102", "cache-nowm", "nowm")
		wmDir, nowmDir := r.cgroupDir(wmCtr), r.cgroupDir(nowmCtr)
		// What the readers' own tasks suffer: time stalled on memory
		// (memory.pressure some total) and hits of memory.max. pgscan_direct
		// is no measure here: on Linux 6.1 it also counts the reclaim the
		// plugin asks for through memory.reclaim.
		startWm, startNowm := readStall(t, wmDir), readStall(t, nowmDir)
		var samples []int64
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			samples = append(samples, cgtest.ReadInt(t, wmDir, "memory.current"))
			time.Sleep(100 * time.Millisecond)
		}
		wm, nowm := readStall(t, wmDir).sub(startWm), readStall(t, nowmDir).sub(startNowm)
		slices.Sort(samples)
		p95 := samples[len(samples)*95/100]
		t.Logf("in 20s: with watermarks stalled %v, hit memory.max %d times; without: stalled %v, %d times; memory.current p95 %d MiB (high watermark %d MiB)",
			wm.stall, wm.maxHits, nowm.stall, nowm.maxHits, p95/mi, 256*8/10)
		if nowm.maxHits == 0 {
			t.Fatalf("the reader without watermarks never reached its limit: the workload proves nothing")
		}
		if wm.maxHits*2 > nowm.maxHits {
			t.Errorf("with watermarks the reader hit memory.max %d times, not far below %d without", wm.maxHits, nowm.maxHits)
		}
		if wm.stall*2 > nowm.stall {
			t.Errorf("with watermarks the reader stalled %v, not far below %v without", wm.stall, nowm.stall)
		}
		if limit := 256 * mi; p95 > limit*9/10 {
			t.Errorf("memory.current p95 %d is above 90%% of the limit %d", p95, limit)
		}
		if !p.log.HasLine("reason=watermark", "pod=reader-wm") {
			t.Errorf("no watermark reclaim of reader-wm in the plugin log")
		}
		if p.log.HasLine("reason=watermark", "pod=reader-nowm") {
			t.Errorf("watermark reclaim of reader-nowm, whose class has no watermarks")
		}
		r.removePod(wmPod)
		r.removePod(nowmPod)
	})

	t.Run("node pressure reclaims best-effort before latency-sensitive", func(t *testing.T) {
		writeFile(t, filepath.Join(data, "ls"), 200*mi)
		writeFile(t, filepath.Join(data, "be"), 800*mi)
		dropCaches(t)
		ls := classPod("ls-cache", "00000000-0000-0000-0000-000000000201", "burstable", "latency-sensitive")
		lsID := r.runPod(ls)
		lsCtr := r.runContainer(lsID, ls, container{name: "app", limit: 512 * mi, oomScoreAdj: 900,
			command: []string{"/bin/sh", "-c", "cat /data/f >/dev/null; sleep 3600"},
			mounts:  []mount{{host: filepath.Join(data, "ls"), container: "/data/f"}}})
		lsDir := r.cgroupDir(lsCtr)
		wait.For(t, 60*time.Second, "the latency-sensitive pod to cache its file", func() bool {
			return memStat(t, lsDir, "file") >= 190*mi
		})
		be := pod{name: "be-stream", uid: "00000000-0000-0000-0000-000000000202", qos: "besteffort",
			labels: map[string]string{"memqos.nri.io/class": "best-effort"}}
		beID := r.runPod(be)
		r.runContainer(beID, be, container{name: "app", oomScoreAdj: 1000,
			command: []string{"/bin/sh", "-c", "while :; do cat /data/f >/dev/null; done"},
			mounts:  []mount{{host: filepath.Join(data, "be"), container: "/data/f"}}})
		time.Sleep(3 * time.Second)
		// A pod outside the plugin's classes takes anonymous memory until
		// the node runs short.
		hog := pod{name: "hog", uid: "00000000-0000-0000-0000-000000000203", qos: "besteffort"}
		hogID := r.runPod(hog)
		r.runContainer(hogID, hog, container{name: "app", oomScoreAdj: 1000,
			command: []string{"/bin/sh", "-c", "dd if=/dev/zero bs=1200M count=1 | sleep 3600"}})
		wait.For(t, 60*time.Second, "node-pressure reclaim of the best-effort pod", func() bool {
			return p.log.HasLine("reason=node-pressure", "pod=be-stream")
		})
		time.Sleep(5 * time.Second)
		if got := memStat(t, lsDir, "file"); got < 180*mi {
			t.Errorf("latency-sensitive page cache fell to %d MiB of 200", got/mi)
		}
		if p.log.HasLine("reason=node-pressure", "pod=ls-cache") {
			t.Errorf("node-pressure reclaim took from the latency-sensitive pod before best-effort ran out")
		}
		r.removePod(hogID)
		r.removePod(beID)
		r.removePod(lsID)
	})

	t.Run("guard releases a container stalled at memory.high", func(t *testing.T) {
		// memory.high = 0.3 x 256Mi; 150 MiB of anonymous memory without
		// swap cannot be reclaimed: the container stalls at memory.high,
		// far below its limit, instead of being OOM-killed.
		tp := pod{name: "stalled", uid: "00000000-0000-0000-0000-000000000301", qos: "burstable",
			labels: map[string]string{"memqos.nri.io/class": "throttled"}}
		id := r.runPod(tp)
		// oom_score_adj 999: no request, so memory.high = 0.3 x limit.
		ctr := r.runContainer(id, tp, container{name: "app", limit: 256 * mi, oomScoreAdj: 999,
			// tail keeps the last 150 MiB it reads from the pipe, 64 KiB per
			// read: every return to user space meets memory.high (one huge
			// read() would fault everything in before any throttling).
			command: []string{"/bin/sh", "-c", "dd if=/dev/zero bs=64k count=2400 2>/dev/null | tail -c 157286400 >/dev/null"}})
		dir := r.cgroupDir(ctr)
		high := cgtest.Read(t, dir, "memory.high")
		time.Sleep(15 * time.Second)
		if exited(t, r, ctr) {
			t.Fatalf("the allocation finished under memory.high %s without the guard: nothing to release", high)
		}
		full := pressureFullAvg10(t, dir)
		t.Logf("without the guard after 15s: memory.high %s, full avg10 %.1f", high, full)
		// The plugin with the guard on takes over the stalled container.
		p.stop()
		p = r.startPlugin(fmt.Sprintf(reconcilerConfig, true))
		wait.For(t, 90*time.Second, "the guard to release the container", func() bool { return exited(t, r, ctr) })
		if !p.log.HasLine("memory.high guard: raised", "pod=stalled") {
			t.Errorf("no guard raise in the plugin log")
		}
		r.removePod(id)
	})
}

// v2DiskGuest prepares a guest test of the cgroup v2 VM that works on the
// VM's disk: a runtime with the test image, and the data directory. On
// cgroup v1 (the host) it logs why and returns nil.
func v2DiskGuest(t *testing.T, why string) (*runtime, string) {
	t.Helper()
	e := loadEnv(t)
	if e.version != 2 {
		t.Logf("%s: this runs inside the VM of TestCgroupV2VM", why)
		return nil, ""
	}
	data := os.Getenv(envDataDir)
	if data == "" {
		skipOrFail(t, "%s is not set (a directory on a disk filesystem)", envDataDir)
	}
	removeKubepodsCgroups()
	r := newRuntime(t, e)
	r.importImage()
	return r, data
}

// writeFile writes size bytes to path (on the data disk) and syncs it.
func writeFile(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, mi)
	for i := range buf {
		buf[i] = byte(i)
	}
	for n := int64(0); n < size; n += mi {
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// dropCaches empties the page cache, so that containers fault their files
// in (and are charged for them) themselves.
func dropCaches(t *testing.T) {
	t.Helper()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// memStat reads one key of a cgroup's memory.stat.
func memStat(t *testing.T, dir, key string) int64 {
	t.Helper()
	for _, line := range strings.Split(cgtest.Read(t, dir, "memory.stat"), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("memory.stat %s = %q", key, v)
			}
			return n
		}
	}
	t.Fatalf("memory.stat of %s has no %s", dir, key)
	return 0
}

// stall is what a cgroup's tasks suffered from memory: memory.pressure
// "some" total and memory.events "max".
type stall struct {
	stall   time.Duration
	maxHits int64
}

func (a stall) sub(b stall) stall { return stall{a.stall - b.stall, a.maxHits - b.maxHits} }

func readStall(t *testing.T, dir string) stall {
	t.Helper()
	var s stall
	for _, line := range strings.Split(cgtest.Read(t, dir, "memory.pressure"), "\n") {
		if strings.HasPrefix(line, "some ") {
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "total="); ok {
					us, _ := strconv.ParseInt(v, 10, 64)
					s.stall = time.Duration(us) * time.Microsecond
				}
			}
		}
	}
	for _, line := range strings.Split(cgtest.Read(t, dir, "memory.events"), "\n") {
		if v, ok := strings.CutPrefix(line, "max "); ok {
			s.maxHits, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return s
}

// pressureFullAvg10 reads the "full" avg10 of memory.pressure.
func pressureFullAvg10(t *testing.T, dir string) float64 {
	t.Helper()
	for _, line := range strings.Split(cgtest.Read(t, dir, "memory.pressure"), "\n") {
		if strings.HasPrefix(line, "full ") {
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "avg10="); ok {
					x, _ := strconv.ParseFloat(v, 64)
					return x
				}
			}
		}
	}
	return 0
}

// exited tells whether a container has exited with status 0.
func exited(t *testing.T, r *runtime, id string) bool {
	t.Helper()
	out := r.mustCrictl("inspect", "-o", "json", id)
	var v struct {
		Status struct {
			State    string `json:"state"`
			ExitCode int    `json:"exitCode"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("crictl inspect: %v", err)
	}
	if v.Status.State == "CONTAINER_EXITED" && v.Status.ExitCode != 0 {
		t.Fatalf("container %s exited with %d", id, v.Status.ExitCode)
	}
	return v.Status.State == "CONTAINER_EXITED"
}
