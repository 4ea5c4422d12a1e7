package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nri-memqos/test/internal/cgtest"
	"nri-memqos/test/internal/wait"
)

// tiersConfig: fast ticks and short clocks, so that a 2-core TCG VM shows
// every step within seconds; node-pressure reclaim off, so that whatever
// the lower tier pays, priority-aware reclaim made it pay. The classes are
// the built-in ones (latency-sensitive protects itself from lower
// priorities by default), with thresholds this small workload crosses
// for sure: the test proves the order, not the defaults.
const tiersConfig = `
reconciler:
  interval: 200ms
  driftInterval: 2s
  nodePressure: {lowFraction: 0, pressureThreshold: 0}
  tiers: {throttleAfter: 1s, calmFor: 2s, step: 0.25}
classes:
  latency-sensitive:
    min: 1.0
    swap: none
    swappiness: 0
    reclaim: {highWatermark: 0.95, lowWatermark: 0.9, priority: 100, protectFromLowerPriority: true, pressureThreshold: 1, refaultThreshold: 50}
`

// TestTiersV2 runs priority-aware reclaim on real containers (cgroup v2,
// inside the VM of TestCgroupV2VM). A latency-sensitive pod re-reads a file
// larger than its request while a best-effort pod streams a file larger
// than the node's free memory: the kernel's reclaim takes the
// latency-sensitive pod's unprotected cache, it refaults. The test asserts
// the order: the best-effort container is reclaimed, then throttled, while
// nothing the plugin set on the latency-sensitive one changes; when the
// reader stops, the best-effort container's memory.high is back at the
// policy's value.
func TestTiersV2(t *testing.T) {
	r, data := v2DiskGuest(t, "priority-aware reclaim needs cgroup v2")
	if r == nil {
		return
	}
	p := r.startPlugin(tiersConfig)

	writeFile(t, filepath.Join(data, "hot"), 240*mi)
	writeFile(t, filepath.Join(data, "stream"), 800*mi)
	ctl := t.TempDir()
	dropCaches(t)

	// The latency-sensitive reader: request 128Mi (memory.min), hot set
	// 240 MiB, re-read in a burst every second until /ctl/stop appears
	// (read without a pause, its pages stay hot whatever the neighbour).
	ls := pod{name: "ls-hot", uid: "00000000-0000-0000-0000-000000000401", qos: "burstable",
		labels:      map[string]string{"memqos.nri.io/class": "latency-sensitive"},
		annotations: map[string]string{"memqos.nri.io/memory-request": "128Mi"}}
	lsID := r.runPod(ls)
	lsCtr := r.runContainer(lsID, ls, container{name: "app", limit: 512 * mi, oomScoreAdj: 900,
		command: []string{"/bin/sh", "-c", "while [ ! -e /ctl/stop ]; do cat /data/f >/dev/null; sleep 1; done; sleep 3600"},
		mounts:  []mount{{host: filepath.Join(data, "hot"), container: "/data/f"}, {host: ctl, container: "/ctl"}}})
	lsDir := r.cgroupDir(lsCtr)
	wait.For(t, 60*time.Second, "the latency-sensitive pod to cache its file", func() bool {
		return memStat(t, lsDir, "file") >= 200*mi
	})
	lsFiles := fmt.Sprint(optSnapshot(lsDir, v2Files))

	// The best-effort pod holds anonymous memory that leaves about 80 MiB
	// free, and streams a file ten times that.
	hold := cgtest.Meminfo(t, "MemFree") - 80*mi
	be := pod{name: "be-stream", uid: "00000000-0000-0000-0000-000000000402", qos: "besteffort",
		labels: map[string]string{"memqos.nri.io/class": "best-effort"}}
	beID := r.runPod(be)
	beCtr := r.runContainer(beID, be, container{name: "app", oomScoreAdj: 1000,
		command: []string{"/bin/sh", "-c", fmt.Sprintf("dd if=/dev/zero bs=%d count=1 2>/dev/null | sleep 3600 & while :; do cat /data/f >/dev/null; done", hold)},
		mounts:  []mount{{host: filepath.Join(data, "stream"), container: "/data/f"}}})
	beDir := r.cgroupDir(beCtr)
	policyHigh := cgtest.ReadInt(t, beDir, "memory.high")

	lastLog, lastRefaults, lastStall := time.Now(), memStat(t, lsDir, "workingset_refault_file"), readStall(t, lsDir).stall
	wait.For(t, 120*time.Second, "the best-effort container to be throttled", func() bool {
		if time.Since(lastLog) >= 5*time.Second {
			refaults, stall := memStat(t, lsDir, "workingset_refault_file"), readStall(t, lsDir).stall
			t.Logf("latency-sensitive: %d refaults, stalled %v in %v; file %d MiB; best-effort %d MiB; MemFree %d MiB",
				refaults-lastRefaults, stall-lastStall, time.Since(lastLog).Round(time.Millisecond),
				memStat(t, lsDir, "file")>>20, cgtest.ReadInt(t, beDir, "memory.current")>>20, cgtest.Meminfo(t, "MemFree")>>20)
			lastLog, lastRefaults, lastStall = time.Now(), refaults, stall
		}
		return p.log.HasLine("memory.high throttled for a higher priority", "pod=be-stream")
	})
	throttled := cgtest.ReadInt(t, beDir, "memory.high")
	t.Logf("best-effort holds %d MiB anonymous; its memory.high %d MiB, throttled from the policy's %d MiB; latency-sensitive refaulted %d pages",
		hold>>20, throttled>>20, policyHigh>>20, memStat(t, lsDir, "workingset_refault_file"))
	if throttled >= policyHigh {
		t.Errorf("best-effort memory.high %d after the throttle; want below the policy's %d", throttled, policyHigh)
	}
	log := p.log.String()
	start := lineOf(log, "priority-aware reclaim: started")
	reclaimed := lineOf(log, "reason=priority", "pod=be-stream")
	throttle := lineOf(log, "memory.high throttled for a higher priority", "pod=be-stream")
	if start < 0 || reclaimed < start || throttle < reclaimed {
		t.Errorf("plugin log lines: started %d, first reclaim of be-stream %d, its throttle %d; want them in this order", start, reclaimed, throttle)
	}
	if !strings.Contains(lineText(log, start), "ls-hot") {
		t.Errorf("the start names %q; want the latency-sensitive pod", lineText(log, start))
	}
	if p.log.HasLine("reason=", "pod=ls-hot") || p.log.HasLine("memory.high", "pod=ls-hot") {
		t.Errorf("the plugin reclaimed from or throttled the latency-sensitive pod: %q", p.log.LinesWith("pod=ls-hot"))
	}
	if got := fmt.Sprint(optSnapshot(lsDir, v2Files)); got != lsFiles {
		t.Errorf("latency-sensitive files changed under pressure: %s; were %s", got, lsFiles)
	}

	// The pressure ends: the reader stops.
	const calm = "priority-aware reclaim: protected containers calm, every memory.high given back"
	calmBefore := len(p.log.LinesWith(calm))
	if err := os.WriteFile(filepath.Join(ctl, "stop"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Give-back steps come one per calmFor (10s), past the usage the
	// throttle began at doubling, and longer apart after a step the
	// pressure followed: allow a few minutes.
	wait.For(t, 240*time.Second, "every memory.high given back", func() bool {
		return len(p.log.LinesWith(calm)) > calmBefore
	})
	if got := cgtest.ReadInt(t, beDir, "memory.high"); got != policyHigh {
		t.Errorf("best-effort memory.high %d after the calm; want the policy's %d", got, policyHigh)
	}
	if got := fmt.Sprint(optSnapshot(lsDir, v2Files)); got != lsFiles {
		t.Errorf("latency-sensitive files changed: %s; were %s", got, lsFiles)
	}
	r.removePod(beID)
	r.removePod(lsID)
}

// lineOf is the number of the first line of log with every one of words;
// -1 when none.
func lineOf(log string, words ...string) int {
	for i, l := range strings.Split(log, "\n") {
		all := true
		for _, w := range words {
			all = all && strings.Contains(l, w)
		}
		if all {
			return i
		}
	}
	return -1
}

func lineText(log string, n int) string {
	lines := strings.Split(log, "\n")
	if n < 0 || n >= len(lines) {
		return ""
	}
	return lines[n]
}
