package e2e

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nri-memqos/test/internal/cgtest"
	"nri-memqos/test/internal/wait"
)

const (
	mi       = int64(1) << 20
	request  = 256 * mi
	limit    = 512 * mi
	pageSize = 4096
	// v1Unlimited is how cgroup v1 shows an unlimited value on 4 KiB pages.
	v1Unlimited = "9223372036854771712"
	// e2eConfig is the configuration of the plugin under test: the defaults.
	e2eConfig = "cgroupVersion: auto\n"
)

// classPod is a pod opted into class with a 256Mi request annotation.
func classPod(name, uid, qos, class string) pod {
	return pod{
		name: name, uid: uid, qos: qos,
		labels:      map[string]string{"memqos.nri.io/class": class},
		annotations: map[string]string{"memqos.nri.io/memory-request": "256Mi"},
	}
}

// v2Files and v1Files are the memory files each scenario compares.
var (
	v2Files = []string{"memory.min", "memory.low", "memory.high", "memory.max", "memory.swap.max", "memory.oom.group"}
	v1Files = []string{"memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.swappiness"}
)

func memoryFiles(version int) []string {
	if version == 2 {
		return v2Files
	}
	return v1Files
}

// TestScenarios runs every scenario on this machine's cgroup version against
// one real containerd. Subtests share the runtime and run in order.
func TestScenarios(t *testing.T) {
	e := loadEnv(t)
	t.Logf("cgroup v%d", e.version)
	removeKubepodsCgroups() // a crashed earlier run may have left some
	r := newRuntime(t, e)
	r.importImage()

	// A pod created before any plugin connects: what the runtime alone sets.
	plain := pod{name: "baseline", uid: "00000000-0000-0000-0000-000000000001", qos: "burstable"}
	baselinePod := r.runPod(plain)
	baselineCtr := r.runContainer(baselinePod, plain, container{name: "app", limit: limit, oomScoreAdj: 900})
	baseline := snapshot(t, r.cgroupDir(baselineCtr), memoryFiles(e.version))
	t.Logf("baseline without plugin: %v", baseline)

	p := r.startPlugin(e2eConfig)

	ls := classPod("ls", "00000000-0000-0000-0000-0000000000a1", "burstable", "latency-sensitive")
	bu := classPod("bu", "00000000-0000-0000-0000-0000000000a2", "burstable", "burstable")
	be := pod{name: "be", uid: "00000000-0000-0000-0000-0000000000a3", qos: "besteffort",
		labels: map[string]string{"memqos.nri.io/class": "best-effort"}}
	var buCtr string

	t.Run("classes", func(t *testing.T) {
		lsPod := r.runPod(ls)
		lsCtr := r.runContainer(lsPod, ls, container{name: "app", limit: limit, oomScoreAdj: 900})
		buPod := r.runPod(bu)
		buCtr = r.runContainer(buPod, bu, container{name: "app", limit: limit, oomScoreAdj: 900})
		bePod := r.runPod(be)
		beCtr := r.runContainer(bePod, be, container{name: "app", oomScoreAdj: 1000})
		// best-effort: no request, no limit: memory.high from node memory
		// by KEP-2570, floor(0.8 * MemTotal / page) * page.
		beHigh := int64(math.Floor(0.8*float64(cgtest.Meminfo(t, "MemTotal")))) / pageSize * pageSize

		if e.version == 2 {
			cgtest.CheckFiles(t, r.cgroupDir(lsCtr), map[string]string{
				"memory.min": cgtest.Itoa(request), "memory.low": "0", "memory.high": "max",
				"memory.max": cgtest.Itoa(limit), "memory.swap.max": "0", "memory.oom.group": "0",
			})
			cgtest.CheckFiles(t, r.cgroupDir(buCtr), map[string]string{
				// floor((256Mi + 0.9*(512Mi-256Mi)) / 4096) * 4096
				"memory.min": "0", "memory.low": cgtest.Itoa(request), "memory.high": "510025728",
				"memory.max": cgtest.Itoa(limit), "memory.oom.group": "0",
			})
			cgtest.CheckFiles(t, r.cgroupDir(beCtr), map[string]string{
				"memory.min": "0", "memory.low": "0", "memory.high": cgtest.Itoa(beHigh),
				"memory.max": "max", "memory.oom.group": "1",
			})
			// Every ancestor protects at least what was promised below it.
			for _, a := range []struct {
				rel      string
				min, low int64
			}{
				{"/kubepods", request, request},
				{"/kubepods/burstable", request, request},
				{"/kubepods/burstable/pod" + ls.uid, request, 0},
				{"/kubepods/burstable/pod" + bu.uid, 0, request},
			} {
				dir := memoryDir(2, a.rel)
				if got := cgtest.ReadInt(t, dir, "memory.min"); got < a.min {
					t.Errorf("%s memory.min = %d; want at least %d", a.rel, got, a.min)
				}
				if got := cgtest.ReadInt(t, dir, "memory.low"); got < a.low {
					t.Errorf("%s memory.low = %d; want at least %d", a.rel, got, a.low)
				}
			}
		} else {
			cgtest.CheckFiles(t, r.cgroupDir(lsCtr), map[string]string{
				"memory.limit_in_bytes": cgtest.Itoa(limit), "memory.soft_limit_in_bytes": cgtest.Itoa(request), "memory.swappiness": "0",
			})
			cgtest.CheckFiles(t, r.cgroupDir(buCtr), map[string]string{
				"memory.limit_in_bytes": cgtest.Itoa(limit), "memory.soft_limit_in_bytes": cgtest.Itoa(request),
				"memory.swappiness": baseline["memory.swappiness"],
			})
			// best-effort protects nothing: soft limit 0, so the kernel's
			// global reclaim takes from it before protected containers.
			cgtest.CheckFiles(t, r.cgroupDir(beCtr), map[string]string{
				"memory.limit_in_bytes": v1Unlimited, "memory.soft_limit_in_bytes": "0",
				"memory.swappiness": baseline["memory.swappiness"],
			})
		}
		r.removePod(bePod)
	})

	t.Run("no opt-in is untouched", func(t *testing.T) {
		un := pod{name: "unlabelled", uid: "00000000-0000-0000-0000-0000000000b1", qos: "burstable"}
		id := r.runPod(un)
		ctr := r.runContainer(id, un, container{name: "app", limit: limit, oomScoreAdj: 900})
		got := snapshot(t, r.cgroupDir(ctr), memoryFiles(e.version))
		for k, v := range baseline {
			if got[k] != v {
				t.Errorf("%s = %q with the plugin; %q without it", k, got[k], v)
			}
		}
		r.removePod(id)
	})

	t.Run("invalid annotation fails only its container", func(t *testing.T) {
		bad := classPod("bad", "00000000-0000-0000-0000-0000000000d1", "burstable", "burstable")
		bad.annotations["memqos.nri.io/memory-request"] = "lots"
		id := r.runPod(bad)
		_, err := r.create(id, bad, container{name: "app", limit: limit, oomScoreAdj: 900})
		if err == nil {
			t.Fatal("crictl create succeeded with memqos.nri.io/memory-request=lots")
		}
		// crictl prints the message logfmt-escaped: look for its words.
		for _, want := range []string{"memqos: pod e2e/bad container", "app", "annotation memqos.nri.io/memory-request", "lots", "not a quantity", "allowed:"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("CRI error does not carry %q: %v", want, err)
			}
		}
		r.removePod(id)
		good := classPod("good", "00000000-0000-0000-0000-0000000000d2", "burstable", "latency-sensitive")
		gid := r.runPod(good)
		ctr := r.runContainer(gid, good, container{name: "app", limit: limit, oomScoreAdj: 900})
		want := cgtest.Itoa(request)
		file := "memory.min"
		if e.version == 1 {
			file = "memory.soft_limit_in_bytes"
		}
		cgtest.CheckFiles(t, r.cgroupDir(ctr), map[string]string{file: want})
		r.removePod(gid)
	})

	t.Run("in-place resize", func(t *testing.T) {
		newLimit := 1024 * mi
		if e.version == 1 {
			// containerd keeps the creation swap limit (= 512Mi) on v1 and the
			// kernel refuses a memory limit above it: shrink instead.
			newLimit = 384 * mi
		}
		r.mustCrictl("update", "--memory", cgtest.Itoa(newLimit), buCtr)
		dir := r.cgroupDir(buCtr)
		if e.version == 2 {
			cgtest.CheckFiles(t, dir, map[string]string{
				// floor((256Mi + 0.9*(1Gi-256Mi)) / 4096) * 4096
				"memory.max": cgtest.Itoa(newLimit), "memory.high": "993210368", "memory.low": cgtest.Itoa(request),
			})
		} else {
			cgtest.CheckFiles(t, dir, map[string]string{
				"memory.limit_in_bytes": cgtest.Itoa(newLimit), "memory.soft_limit_in_bytes": cgtest.Itoa(request),
			})
		}
	})

	t.Run("plugin restart repairs drift", func(t *testing.T) {
		dir := r.cgroupDir(buCtr)
		file, want := "memory.soft_limit_in_bytes", cgtest.Itoa(request)
		if e.version == 2 {
			file, want = "memory.high", "993210368" // after the resize
		}
		if got := cgtest.Read(t, dir, file); got != want {
			t.Fatalf("%s = %s before the restart; want %s", file, got, want)
		}
		p.Kill()
		drift := "-1"
		if e.version == 2 {
			drift = "max"
		}
		if err := os.WriteFile(filepath.Join(dir, file), []byte(drift), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := cgtest.Read(t, dir, file); got == want {
			t.Fatalf("drift not applied: %s still %s", file, got)
		}
		p = r.startPlugin(e2eConfig)
		wait.For(t, 20*time.Second, file+" to be repaired", func() bool { return cgtest.Read(t, dir, file) == want })
	})

	t.Run("containerd restart: plugin reconnects", func(t *testing.T) {
		r.restart()
		p.waitSynced(2)
		np := classPod("after-restart", "00000000-0000-0000-0000-0000000000e1", "burstable", "latency-sensitive")
		id := r.runPod(np)
		ctr := r.runContainer(id, np, container{name: "app", limit: limit, oomScoreAdj: 900})
		file := "memory.min"
		if e.version == 1 {
			file = "memory.soft_limit_in_bytes"
		}
		cgtest.CheckFiles(t, r.cgroupDir(ctr), map[string]string{file: cgtest.Itoa(request)})
		r.removePod(id)
	})

	t.Run("pre-registered with conf.d", func(t *testing.T) {
		p.stop()
		installPreRegistered(t, r, "maxProtectionFraction: 0.5\n")
		r.restart()
		// Guaranteed pod, request = limit: memory.min capped at 0.5 * limit
		// by the conf.d configuration (the default would give 0.9 * limit).
		gp := pod{name: "prereg", uid: "00000000-0000-0000-0000-0000000000f1", qos: "guaranteed",
			labels: map[string]string{"memqos.nri.io/class": "latency-sensitive"}}
		var ctr string
		wait.For(t, 30*time.Second, "the pre-registered plugin to serve", func() bool {
			id := r.runPod(gp)
			ctr = r.runContainer(id, gp, container{name: "app", limit: limit, oomScoreAdj: -997})
			file := "memory.min"
			if e.version == 1 {
				file = "memory.soft_limit_in_bytes"
			}
			if cgtest.Read(t, r.cgroupDir(ctr), file) == cgtest.Itoa(limit/2) {
				return true
			}
			r.removePod(id)
			return false
		})
	})

}

// installPreRegistered puts the plugin binary and its config where the
// runtime starts pre-registered plugins from.
func installPreRegistered(t *testing.T, r *runtime, cfg string) {
	t.Helper()
	data, err := os.ReadFile(r.bin("nri-memqos"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.pluginDir, "10-nri-memqos"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.confDir, "10-nri-memqos.conf"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// The pre-registered plugin keeps its state in the default /run/nri-memqos:
	// leave the machine as the run found it.
	if _, err := os.Stat("/run/nri-memqos"); os.IsNotExist(err) {
		t.Cleanup(func() {
			if err := os.RemoveAll("/run/nri-memqos"); err != nil {
				t.Error(err)
			}
		})
	}
}
