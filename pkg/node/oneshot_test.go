package node_test

import (
	"io"
	"maps"
	"os"
	"path"
	"reflect"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/node"
	"nri-memqos/pkg/state"
)

// oneShot is the core of one OCI hook process over tr: configured from the
// file, on the shared state file. The caller closes it.
func oneShot(t *testing.T, tr *tree, extra, stateFile string) *node.Node {
	t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	n := node.New(node.Options{Log: log, Host: node.Host{MemTotal: 8 * gi, PageSize: 4096}, StateFile: stateFile,
		FileConfig: mustConfig(t, tr.configYAML(extra)), OneShot: true,
		Meminfo: func() (int64, int64, error) { return 8 * gi, 8 * gi, nil }, NodePSI: func() (cgroupfs.PSI, error) { return cgroupfs.PSI{}, nil }})
	if err := n.Configure(""); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return n
}

// promisesIn reads the promises the state file holds (nil when none).
func promisesIn(t *testing.T, stateFile string) map[string]state.Promise {
	t.Helper()
	st, err := state.Read(stateFile)
	if err != nil {
		t.Fatalf("reading the state: %v", err)
	}
	if len(st.Promises) == 0 {
		return nil
	}
	return st.Promises
}

// podAncestors gives memory.min and memory.low of /kubepods,
// /kubepods/burstable and /kubepods/burstable/pod<pod>.
func podAncestors(pod string, kubeMin, podMin int64) map[string]string {
	return ancestors(kubeMin, 0, map[string][2]int64{pod: {podMin, 0}})
}

// hookStep is one hook process: it creates or removes one container.
type hookStep struct {
	create bool
	ctr    ctrSpec
	// config is extra YAML over the tree.
	config string
	// want are files after the step; wantPromises the state's promises.
	want         map[string]string
	wantPromises map[string]state.Promise
}

// runHook runs step i in a one-shot core of its own, as a hook process
// would, and checks files and state after it.
func runHook(t *testing.T, tr *tree, stateFile string, i int, s hookStep) {
	t.Helper()
	n := oneShot(t, tr, s.config, stateFile)
	if s.create {
		d, err := n.CreateNow(s.ctr.facts())
		if err != nil || d == nil {
			t.Fatalf("step %d: CreateNow(%s) = %v, %v; want a decision", i, s.ctr.id, d, err)
		}
	} else {
		// A poststop hook knows the container's ID only.
		n.RemoveNow(node.Container{ID: s.ctr.id})
	}
	if err := n.Close(); err != nil {
		t.Fatalf("step %d: Close: %v", i, err)
	}
	for k, v := range s.want {
		if got := tr.read(path.Dir(k), path.Base(k)); got != v {
			t.Errorf("step %d: %s = %s; want %s", i, k, got, v)
		}
	}
	if got := promisesIn(t, stateFile); !reflect.DeepEqual(got, s.wantPromises) {
		t.Errorf("step %d: state promises = %v; want %v", i, got, s.wantPromises)
	}
}

// TestOneShotSequence: hook processes one after another on the same state
// and tree: each takes the promises of the containers before it from the
// state, so the ancestors carry the sum, a withdrawal lowers them to what
// the others need, and the last brings back kubelet's baseline (64Mi on the
// pod), never below it.
func TestOneShotSequence(t *testing.T) {
	a := ctrSpec{id: "a", pod: "p", class: "latency-sensitive", request: request256, limit: limit512}
	b := ctrSpec{id: "b", pod: "p", class: "latency-sensitive", request: 128 * mi, limit: limit512}
	pa := state.Promise{Path: a.rel(), Min: request256}
	pb := state.Promise{Path: b.rel(), Min: 128 * mi}
	withCtr := func(w map[string]string, s ctrSpec, min string) map[string]string {
		w = maps.Clone(w)
		w[s.rel()+"/memory.min"] = min
		w[s.rel()+"/memory.swap.max"] = "0"
		return w
	}
	steps := []hookStep{
		{create: true, ctr: a, want: withCtr(podAncestors("p", request256, request256), a, itoa(request256)),
			wantPromises: map[string]state.Promise{"a": pa}},
		{create: true, ctr: b, want: withCtr(podAncestors("p", 384*mi, 384*mi), b, itoa(128*mi)),
			wantPromises: map[string]state.Promise{"a": pa, "b": pb}},
		{ctr: a, want: podAncestors("p", 128*mi, 128*mi), wantPromises: map[string]state.Promise{"b": pb}},
		{ctr: b, want: podAncestors("p", 0, 64*mi), wantPromises: nil},
	}
	tr := newTree(t, 2)
	tr.cgroup(a.rel())
	tr.cgroup(b.rel())
	tr.cgroupWrite("/kubepods/burstable/podp", "memory.min", itoa(64*mi)) // kubelet's
	stateFile := t.TempDir() + "/ancestors.json"
	for i, s := range steps {
		runHook(t, tr, stateFile, i, s)
	}
}

// TestOneShotRepeatedAndUnknown: a hook run twice for the same container
// (createRuntime and prestart both configured) promises once, not twice; a
// poststop for a container no hook created changes nothing.
func TestOneShotRepeatedAndUnknown(t *testing.T) {
	a := ctrSpec{id: "a", pod: "a", class: "latency-sensitive", request: request256, limit: limit512}
	pa := state.Promise{Path: a.rel(), Min: request256}
	once := ancestors(request256, 0, map[string][2]int64{"a": {request256, 0}})
	tr := newTree(t, 2)
	tr.cgroup(a.rel())
	stateFile := t.TempDir() + "/ancestors.json"
	for i, s := range []hookStep{
		{create: true, ctr: a, want: once, wantPromises: map[string]state.Promise{"a": pa}},
		{create: true, ctr: a, want: once, wantPromises: map[string]state.Promise{"a": pa}},
		{ctr: ctrSpec{id: "never-created"}, want: once, wantPromises: map[string]state.Promise{"a": pa}},
		{ctr: a, want: ancestors(0, 0, map[string][2]int64{"a": {0, 0}}), wantPromises: nil},
		{ctr: a, want: ancestors(0, 0, map[string][2]int64{"a": {0, 0}}), wantPromises: nil},
	} {
		runHook(t, tr, stateFile, i, s)
	}
}

// TestOneShotNodeCap: the node protection cap counts the promises of the
// containers earlier hooks created (cap 0.05 × 8Gi = 409.6Mi: a second
// 256Mi promise does not fit), and a container promised nothing leaves no
// promise in the state.
func TestOneShotNodeCap(t *testing.T) {
	const capped = "nodeProtectionFraction: 0.05\n"
	a := ctrSpec{id: "a", pod: "a", class: "latency-sensitive", request: request256, limit: limit512}
	b := ctrSpec{id: "b", pod: "b", class: "latency-sensitive", request: request256, limit: limit512}
	pa := state.Promise{Path: a.rel(), Min: request256}
	tr := newTree(t, 2)
	tr.cgroup(a.rel())
	tr.cgroup(b.rel())
	tr.cgroupWrite(b.rel(), "memory.min", itoa(request256)) // kubelet's
	stateFile := t.TempDir() + "/ancestors.json"
	for i, s := range []hookStep{
		{create: true, ctr: a, config: capped, want: ancestors(request256, 0, map[string][2]int64{"a": {request256, 0}, "b": {0, 0}}),
			wantPromises: map[string]state.Promise{"a": pa}},
		{create: true, ctr: b, config: capped, want: ancestors(request256, 0, map[string][2]int64{"a": {request256, 0}, "b": {0, 0}}),
			wantPromises: map[string]state.Promise{"a": pa}},
		{ctr: a, config: capped, want: ancestors(0, 0, map[string][2]int64{"a": {0, 0}, "b": {0, 0}}), wantPromises: nil},
	} {
		runHook(t, tr, stateFile, i, s)
	}
	// b's own memory.min, kubelet's 256Mi at creation, is set to an
	// explicit 0.
	if got := tr.read(b.rel(), "memory.min"); got != "0" {
		t.Errorf("b's memory.min = %s; want 0 (the cap reached)", got)
	}
}

// TestOneShotAfterPlugin: the NRI plugin created a container and stopped;
// hooks take over on its state: a new container adds to its promise, and
// the poststop of the plugin's container withdraws that promise.
func TestOneShotAfterPlugin(t *testing.T) {
	a := ctrSpec{id: "a", pod: "a", class: "latency-sensitive", request: request256, limit: limit512}
	b := ctrSpec{id: "b", pod: "b", class: "latency-sensitive", request: 128 * mi, limit: limit512}
	pa := state.Promise{Path: a.rel(), Min: request256}
	pb := state.Promise{Path: b.rel(), Min: 128 * mi}
	stateFile := t.TempDir() + "/ancestors.json"
	tr := newTree(t, 2)
	tr.cgroup(a.rel())
	tr.cgroup(b.rel())
	tr.cgroupWrite("/kubepods/burstable/poda", "memory.min", itoa(64*mi)) // kubelet's

	plugin := startFixture(t, tr, "", stateFile)
	if _, err := plugin.n.Create(a.facts()); err != nil {
		t.Fatal(err)
	}
	plugin.n.Start(a.facts())
	if err := plugin.n.Close(); err != nil {
		t.Fatal(err)
	}
	tr.check(ancestors(request256, 0, map[string][2]int64{"a": {request256, 0}, "b": {0, 0}}))
	if got, want := promisesIn(t, stateFile), map[string]state.Promise{"a": pa}; !reflect.DeepEqual(got, want) {
		t.Fatalf("state promises after the plugin = %v; want %v", got, want)
	}

	runHook(t, tr, stateFile, 0, hookStep{create: true, ctr: b,
		want:         ancestors(384*mi, 0, map[string][2]int64{"a": {request256, 0}, "b": {128 * mi, 0}}),
		wantPromises: map[string]state.Promise{"a": pa, "b": pb}})
	runHook(t, tr, stateFile, 1, hookStep{ctr: a,
		want:         ancestors(128*mi, 0, map[string][2]int64{"a": {64 * mi, 0}, "b": {128 * mi, 0}}),
		wantPromises: map[string]state.Promise{"b": pb}})
	runHook(t, tr, stateFile, 2, hookStep{ctr: b,
		want:         ancestors(0, 0, map[string][2]int64{"a": {64 * mi, 0}, "b": {0, 0}}),
		wantPromises: nil})
}

// TestOneShotCgroupV2Values: CreateNow writes the decision's unified
// values into the container's cgroup itself (and the class's default limit
// as memory.max), leaving out the files the kernel does not offer.
func TestOneShotCgroupV2Values(t *testing.T) {
	tests := []struct {
		name   string
		config string
		ctr    ctrSpec
		// noSwap takes memory.swap.max out of /kubepods (no swap
		// accounting: the probe finds it missing).
		noSwap bool
		want   map[string]string
	}{{
		name: "latency-sensitive",
		ctr:  ctrSpec{id: "a", pod: "a", class: "latency-sensitive", request: request256, limit: limit512},
		want: map[string]string{"memory.min": itoa(request256), "memory.low": "0", "memory.swap.max": "0",
			"memory.high": "max", "memory.oom.group": "0", "memory.max": "max"},
	}, {
		name:   "latency-sensitive without swap accounting",
		ctr:    ctrSpec{id: "a", pod: "a", class: "latency-sensitive", request: request256, limit: limit512},
		noSwap: true,
		want:   map[string]string{"memory.min": itoa(request256), "memory.swap.max": "max"},
	}, {
		// high = 256Mi + 0.9 × (512Mi − 256Mi), page-aligned down.
		name: "burstable",
		ctr:  ctrSpec{id: "a", pod: "a", class: "burstable", request: request256, limit: limit512},
		want: map[string]string{"memory.min": "0", "memory.low": itoa(request256), "memory.high": "510025728",
			"memory.swap.max": "max", "memory.oom.group": "0"},
	}, {
		// high = 256Mi + 0.8 × (512Mi − 256Mi), page-aligned down.
		name: "best-effort",
		ctr:  ctrSpec{id: "a", pod: "a", class: "best-effort", request: request256, limit: limit512},
		want: map[string]string{"memory.min": "0", "memory.low": "0", "memory.high": "483180544", "memory.oom.group": "1"},
	}, {
		name:   "class defaultLimit: memory.max",
		config: "classes:\n  capped: {min: 1.0, defaultLimit: 1Gi}\n",
		ctr:    ctrSpec{id: "a", pod: "a", class: "capped", request: request256},
		want:   map[string]string{"memory.max": itoa(gi), "memory.min": itoa(request256)},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTree(t, 2)
			rel := tc.ctr.rel()
			tr.cgroup(rel)
			tr.cgroupWrite(rel, "memory.max", "max")
			if tc.noSwap {
				if err := os.Remove(tr.dir("/kubepods") + "/memory.swap.max"); err != nil {
					t.Fatal(err)
				}
			}
			n := oneShot(t, tr, tc.config, t.TempDir()+"/ancestors.json")
			if d, err := n.CreateNow(tc.ctr.facts()); err != nil || d == nil {
				t.Fatalf("CreateNow = %v, %v; want a decision", d, err)
			}
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			for file, v := range tc.want {
				if got := tr.read(rel, file); got != v {
					t.Errorf("%s/%s = %s; want %s", rel, file, got, v)
				}
			}
		})
	}
}

// TestOneShotCgroupV1: CreateNow writes the container's cgroup v1 files
// itself as the decision says (the limit first when the class sets one),
// memsw only where the kernel accounts swap, and nothing in the ancestors.
func TestOneShotCgroupV1(t *testing.T) {
	const unlimited = "9223372036854771712"
	req := map[string]string{"memqos.nri.io/memory-request": "256Mi"}
	capped := "classes:\n  capped: {min: 1.0, swap: none, swappiness: 0, defaultLimit: 1Gi}\n"
	tests := []struct {
		name   string
		config string
		ctr    ctrSpec
		// memsw is memory.memsw.limit_in_bytes before ("": no such file);
		// limit memory.limit_in_bytes before ("": unlimited).
		memsw, limit string
		want         map[string]string
		// absent are files that must not exist after.
		absent []string
		min    int64
	}{{
		name:  "latency-sensitive: soft limit, swappiness 0, no swap",
		ctr:   ctrSpec{id: "a", pod: "a", class: "latency-sensitive", limit: limit512, annotations: req},
		memsw: unlimited,
		want: map[string]string{"memory.soft_limit_in_bytes": itoa(request256), "memory.swappiness": "0",
			"memory.memsw.limit_in_bytes": itoa(limit512), "memory.limit_in_bytes": unlimited},
		min: request256,
	}, {
		name:  "memsw follows the limit in force, not the runtime's",
		ctr:   ctrSpec{id: "a", pod: "a", class: "latency-sensitive", limit: limit512, annotations: req},
		memsw: unlimited, limit: itoa(gi),
		want: map[string]string{"memory.soft_limit_in_bytes": itoa(request256), "memory.swappiness": "0",
			"memory.memsw.limit_in_bytes": itoa(gi), "memory.limit_in_bytes": itoa(gi)},
		min: request256,
	}, {
		name:   "no swap accounting: no memsw file made",
		ctr:    ctrSpec{id: "a", pod: "a", class: "latency-sensitive", limit: limit512, annotations: req},
		want:   map[string]string{"memory.soft_limit_in_bytes": itoa(request256), "memory.swappiness": "0"},
		absent: []string{"memory.memsw.limit_in_bytes"},
		min:    request256,
	}, {
		name:  "burstable: soft limit only",
		ctr:   ctrSpec{id: "a", pod: "a", class: "burstable", limit: limit512, annotations: req},
		memsw: unlimited,
		want: map[string]string{"memory.soft_limit_in_bytes": itoa(request256), "memory.swappiness": "60",
			"memory.memsw.limit_in_bytes": unlimited},
	}, {
		name:   "class defaultLimit written before memsw",
		config: capped,
		ctr:    ctrSpec{id: "a", pod: "a", class: "capped", annotations: req},
		memsw:  unlimited,
		want: map[string]string{"memory.limit_in_bytes": itoa(gi), "memory.soft_limit_in_bytes": itoa(request256),
			"memory.swappiness": "0", "memory.memsw.limit_in_bytes": itoa(gi)},
		min: request256,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTree(t, 1)
			rel := tc.ctr.rel()
			tr.cgroup(rel)
			if tc.memsw != "" {
				tr.cgroupWrite(rel, "memory.memsw.limit_in_bytes", tc.memsw)
			}
			if tc.limit != "" {
				tr.cgroupWrite(rel, "memory.limit_in_bytes", tc.limit)
			}
			stateFile := t.TempDir() + "/ancestors.json"
			n := oneShot(t, tr, tc.config, stateFile)
			d, err := n.CreateNow(tc.ctr.facts())
			if err != nil || d == nil {
				t.Fatalf("CreateNow = %v, %v; want a decision", d, err)
			}
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			for file, v := range tc.want {
				if got := tr.read(rel, file); got != v {
					t.Errorf("%s/%s = %s; want %s", rel, file, got, v)
				}
			}
			for _, file := range tc.absent {
				if _, err := os.Stat(tr.dir(rel) + "/" + file); !os.IsNotExist(err) {
					t.Errorf("%s/%s exists (%v); want it not made", rel, file, err)
				}
			}
			// No ancestor is touched on cgroup v1.
			for _, anc := range cgroupfs.Ancestors(rel) {
				tr.check(map[string]string{anc + "/memory.soft_limit_in_bytes": unlimited, anc + "/memory.swappiness": "60"})
			}
			var want map[string]state.Promise
			if tc.min > 0 {
				want = map[string]state.Promise{"a": {Path: rel, Min: tc.min}}
			} else {
				want = map[string]state.Promise{"a": {Path: rel, Low: request256}}
			}
			if got := promisesIn(t, stateFile); !reflect.DeepEqual(got, want) {
				t.Errorf("state promises = %v; want %v", got, want)
			}
		})
	}
}

// TestOneShotCreateFails: a container whose values cannot be written (its
// cgroup not there yet, no cgroups path) fails with an error naming why;
// its promise is withdrawn again: the ancestors hold what they held before,
// the state keeps no promise, request or entry of it, and the other
// containers' promises stay.
func TestOneShotCreateFails(t *testing.T) {
	a := ctrSpec{id: "a", pod: "p", class: "latency-sensitive", request: request256, limit: limit512}
	b := ctrSpec{id: "b", pod: "p", class: "latency-sensitive", request: 128 * mi, limit: limit512}
	pa := state.Promise{Path: a.rel(), Min: request256}
	for _, version := range []int{1, 2} {
		t.Run("v"+itoa(int64(version)), func(t *testing.T) {
			tr := newTree(t, version)
			tr.cgroup(a.rel())
			tr.cgroup("/kubepods/burstable/podp") // b's pod, not b's own cgroup
			stateFile := t.TempDir() + "/ancestors.json"

			n := oneShot(t, tr, "", stateFile)
			if _, err := n.CreateNow(a.facts()); err != nil {
				t.Fatal(err)
			}
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			before := snapshotTree(t, tr.root)

			tests := []struct {
				name    string
				ctr     func() node.Container
				wantErr []string
			}{{
				name:    "cgroup missing",
				ctr:     b.facts,
				wantErr: []string{"cgroup " + tr.dir(b.rel()) + " does not exist"},
			}, {
				name:    "no cgroups path",
				ctr:     func() node.Container { c := b.facts(); c.CgroupsPath = ""; return c },
				wantErr: []string{"no linux.cgroupsPath"},
			}}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					n := oneShot(t, tr, "", stateFile)
					d, err := n.CreateNow(tc.ctr())
					if err == nil || d != nil {
						t.Fatalf("CreateNow = %v, %v; want no decision and an error", d, err)
					}
					for _, w := range tc.wantErr {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("CreateNow error %q does not contain %q", err, w)
						}
					}
					if err := n.Close(); err != nil {
						t.Fatal(err)
					}
					if _, err := os.Stat(tr.dir(b.rel())); !os.IsNotExist(err) {
						t.Errorf("%s made by the failed CreateNow (%v)", tr.dir(b.rel()), err)
					}
					if after := snapshotTree(t, tr.root); !maps.Equal(after, before) {
						t.Errorf("files after the failed CreateNow:\n%v\nwant as before:\n%v", after, before)
					}
					st, err := state.Read(stateFile)
					if err != nil {
						t.Fatal(err)
					}
					if want := map[string]state.Promise{"a": pa}; !reflect.DeepEqual(st.Promises, want) {
						t.Errorf("state promises = %v; want %v", st.Promises, want)
					}
					if _, ok := st.Requests["b"]; ok {
						t.Errorf("state keeps b's request %d", st.Requests["b"])
					}
					if _, ok := st.Containers["b"]; ok {
						t.Errorf("state keeps b's entry %+v", st.Containers["b"])
					}
				})
			}
		})
	}
}

// TestOneShotNotOptedIn: a container without a class is left alone.
func TestOneShotNotOptedIn(t *testing.T) {
	a := ctrSpec{id: "a", pod: "a", request: request256, limit: limit512}
	tr := newTree(t, 2)
	tr.cgroup(a.rel())
	before := snapshotTree(t, tr.root)
	stateFile := t.TempDir() + "/ancestors.json"
	n := oneShot(t, tr, "", stateFile)
	if d, err := n.CreateNow(a.facts()); d != nil || err != nil {
		t.Errorf("CreateNow without a class = %+v, %v; want nil, nil", d, err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if after := snapshotTree(t, tr.root); !maps.Equal(after, before) {
		t.Errorf("files changed: %v; want %v", after, before)
	}
	if got := promisesIn(t, stateFile); got != nil {
		t.Errorf("state promises = %v; want none", got)
	}
}

// snapshotTree maps every file below root to its content.
func snapshotTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := walkFiles(root, func(path string, data []byte) { out[strings.TrimPrefix(path, root)] = string(data) })
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func walkFiles(dir string, visit func(string, []byte)) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := dir + "/" + e.Name()
		if e.IsDir() {
			if err := walkFiles(p, visit); err != nil {
				return err
			}
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		visit(p, data)
	}
	return nil
}
