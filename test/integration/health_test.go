package integration

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/adaptation"

	"nri-memqos/test/internal/cgtest"
	"nri-memqos/test/internal/proc"
	"nri-memqos/test/internal/wait"
)

// plug makes the file at path a FIFO nobody has open, so that the plugin's
// next open of it blocks (as a read or write of a wedged cgroup file, or a
// plugin stuck on its lock, would). The returned function unblocks it: it
// puts a regular file holding content at path for every later open, then
// opens the FIFO itself (through a second link), which lets the blocked
// open through, and hands it content.
func plug(t *testing.T, path, content string) (unplug func()) {
	t.Helper()
	fifo, hold := path+".fifo", path+".hold"
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(fifo, hold); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(fifo, path); err != nil {
		t.Fatal(err)
	}
	done := false
	unplug = func() {
		if done {
			return
		}
		done = true
		replaceFile(t, path, content)
		// Read-write: opening never blocks, and lets a blocked reader or
		// writer through.
		f, err := os.OpenFile(hold, os.O_RDWR, 0)
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := f.WriteString(content); err != nil {
			t.Error(err)
		}
		if err := f.Close(); err != nil {
			t.Error(err)
		}
		if err := os.Remove(hold); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(unplug)
	return unplug
}

// healthz gets /healthz from addr and returns a complaint unless the
// status is code and the body one line holding every one of words.
func healthz(addr string, code int, words ...string) string {
	got, body, err := get("http://" + addr + "/healthz")
	if err != nil {
		return err.Error()
	}
	if got != code {
		return fmt.Sprintf("/healthz on %s = %d %q, want %d", addr, got, body, code)
	}
	if strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n") {
		return fmt.Sprintf("/healthz on %s: body %q is not one line", addr, body)
	}
	for _, w := range words {
		if !strings.Contains(body, w) {
			return fmt.Sprintf("/healthz on %s: body %q does not contain %q", addr, body, w)
		}
	}
	return ""
}

// TestHealthListener: -health-address serves /healthz and /readyz and no
// data; -metrics-address serves all three.
func TestHealthListener(t *testing.T) {
	metricsAt, healthAt := proc.FreeAddr(t), proc.FreeAddr(t)
	_, p := startExternal(t, 2, "", "-metrics-address", metricsAt, "-health-address", healthAt)
	for _, addr := range []string{healthAt, metricsAt} {
		if msg := healthz(addr, http.StatusOK, "ok"); msg != "" {
			t.Error(msg)
		}
		if code, body, err := get("http://" + addr + "/readyz"); err != nil || code != http.StatusOK {
			t.Errorf("/readyz on %s = %d %q (%v), want 200", addr, code, body, err)
		}
	}
	if code, _, err := get("http://" + healthAt + "/metrics"); err != nil || code != http.StatusNotFound {
		t.Errorf("/metrics on the health listener = %d (%v), want 404", code, err)
	}
	if _, err := scrape(metricsAt); err != nil {
		t.Errorf("/metrics on the metrics listener: %v", err)
	}
	if l := p.log.LinesWith("serving /healthz and /readyz on " + healthAt); len(l) != 1 {
		t.Errorf("plugin log has %d lines announcing the health listener, want 1", len(l))
	}
}

// TestLivenessStuckTick: a reconciler tick blocked on a cgroup read fails
// /healthz once it has run longer than -liveness-timeout, naming the tick;
// /readyz stays ok; /healthz is ok again once the tick finishes.
func TestLivenessStuckTick(t *testing.T) {
	metricsAt, healthAt := proc.FreeAddr(t), proc.FreeAddr(t)
	e, p := startExternal(t, 2, "reconciler:\n  interval: 50ms\n  driftInterval: 100ms\n",
		"-metrics-address", metricsAt, "-health-address", healthAt, "-liveness-timeout", "1s")
	w := lsWorkload("stuck-tick", "a1b2c3d4-0001-4000-8000-000000000001", "ctr-stuck-tick", lsBuiltin)
	e.deployRunning(t, w, 100*mi)
	wait.Until(t, waitTimeout, func() string {
		fams, err := scrape(metricsAt)
		if err != nil {
			return err.Error()
		}
		return expectSample(fams, famUsage, ctrLabels(w), float64(100*mi))
	})
	if msg := healthz(healthAt, http.StatusOK, "ok"); msg != "" {
		t.Fatal(msg)
	}

	unplug := plug(t, filepath.Join(e.ctrDir(w.uid, w.id), "memory.current"), cgtest.Itoa(100*mi)+"\n")
	for _, addr := range []string{healthAt, metricsAt} {
		wait.Until(t, waitTimeout, func() string {
			return healthz(addr, http.StatusServiceUnavailable, "reconciler tick", "liveness bound 1s")
		})
	}
	if code, body, err := get("http://" + healthAt + "/readyz"); err != nil || code != http.StatusOK {
		t.Errorf("/readyz with a stuck tick = %d %q (%v), want 200", code, body, err)
	}
	unplug()
	wait.Until(t, waitTimeout, func() string { return healthz(healthAt, http.StatusOK, "ok") })
	if p.Exited() {
		t.Fatalf("plugin exited: %v", p.Err())
	}
}

// TestLivenessStuckEvent: a StartContainer blocked on a container's cgroup
// v1 file (holding the plugin's lock) fails /healthz once it has run longer
// than -liveness-timeout, naming the event; /healthz is ok again once it
// finishes. (On cgroup v2 no event does cgroup I/O: see
// TestLivenessStuckAncestorWriter.)
func TestLivenessStuckEvent(t *testing.T) {
	healthAt := proc.FreeAddr(t)
	e, p := startExternal(t, 1, "", "-metrics-address", "", "-health-address", healthAt, "-liveness-timeout", "1s",
		"-reconnect-max", "200ms")
	w := lsWorkload("stuck-event", "a1b2c3d4-0002-4000-8000-000000000002", "ctr-stuck-event", lsBuiltin)
	dir := e.v1Tree("kubepods/burstable/pod"+w.uid+"/"+w.id, limit512Mi)
	pod := newPod(w.name, w.uid, false, w.labels, w.annotations)
	e.runPod(pod)
	e.mustCreate(pod, newContainer(pod, "app", w.id, limit512Mi, nil))
	unplug := plug(t, filepath.Join(dir, "memory.soft_limit_in_bytes"), v1SoftLimitDefault+"\n")
	started := make(chan error, 1)
	go func() {
		// The runtime gives up on the plugin after its request timeout;
		// the plugin's handler is still stuck.
		p, c := e.lookup(w.id)
		started <- e.nri.StartContainer(ctx(t), &adaptation.StartContainerRequest{Pod: p, Container: c})
	}()
	wait.Until(t, waitTimeout, func() string {
		return healthz(healthAt, http.StatusServiceUnavailable, "NRI event StartContainer", "liveness bound 1s")
	})
	unplug()
	if err := <-started; err != nil {
		// The runtime gave up on the plugin (its request timeout) while the
		// handler was stuck: expected.
		t.Logf("StartContainer: %v", err)
	}
	wait.Until(t, waitTimeout, func() string { return healthz(healthAt, http.StatusOK, "ok") })
	if p.Exited() {
		t.Fatalf("plugin exited: %v", p.Err())
	}
}

// TestLivenessStuckAncestorWriter: an ancestor write blocked on a cgroup
// file holds up no CreateContainer (the writer works after the event),
// delays StartContainer by at most 2 s, with a warning, and fails /healthz
// naming the writer once it has run longer than -liveness-timeout; all is
// well again once the write finishes (issue 11).
func TestLivenessStuckAncestorWriter(t *testing.T) {
	healthAt := proc.FreeAddr(t)
	e, p := startExternal(t, 2, "", "-metrics-address", "", "-health-address", healthAt, "-liveness-timeout", "1s")
	w := lsWorkload("stuck-writer", "a1b2c3d4-0003-4000-8000-000000000003", "ctr-stuck-writer", lsBuiltin)
	podDir := e.v2Tree(w.uid, w.id)
	unplug := plug(t, filepath.Join(podDir, "memory.min"), "0\n")
	defer unplug()
	pod := newPod(w.name, w.uid, false, w.labels, w.annotations)
	e.runPod(pod)
	t0 := time.Now()
	e.mustCreate(pod, newContainer(pod, "app", w.id, limit512Mi, w.kubelet))
	if d := time.Since(t0); d > time.Second {
		t.Errorf("CreateContainer took %v with the ancestor write stuck; want it not to wait on it", d)
	}
	wait.Until(t, waitTimeout, func() string {
		return healthz(healthAt, http.StatusServiceUnavailable, "ancestor writer pass", "liveness bound 1s")
	})
	t0 = time.Now()
	e.start(w.id)
	if d := time.Since(t0); d < time.Second || d > 4*time.Second {
		t.Errorf("StartContainer took %v with the ancestor write stuck; want about 2 s (the writer's bound)", d)
	}
	wait.Until(t, waitTimeout, func() string {
		if l := p.log.LinesWith("starting before its ancestors' protection was written"); len(l) != 1 {
			return fmt.Sprintf("plugin log has %d lines warning of the start before the ancestors, want 1", len(l))
		}
		return ""
	})
	unplug()
	wait.Until(t, waitTimeout, func() string { return healthz(healthAt, http.StatusOK, "ok") })
	checkFiles(t, map[string]string{filepath.Join(podDir, "memory.min"): "268435456"})
	if p.Exited() {
		t.Fatalf("plugin exited: %v", p.Err())
	}
}
