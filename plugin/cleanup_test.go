package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"nri-memqos/pkg/config"
	"nri-memqos/pkg/node"
	"nri-memqos/pkg/policy"
	"nri-memqos/pkg/state"
)

const (
	cmi = int64(1) << 20
	cgi = int64(1) << 30

	v1UnlimitedText = "9223372036854771712"
)

// cgTree is a fake cgroup mount in a temporary directory, written as plain
// files, with a core (node.Node) over it keeping its state in stateDir.
type cgTree struct {
	t        *testing.T
	root     string
	version  int
	stateDir string
	cfg      string
	n        *node.Node
}

func newCgTree(t *testing.T, version int) *cgTree {
	t.Helper()
	tr := &cgTree{t: t, root: t.TempDir(), version: version, stateDir: t.TempDir()}
	tr.cfg = writeTemp(t, "memqos.yaml", fmt.Sprintf("cgroupRoot: %s\ncgroupVersion: \"%d\"\nreconciler:\n  enabled: false\n", tr.root, version))
	tr.start()
	return tr
}

// start starts a core (again: a plugin restart) over the tree and its
// state directory.
func (tr *cgTree) start() {
	tr.t.Helper()
	cfg, err := config.Load(tr.cfg)
	if err != nil {
		tr.t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	tr.n = node.New(node.Options{Log: log, Host: node.Host{MemTotal: 8 * cgi, PageSize: 4096}, FileConfig: cfg,
		StateFile: tr.stateFile(), Meminfo: func() (int64, int64, error) { return 8 * cgi, 8 * cgi, nil }})
	if err := tr.n.Configure(""); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr *cgTree) stateFile() string { return filepath.Join(tr.stateDir, stateFileName) }

func (tr *cgTree) dir(rel string) string {
	if tr.version == 1 {
		return filepath.Join(tr.root, "memory", rel)
	}
	return filepath.Join(tr.root, rel)
}

func (tr *cgTree) write(rel, file, value string) {
	tr.t.Helper()
	if err := os.MkdirAll(tr.dir(rel), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tr.dir(rel), file), []byte(value+"\n"), 0o644); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr *cgTree) read(rel, file string) string {
	tr.t.Helper()
	b, err := os.ReadFile(filepath.Join(tr.dir(rel), file))
	if err != nil {
		tr.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// cgroup lays out rel and its ancestors with the kernel's defaults, keeping
// files that exist; extra are rel's own files (kubelet's and the runtime's
// values).
func (tr *cgTree) cgroup(rel string, extra map[string]string) {
	tr.t.Helper()
	defaults := map[string]string{"memory.min": "0", "memory.low": "0", "memory.high": "max", "memory.max": "max",
		"memory.swap.max": "max", "memory.oom.group": "0"}
	if tr.version == 1 {
		defaults = map[string]string{"memory.soft_limit_in_bytes": v1UnlimitedText, "memory.swappiness": "60",
			"memory.limit_in_bytes": v1UnlimitedText, "memory.memsw.limit_in_bytes": v1UnlimitedText}
	}
	for p := rel; p != "/"; p = filepath.Dir(p) {
		for f, v := range defaults {
			if _, err := os.Stat(filepath.Join(tr.dir(p), f)); err != nil {
				tr.write(p, f, v)
			}
		}
	}
	for f, v := range extra {
		tr.write(rel, f, v)
	}
}

// snapshot reads every file of the tree: "rel/file" → value.
func (tr *cgTree) snapshot() map[string]string {
	tr.t.Helper()
	out := map[string]string{}
	base := tr.dir("/")
	err := filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		b, err := os.ReadFile(p)
		out["/"+rel] = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		tr.t.Fatal(err)
	}
	return out
}

// check compares files ("rel/file" → value) with the tree.
func (tr *cgTree) check(what string, want map[string]string) {
	tr.t.Helper()
	for k, v := range want {
		if got := tr.read(filepath.Dir(k), filepath.Base(k)); got != v {
			tr.t.Errorf("%s: %s = %s; want %s", what, k, got, v)
		}
	}
}

// ctrFacts is a container of a Burstable pod (cgroupfs driver) with
// kubelet's unified map.
type ctrFacts struct {
	id, class, request string
	limit              int64
	kubelet            map[string]string
}

func (c ctrFacts) rel() string { return "/kubepods/burstable/pod" + c.id + "/" + c.id }

func (c ctrFacts) facts() node.Container {
	ann := map[string]string{}
	if c.request != "" {
		ann[policy.AnnotationRequest] = c.request
	}
	return node.Container{
		ID: c.id,
		Pod: policy.Pod{Namespace: "team-a", Name: "pod-" + c.id, UID: c.id, Labels: map[string]string{policy.LabelClass: c.class},
			Annotations: ann, CgroupParent: "/kubepods/burstable/pod" + c.id},
		Ctr:         policy.Container{Name: "app", Limit: c.limit, Unified: maps.Clone(c.kubelet)},
		CgroupsPath: c.rel(),
	}
}

// create creates and starts a container through the core, writing what
// runc would write on cgroup v2: kubelet's unified map with the plugin's
// adjustment merged in, and the limit.
func (tr *cgTree) create(c ctrFacts) *policy.Decision {
	tr.t.Helper()
	limit := "max"
	if c.limit > 0 {
		limit = fmt.Sprint(c.limit)
	}
	if tr.version == 1 {
		tr.cgroup(c.rel(), map[string]string{"memory.limit_in_bytes": limit})
	} else {
		tr.cgroup(c.rel(), map[string]string{"memory.max": limit})
	}
	d, err := tr.n.Create(c.facts())
	if err != nil || d == nil {
		tr.t.Fatalf("create %s: %v, %v", c.id, d, err)
	}
	if tr.version == 2 {
		unified := maps.Clone(c.kubelet)
		if unified == nil {
			unified = map[string]string{}
		}
		maps.Copy(unified, tr.n.UnifiedV2(d))
		for f, v := range unified {
			if strings.HasPrefix(f, "memory.") {
				tr.write(c.rel(), f, v)
			}
		}
	}
	tr.n.Start(c.facts())
	return d
}

func runCleanupT(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runCleanup(args, &out, &errb)
	return code, out.String(), errb.String()
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// v2 containers: a latency-sensitive one whose kubelet set memory.min
// itself (MemoryQoS), a burstable one, a best-effort one whose kubelet set
// memory.oom.group.
var (
	cleanLS = ctrFacts{id: "ls", class: "latency-sensitive", request: "256Mi", limit: 512 * cmi,
		kubelet: map[string]string{"cpu.weight": "79", "memory.min": "134217728"}}
	cleanBU = ctrFacts{id: "bu", class: "burstable", request: "256Mi", limit: 512 * cmi,
		kubelet: map[string]string{"cpu.weight": "79"}}
	cleanBE = ctrFacts{id: "be", class: "best-effort", limit: 512 * cmi,
		kubelet: map[string]string{"memory.oom.group": "1"}}
)

// TestCleanupV2 creates three containers through the core on cgroup v2,
// lets kubelet change one ancestor value and one container value
// afterwards, restarts the plugin (the state survives), then runs cleanup:
// a dry run changes nothing; the cleanup gives every file the plugin set
// back what it held without the plugin (kubelet's value, the baseline or
// the kernel's default), keeps what kubelet changed, and removes the state
// file.
func TestCleanupV2(t *testing.T) {
	tr := newCgTree(t, 2)
	// kubelet's own QoS-level memory.min, below what the plugin needs.
	tr.cgroup("/kubepods/burstable", map[string]string{"memory.min": fmt.Sprint(64 * cmi)})
	tr.create(cleanLS)
	tr.create(cleanBU)
	tr.create(cleanBE)

	const (
		lsMin  = "268435456" // 256Mi
		buLow  = "268435456"
		buHigh = "510025728" // burstable 256Mi of 512Mi
		beHigh = "429494272" // best-effort, 0 of 512Mi
	)
	tr.check("created", map[string]string{
		"/kubepods/burstable/podls/ls/memory.min": lsMin, "/kubepods/burstable/podls/ls/memory.swap.max": "0",
		"/kubepods/burstable/podbu/bu/memory.low": buLow, "/kubepods/burstable/podbu/bu/memory.high": buHigh,
		"/kubepods/burstable/podbe/be/memory.high": beHigh, "/kubepods/burstable/podbe/be/memory.oom.group": "1",
		"/kubepods/burstable/podls/memory.min": lsMin, "/kubepods/burstable/podbu/memory.low": buLow,
		"/kubepods/burstable/memory.min": lsMin, "/kubepods/burstable/memory.low": buLow,
		"/kubepods/memory.min": lsMin, "/kubepods/memory.low": buLow,
	})

	// What the state file holds per container: the path, the plugin's
	// values, kubelet's where it set the key.
	st, err := state.Read(tr.stateFile())
	if err != nil {
		t.Fatal(err)
	}
	wantEntries := map[string]*state.Container{
		"ls": {Path: cleanLS.rel(), Set: map[string]string{"memory.min": lsMin, "memory.swap.max": "0"},
			Restore: map[string]string{"memory.min": "134217728"}},
		"bu": {Path: cleanBU.rel(), Set: map[string]string{"memory.low": buLow, "memory.high": buHigh}},
		"be": {Path: cleanBE.rel(), Set: map[string]string{"memory.high": beHigh, "memory.oom.group": "1"},
			Restore: map[string]string{"memory.oom.group": "1"}},
	}
	checkEntries(t, st.Containers, wantEntries)
	// Small: the path, at most five values the plugin set and as many to
	// give back.
	if b, err := json.Marshal(st.Containers["ls"]); err != nil || len(b) > 200 {
		t.Errorf("the state entry of ls takes %d bytes (%v): %s", len(b), err, b)
	}

	// A restart keeps the entries (and the protection). Synchronize lists
	// the plugin's own values in the unified maps: they must not be taken
	// for kubelet's.
	listed := []node.Container{}
	for _, c := range []ctrFacts{cleanLS, cleanBU, cleanBE} {
		f := c.facts()
		for _, file := range []string{"memory.min", "memory.low", "memory.high", "memory.swap.max", "memory.oom.group"} {
			if f.Ctr.Unified == nil {
				f.Ctr.Unified = map[string]string{}
			}
			f.Ctr.Unified[file] = tr.read(c.rel(), file)
		}
		f.Ctr.Annotations = map[string]string{policy.AnnotationRecordedRequest: "268435456"}
		listed = append(listed, f)
	}
	tr.start()
	if _, err := tr.n.Resync(listed); err != nil {
		t.Fatal(err)
	}
	if st, err = state.Read(tr.stateFile()); err != nil {
		t.Fatal(err)
	}
	checkEntries(t, st.Containers, wantEntries)

	// The plugin is gone for good. Since, kubelet set the node level's
	// memory.low and the burstable container's memory.high; the memory.high
	// guard had raised the best-effort container's.
	tr.write("/kubepods", "memory.low", "1073741824")
	tr.write(cleanBU.rel(), "memory.high", "400003072")
	tr.write(cleanBE.rel(), "memory.high", "483180544")

	before := tr.snapshot()
	code, out, errs := runCleanupT(t, "-state-dir", tr.stateDir, "-dry-run")
	if code != 0 || errs != "" {
		t.Fatalf("cleanup -dry-run = %d, stderr %q\n%s", code, errs, out)
	}
	if after := tr.snapshot(); !maps.Equal(before, after) {
		t.Errorf("cleanup -dry-run changed the tree:\nbefore %v\nafter  %v", before, after)
	}
	if !fileExists(tr.stateFile()) {
		t.Error("cleanup -dry-run removed the state file")
	}
	for _, want := range []string{"would reset", "summary: 9 would be reset, 1 unchanged, 2 kept", "dry run: nothing written"} {
		if !strings.Contains(out, want) {
			t.Errorf("cleanup -dry-run output lacks %q:\n%s", want, out)
		}
	}

	code, out, errs = runCleanupT(t, "-state-dir", tr.stateDir, "-config", tr.cfg)
	if code != 0 || errs != "" {
		t.Fatalf("cleanup = %d, stderr %q\n%s", code, errs, out)
	}
	want := map[string]string{
		// kubelet's memory.min back, the kernel's swap default.
		"/kubepods/burstable/podls/ls/memory.min": "134217728", "/kubepods/burstable/podls/ls/memory.swap.max": "max",
		"/kubepods/burstable/podls/ls/memory.low": "0", "/kubepods/burstable/podls/ls/memory.high": "max",
		"/kubepods/burstable/podls/ls/memory.oom.group": "0",
		// kubelet's memory.high stays.
		"/kubepods/burstable/podbu/bu/memory.low": "0", "/kubepods/burstable/podbu/bu/memory.high": "400003072",
		// The guard's memory.high is the plugin's; kubelet's oom.group stays.
		"/kubepods/burstable/podbe/be/memory.high": "max", "/kubepods/burstable/podbe/be/memory.oom.group": "1",
		// Ancestors: to their baselines; kubelet's later memory.low stays.
		"/kubepods/burstable/podls/memory.min": "0", "/kubepods/burstable/podbu/memory.low": "0",
		"/kubepods/burstable/memory.min": fmt.Sprint(64 * cmi), "/kubepods/burstable/memory.low": "0",
		"/kubepods/memory.min": "0", "/kubepods/memory.low": "1073741824",
	}
	tr.check("after cleanup", want)
	// Nothing else changed.
	after := tr.snapshot()
	for k, v := range before {
		if _, checked := want[k]; !checked && after[k] != v {
			t.Errorf("cleanup changed %s from %s to %s", k, v, after[k])
		}
	}
	if fileExists(tr.stateFile()) {
		t.Error("cleanup left the state file")
	}
	if left, _ := filepath.Glob(tr.stateFile() + ".journal-*"); len(left) != 0 {
		t.Errorf("cleanup left the state journals %q: a plugin started next would take them back", left)
	}
	for _, want := range []string{
		"reset       container ls /kubepods/burstable/podls/ls memory.min: 268435456 -> 134217728 (kubelet's)",
		"kept        container bu /kubepods/burstable/podbu/bu memory.high: holds 400003072, the plugin set 510025728",
		"guard",
		"reset       ancestor /kubepods/burstable memory.min: 268435456 -> 67108864 (its baseline",
		"kept        ancestor /kubepods memory.low: holds 1073741824, the plugin wrote 268435456",
		"summary: 9 reset, 1 unchanged, 2 kept (changed by someone else), 0 gone, 0 failed",
		"removed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("cleanup output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 1+12+2 {
		t.Errorf("cleanup printed %d lines, want a header, one per file (12) and two closing lines:\n%s", n, out)
	}

	// A later plugin starts clean; cleanup again has nothing to do.
	code, out, _ = runCleanupT(t, "-state-dir", tr.stateDir)
	if code != 0 || !strings.Contains(out, "nothing to do") {
		t.Errorf("second cleanup = %d:\n%s", code, out)
	}
}

func checkEntries(t *testing.T, got, want map[string]*state.Container) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("state has entries for %d containers, want %d: %v", len(got), len(want), got)
	}
	for id, w := range want {
		g := got[id]
		if g == nil {
			t.Errorf("state has no entry for container %s", id)
			continue
		}
		if g.Path != w.Path || !maps.Equal(g.Set, w.Set) || !maps.Equal(g.Restore, w.Restore) || len(g.Older) != 0 {
			t.Errorf("state entry of %s = %+v; want %+v", id, *g, *w)
		}
	}
}

// TestCleanupV2Reload: a reload's new values reach running containers
// through the reconciler's drift repair, later; until then the file holds
// the value before, which is still the plugin's for cleanup. A container
// whose cgroup is gone is reported, not failed.
func TestCleanupV2Reload(t *testing.T) {
	tr := newCgTree(t, 2)
	tr.create(cleanLS)
	tr.create(cleanBU)
	cfg, err := config.Parse([]byte(fmt.Sprintf("cgroupRoot: %s\ncgroupVersion: \"2\"\nreconciler:\n  enabled: false\n"+
		"classes:\n  latency-sensitive:\n    min: 0.5\n", tr.root)))
	if err != nil {
		t.Fatal(err)
	}
	tr.n.Reload(cfg)
	st, err := state.Read(tr.stateFile())
	if err != nil {
		t.Fatal(err)
	}
	if e := st.Containers["ls"]; e == nil || e.Set["memory.min"] != "134217728" || e.Older["memory.min"] != "268435456" {
		t.Fatalf("state entry of ls after the reload = %+v; want memory.min 134217728 set, 268435456 before", e)
	}
	if err := os.RemoveAll(filepath.Dir(tr.dir(cleanBU.rel()))); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCleanupT(t, "-state-dir", tr.stateDir)
	if code != 0 {
		t.Fatalf("cleanup = %d, stderr %q\n%s", code, errs, out)
	}
	tr.check("after cleanup", map[string]string{
		"/kubepods/burstable/podls/ls/memory.min": "134217728", "/kubepods/burstable/podls/ls/memory.swap.max": "max",
		"/kubepods/burstable/podls/memory.min": "0", "/kubepods/memory.min": "0", "/kubepods/memory.low": "0",
	})
	for _, want := range []string{"set by the plugin before a reload", "gone        container bu /kubepods/burstable/podbu/bu: the cgroup no longer exists"} {
		if !strings.Contains(out, want) {
			t.Errorf("cleanup output lacks %q:\n%s", want, out)
		}
	}
}

// TestCleanupV1 creates two containers through the core on cgroup v1: the
// plugin writes their soft limit, swappiness and memsw limit itself at
// start, and records what they held before. kubelet changes one of them
// afterwards. Cleanup gives back what they held before the plugin, keeps
// kubelet's change and removes the state file; a dry run changes nothing.
func TestCleanupV1(t *testing.T) {
	tr := newCgTree(t, 1)
	ls := ctrFacts{id: "ls", class: "latency-sensitive", request: "256Mi", limit: 512 * cmi}
	bu := ctrFacts{id: "bu", class: "burstable", request: "256Mi", limit: 512 * cmi}
	// Swappiness 30 inherited from the pod's cgroup, as the kernel does.
	tr.cgroup(ls.rel(), map[string]string{"memory.swappiness": "30"})
	tr.create(ls)
	tr.create(bu)
	tr.check("started", map[string]string{
		"/kubepods/burstable/podls/ls/memory.soft_limit_in_bytes":  "268435456",
		"/kubepods/burstable/podls/ls/memory.swappiness":           "0",
		"/kubepods/burstable/podls/ls/memory.memsw.limit_in_bytes": "536870912",
		"/kubepods/burstable/podbu/bu/memory.soft_limit_in_bytes":  "268435456",
	})
	st, err := state.Read(tr.stateFile())
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, st.Containers, map[string]*state.Container{
		"ls": {Path: ls.rel(),
			Set:     map[string]string{"memory.soft_limit_in_bytes": "268435456", "memory.swappiness": "0", "memory.memsw.limit_in_bytes": "536870912"},
			Restore: map[string]string{"memory.soft_limit_in_bytes": "-1", "memory.swappiness": "30", "memory.memsw.limit_in_bytes": "-1"}},
		"bu": {Path: bu.rel(), Set: map[string]string{"memory.soft_limit_in_bytes": "268435456"},
			Restore: map[string]string{"memory.soft_limit_in_bytes": "-1"}},
	})
	// A restart rewrites the values (Synchronize) and keeps what they were.
	tr.start()
	if _, err := tr.n.Resync([]node.Container{ls.facts(), bu.facts()}); err != nil {
		t.Fatal(err)
	}
	if st2, err := state.Read(tr.stateFile()); err != nil || !maps.Equal(st2.Containers["ls"].Restore, st.Containers["ls"].Restore) {
		t.Fatalf("state after a restart: %v, %v; want the restore values kept", st2, err)
	}
	// kubelet changes bu's soft limit after the plugin went.
	tr.write(bu.rel(), "memory.soft_limit_in_bytes", "1048576")

	before := tr.snapshot()
	if code, out, errs := runCleanupT(t, "-state-dir", tr.stateDir, "-dry-run"); code != 0 || errs != "" {
		t.Fatalf("cleanup -dry-run = %d, stderr %q\n%s", code, errs, out)
	}
	if after := tr.snapshot(); !maps.Equal(before, after) {
		t.Errorf("cleanup -dry-run changed the tree:\nbefore %v\nafter  %v", before, after)
	}

	code, out, errs := runCleanupT(t, "-state-dir", tr.stateDir, "-config", tr.cfg)
	if code != 0 || errs != "" {
		t.Fatalf("cleanup = %d, stderr %q\n%s", code, errs, out)
	}
	tr.check("after cleanup", map[string]string{
		"/kubepods/burstable/podls/ls/memory.soft_limit_in_bytes":  "-1",
		"/kubepods/burstable/podls/ls/memory.swappiness":           "30",
		"/kubepods/burstable/podls/ls/memory.memsw.limit_in_bytes": "-1",
		"/kubepods/burstable/podbu/bu/memory.soft_limit_in_bytes":  "1048576",
		"/kubepods/burstable/podbu/bu/memory.swappiness":           "60",
	})
	if !strings.Contains(out, "summary: 3 reset, 0 unchanged, 1 kept") {
		t.Errorf("cleanup output:\n%s", out)
	}
	if fileExists(tr.stateFile()) {
		t.Error("cleanup left the state file")
	}
}

// TestCleanupFailures: a file that cannot be read or written fails the
// cleanup (exit 1) and keeps the state file for another run; bad flags and
// bad input fail it with 2 before anything is written.
func TestCleanupFailures(t *testing.T) {
	tr := newCgTree(t, 2)
	tr.create(cleanLS)
	// memory.swap.max turned into something no one can read or write.
	p := filepath.Join(tr.dir(cleanLS.rel()), "memory.swap.max")
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCleanupT(t, "-state-dir", tr.stateDir)
	if code != 1 || !strings.Contains(out, "FAILED") || !strings.Contains(out, "kept") {
		t.Errorf("cleanup with an unreadable file = %d, want 1:\n%s", code, out)
	}
	if !fileExists(tr.stateFile()) {
		t.Error("a failed cleanup removed the state file")
	}
	if got := tr.read(cleanLS.rel(), "memory.min"); got != "134217728" {
		t.Errorf("memory.min = %s; the other files are reset all the same", got)
	}

	other := writeTemp(t, "other.yaml", "cgroupRoot: /elsewhere\ncgroupVersion: \"2\"\n")
	badState := t.TempDir()
	if err := os.WriteFile(filepath.Join(badState, stateFileName), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	escape := t.TempDir()
	if err := state.Save(filepath.Join(escape, stateFileName), &state.State{Scope: state.Scope(tr.root, 2),
		Ancestors: []state.Value{{Path: "/../etc", File: "memory.min", Value: 1}}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"-force"}, "allowed flags"},
		{"argument", []string{"-state-dir", tr.stateDir, "now"}, "unexpected argument"},
		{"no state dir", []string{"-state-dir", ""}, "-state-dir"},
		{"bad version", []string{"-state-dir", tr.stateDir, "-cgroup-version", "3"}, "allowed: auto, 1, 2"},
		{"other mount", []string{"-state-dir", tr.stateDir, "-config", other}, "was written for the cgroup mount"},
		{"other version", []string{"-state-dir", tr.stateDir, "-cgroup-version", "1"}, "cgroup v2"},
		{"bad state", []string{"-state-dir", badState}, "failed to read state"},
		{"path outside", []string{"-state-dir", escape}, "clean absolute cgroup path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tr.snapshot()
			code, out, errs := runCleanupT(t, tc.args...)
			if code != 2 || !strings.Contains(errs, tc.want) {
				t.Errorf("cleanup %v = %d, stderr %q (stdout %q); want 2 and %q", tc.args, code, errs, out, tc.want)
			}
			if after := tr.snapshot(); !maps.Equal(before, after) {
				t.Errorf("cleanup %v changed the tree", tc.args)
			}
		})
	}
	if code, out, _ := runCleanupT(t, "-h"); code != 0 || !strings.Contains(out, "Usage: nri-memqos cleanup") {
		t.Errorf("cleanup -h = %d:\n%s", code, out)
	}
}
