package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nri-memqos/test/internal/cgtest"
	"nri-memqos/test/internal/proc"
	"nri-memqos/test/internal/wait"
)

// TestReloadHalfWrittenFile rewrites the configuration file in place under
// a running plugin, with the writer stalling twice: on the empty file, and
// on the first half of it, a valid configuration without the class of a
// running container. The empty file is rejected; the half is applied, but
// the container of the missing class keeps its protection and management
// (one warning) while new pods of that class fail; the complete file
// decides the container again and new pods of the class start.
func TestReloadHalfWrittenFile(t *testing.T) {
	e := newEnv(t)
	e.mustStartNRI()
	goldClass := "classes:\n  gold:\n    min: 0.5\n"
	path := e.writeConfig("memqos.yaml", 2, fastReconciler+goldClass)
	p := e.startPlugin(path, "-metrics-address", proc.FreeAddr(t))
	e.waitSync(p)

	goldWorkload := func(name, uid, id string) workload {
		return workload{
			name: name, uid: uid, id: id,
			labels: map[string]string{labelClass: "gold"}, annotations: map[string]string{annRequest: "256Mi"},
			kubelet: kubeletUnified, want: map[string]string{"memory.min": half256Mi},
		}
	}
	old := goldWorkload("gold-old", "a1b2c3d4-0001-4000-8000-000000000001", "ctr-gold-old")
	e.deployRunning(t, old, 100*mi)
	protected := e.ancestorFiles(old.uid, half256Mi, "0", half256Mi, "0")
	checkFiles(t, protected)

	full := e.configText(2, fastReconciler+goldClass)
	half := full[:strings.Index(full, "classes:")]

	// 1. Truncated in place; the writer stalls on the empty file.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line, ok := waitLog(t, p, 0, "configuration rejected", "empty")
	if !ok {
		t.FailNow()
	}
	for _, want := range []string{path, "empty", "{}"} {
		if !strings.Contains(line, want) {
			t.Errorf("rejection %q does not contain %q", line, want)
		}
	}
	if n := len(p.log.LinesWith("configuration reloaded")); n != 0 {
		t.Fatalf("plugin reloaded %d times from an empty file", n)
	}
	checkFiles(t, protected)

	// 2. Half written, and the writer stalls again: a valid configuration
	// without gold, applied. The gold container keeps its decision.
	if _, err := f.WriteString(half); err != nil {
		t.Fatal(err)
	}
	if _, ok := waitLog(t, p, 0, "configuration reloaded"); !ok {
		t.FailNow()
	}
	kept := p.log.LinesWith("keeping the container's last decision", "ctr-gold-old")
	if len(kept) == 0 {
		kept = p.log.LinesWith("keeping the container's last decision", "gold-old")
	}
	if len(kept) != 1 || !strings.Contains(kept[0], "unknown class") {
		t.Errorf("warnings keeping the gold container: %q; want exactly one naming the unknown class", kept)
	}
	checkFiles(t, protected)
	// Still managed: the drift repair writes its own value back.
	oldMin := filepath.Join(e.ctrDir(old.uid, old.id), "memory.min")
	cgtest.Write(t, oldMin, "0\n")
	wait.Until(t, waitTimeout, func() string {
		if got := cgtest.Read(t, oldMin); got != half256Mi {
			return fmt.Sprintf("kept container's %s = %q, want it repaired to %s", oldMin, got, half256Mi)
		}
		return ""
	})

	// A new gold pod fails with the usual one line.
	refused := goldWorkload("gold-refused", "a1b2c3d4-0002-4000-8000-000000000002", "ctr-gold-refused")
	e.v2Tree(refused.uid, refused.id)
	pod := newPod(refused.name, refused.uid, false, refused.labels, refused.annotations)
	e.runPod(pod)
	_, err = e.create(pod, newContainer(pod, "app", refused.id, limit512Mi, kubeletUnified))
	if err == nil {
		t.Fatal("creating a container of the removed class gold succeeded")
	}
	for _, want := range []string{testNamespace + "/gold-refused", labelClass, `"gold"`, "unknown class", "allowed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q is more than one line", err)
	}

	// 3. The rest written: gold is back, the container decided again under
	// it, new gold pods start.
	if _, err := f.WriteString(full[len(half):]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := waitLog(t, p, 1, "configuration reloaded"); !ok {
		t.FailNow()
	}
	if n := len(p.log.LinesWith("keeping the container's last decision")); n != 1 {
		t.Errorf("%d warnings keeping a container after gold came back; want the one before", n)
	}
	if n := len(p.log.LinesWith("configuration reloaded")); n != 2 {
		t.Errorf("plugin reloaded %d times; want 2 (the half, the whole)", n)
	}
	checkFiles(t, protected)
	next := goldWorkload("gold-new", "a1b2c3d4-0003-4000-8000-000000000003", "ctr-gold-new")
	e.deployRunning(t, next, 100*mi)
	checkFiles(t, e.ancestorFiles(next.uid, half256Mi, "0", "268435456", "0"))
	if p.Exited() {
		t.Errorf("plugin exited: %v", p.Err())
	}
}
