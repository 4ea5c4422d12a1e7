package node_test

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/config"
	"nri-memqos/pkg/node"
	"nri-memqos/pkg/policy"
)

const (
	mi = int64(1) << 20
	gi = int64(1) << 30

	// request256 is a 256Mi request, limit512 a 512Mi limit.
	request256 = 256 * mi
	limit512   = 512 * mi
)

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// tree is a fake cgroup mount in a temporary directory, written as plain
// files (cgroupfs.FS.PlainFiles).
type tree struct {
	t       testing.TB
	root    string
	version int
}

func newTree(t testing.TB, version int) *tree {
	return &tree{t: t, root: t.TempDir(), version: version}
}

// dir is the memory directory of rel.
func (tr *tree) dir(rel string) string {
	if tr.version == 1 {
		return filepath.Join(tr.root, "memory", rel)
	}
	return filepath.Join(tr.root, rel)
}

// cgroup creates rel and its ancestors with the kernel's defaults of the
// files the plugin reads and writes.
func (tr *tree) cgroup(rel string) {
	tr.t.Helper()
	files := map[string]string{"memory.min": "0", "memory.low": "0", "memory.high": "max", "memory.swap.max": "max", "memory.oom.group": "0", "memory.current": "0"}
	if tr.version == 1 {
		unlimited := "9223372036854771712"
		files = map[string]string{"memory.soft_limit_in_bytes": unlimited, "memory.swappiness": "60", "memory.limit_in_bytes": unlimited, "memory.usage_in_bytes": "0"}
	}
	for p := rel; p != "/" && p != "."; p = filepath.Dir(p) {
		if err := os.MkdirAll(tr.dir(p), 0o755); err != nil {
			tr.t.Fatal(err)
		}
		for f, v := range files {
			path := filepath.Join(tr.dir(p), f)
			if _, err := os.Stat(path); err == nil {
				continue
			}
			if err := os.WriteFile(path, []byte(v+"\n"), 0o644); err != nil {
				tr.t.Fatal(err)
			}
		}
	}
}

// read returns the trimmed content of a file of rel.
func (tr *tree) read(rel, file string) string {
	tr.t.Helper()
	b, err := os.ReadFile(filepath.Join(tr.dir(rel), file))
	if err != nil {
		tr.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// cgroupWrite sets a file of rel, as someone else (kubelet) would.
func (tr *tree) cgroupWrite(rel, file, value string) {
	tr.t.Helper()
	if err := os.WriteFile(filepath.Join(tr.dir(rel), file), []byte(value+"\n"), 0o644); err != nil {
		tr.t.Fatal(err)
	}
}

// check compares files ("rel/file" → value) with the tree.
func (tr *tree) check(want map[string]string) {
	tr.t.Helper()
	for k, v := range want {
		rel, file := filepath.Split(k)
		if got := tr.read(filepath.Clean(rel), file); got != v {
			tr.t.Errorf("%s = %s; want %s", k, got, v)
		}
	}
}

// configYAML is a configuration over tr with extra YAML appended.
func (tr *tree) configYAML(extra string) string {
	return "cgroupRoot: " + tr.root + "\ncgroupVersion: \"" + itoa(int64(tr.version)) + "\"\n" + extra
}

type fixture struct {
	*tree
	n    *node.Node
	logs *test.Hook
	host node.Host
}

// newFixture configures a core over a fresh tree with extra configuration.
func newFixture(t testing.TB, version int, extra string, stateFile string) *fixture {
	t.Helper()
	tr := newTree(t, version)
	return startFixture(t, tr, extra, stateFile)
}

func startFixture(t testing.TB, tr *tree, extra string, stateFile string) *fixture {
	t.Helper()
	log, hook := test.NewNullLogger()
	log.SetOutput(io.Discard)
	log.SetLevel(logrus.DebugLevel)
	host := node.Host{MemTotal: 8 * gi, PageSize: 4096}
	// The configuration comes from the file (-config), as reloads need.
	n := node.New(node.Options{Log: log, Host: host, StateFile: stateFile, FileConfig: mustConfig(t, tr.configYAML(extra)),
		Meminfo: func() (int64, int64, error) { return 8 * gi, 8 * gi, nil }, NodePSI: func() (cgroupfs.PSI, error) { return cgroupfs.PSI{}, nil }})
	if err := n.Configure(""); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return &fixture{tree: tr, n: n, logs: hook, host: host}
}

// warnings returns the messages logged at warning level or above.
func (f *fixture) warnings() []string {
	var out []string
	for _, e := range f.logs.AllEntries() {
		if e.Level <= logrus.WarnLevel {
			out = append(out, e.Message)
		}
	}
	return out
}

// ctr is a container of a Burstable pod (cgroupfs driver) whose kubelet
// passes memory.min = request on cgroup v2 (MemoryQoS).
type ctrSpec struct {
	id, pod, class string
	request, limit int64
	created        int64
	annotations    map[string]string
}

func (s ctrSpec) rel() string { return "/kubepods/burstable/pod" + s.pod + "/" + s.id }

func (s ctrSpec) facts() node.Container {
	labels := map[string]string{}
	if s.class != "" {
		labels[policy.LabelClass] = s.class
	}
	unified := map[string]string{}
	if s.request > 0 {
		unified["memory.min"] = itoa(s.request)
	}
	return node.Container{
		ID: s.id,
		Pod: policy.Pod{Namespace: "team-a", Name: "pod-" + s.pod, UID: s.pod, Labels: labels,
			Annotations: s.annotations, CgroupParent: "/kubepods/burstable/pod" + s.pod},
		Ctr:         policy.Container{Name: "app-" + s.id, Limit: s.limit, Unified: unified},
		CgroupsPath: s.rel(),
		CreatedAt:   s.created,
	}
}

// mustConfig parses a configuration or fails the test.
func mustConfig(t testing.TB, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
