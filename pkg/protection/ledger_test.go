package protection_test

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/protection"
	"nri-memqos/pkg/state"
)

const (
	fMin = "memory.min"
	fLow = "memory.low"

	kp   = "/kubepods"
	bu   = "/kubepods/burstable"
	pod1 = "/kubepods/burstable/pod1"
	pod2 = "/kubepods/burstable/pod2"
	pod3 = "/kubepods/pod3" // guaranteed
)

type fkey struct{ path, file string }

type write struct{ path, file, value string }

func (w write) String() string { return w.path + "/" + w.file + "=" + w.value }

// fakeFS is a Files backed by a map. A file missing from vals reads (and
// writes) as a vanished cgroup, like *cgroupfs.FS.
type fakeFS struct {
	vals     map[fkey]int64
	readErr  map[fkey]error
	writeErr map[fkey]error
	writes   []write
	reads    int
}

func newFake() *fakeFS {
	return &fakeFS{vals: map[fkey]int64{}, readErr: map[fkey]error{}, writeErr: map[fkey]error{}}
}

// addCgroups creates memory.min and memory.low, both 0, in each path.
func (f *fakeFS) addCgroups(paths ...string) *fakeFS {
	for _, p := range paths {
		f.vals[fkey{p, fMin}] = 0
		f.vals[fkey{p, fLow}] = 0
	}
	return f
}

// set writes a value as someone else (kubelet) would: not through the ledger.
func (f *fakeFS) set(path, file string, v int64) { f.vals[fkey{path, file}] = v }

func (f *fakeFS) get(t *testing.T, path, file string) int64 {
	t.Helper()
	v, ok := f.vals[fkey{path, file}]
	if !ok {
		t.Fatalf("fake has no %s/%s", path, file)
	}
	return v
}

func (f *fakeFS) ReadInt(path, file string) (int64, error) {
	f.reads++
	k := fkey{path, file}
	if err := f.readErr[k]; err != nil {
		return 0, err
	}
	v, ok := f.vals[k]
	if !ok {
		return 0, fmt.Errorf("failed to read %s/%s: %w", path, file, &os.PathError{Op: "open", Path: path + "/" + file, Err: unix.ENOENT})
	}
	return v, nil
}

func (f *fakeFS) Write(path, file, value string) (bool, error) {
	k := fkey{path, file}
	if err := f.writeErr[k]; err != nil {
		return false, err
	}
	old, ok := f.vals[k]
	if !ok {
		return false, fmt.Errorf("failed to write %q to %s/%s: %w", value, path, file, os.ErrNotExist)
	}
	v, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return false, fmt.Errorf("fake: bad value %q", value)
	}
	f.writes = append(f.writes, write{path, file, value})
	f.vals[k] = v
	return old != v, nil
}

var _ protection.Files = (*fakeFS)(nil)

func promise(container string, min, low int64) protection.Promise {
	return protection.Promise{Ancestors: cgroupfs.Ancestors(container), Min: min, Low: low}
}

// want is the expected content of ancestor files: path -> {min, low}.
type want map[string][2]int64

func checkValues(t *testing.T, f *fakeFS, w want) {
	t.Helper()
	for _, p := range slices.Sorted(maps.Keys(w)) {
		v := w[p]
		if got := f.get(t, p, fMin); got != v[0] {
			t.Errorf("%s %s = %d; want %d", p, fMin, got, v[0])
		}
		if got := f.get(t, p, fLow); got != v[1] {
			t.Errorf("%s %s = %d; want %d", p, fLow, got, v[1])
		}
	}
}

func checkSums(t *testing.T, l *protection.Ledger, w want) {
	t.Helper()
	for p, v := range w {
		if min, low := l.Sums(p); min != v[0] || low != v[1] {
			t.Errorf("Sums(%s) = %d, %d; want %d, %d", p, min, low, v[0], v[1])
		}
	}
}

func mustApply(t *testing.T, l *protection.Ledger, f protection.Files, paths []string, mode protection.Mode) []protection.Change {
	t.Helper()
	ch, err := l.Apply(f, paths, mode)
	if err != nil {
		t.Fatalf("Apply(%q, %v): %v", paths, mode, err)
	}
	return ch
}

func TestSetAndApplySums(t *testing.T) {
	tests := []struct {
		name      string
		promises  map[string]protection.Promise
		wantFiles want
	}{
		{
			name: "two containers in one pod",
			promises: map[string]protection.Promise{
				"c1": promise(pod1+"/c1", 100, 200),
				"c2": promise(pod1+"/c2", 50, 30),
			},
			wantFiles: want{kp: {150, 230}, bu: {150, 230}, pod1: {150, 230}, pod2: {0, 0}, pod3: {0, 0}},
		},
		{
			name: "two pods in burstable and one guaranteed",
			promises: map[string]protection.Promise{
				"c1": promise(pod1+"/c1", 100, 200),
				"c2": promise(pod1+"/c2", 50, 30),
				"c3": promise(pod2+"/c3", 7, 0),
				"c4": promise(pod3+"/c4", 1000, 1),
			},
			wantFiles: want{kp: {1157, 231}, bu: {157, 230}, pod1: {150, 230}, pod2: {7, 0}, pod3: {1000, 1}},
		},
		{
			name: "systemd layout",
			promises: map[string]protection.Promise{
				"c1": promise("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-c1.scope", 4096, 8192),
			},
			wantFiles: want{
				"/kubepods.slice":                          {4096, 8192},
				"/kubepods.slice/kubepods-burstable.slice": {4096, 8192},
				"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice": {4096, 8192},
			},
		},
	}
	for _, mode := range []protection.Mode{protection.RaiseOnly, protection.Full} {
		for _, tc := range tests {
			t.Run(fmt.Sprintf("%s/mode=%d", tc.name, mode), func(t *testing.T) {
				f := newFake().addCgroups(slices.Collect(maps.Keys(tc.wantFiles))...)
				l := protection.New(0)
				var touched []string
				for _, id := range slices.Sorted(maps.Keys(tc.promises)) {
					p := tc.promises[id]
					got := l.Set(id, p)
					if !slices.Equal(got, p.Ancestors) {
						t.Errorf("Set(%s) = %q; want its ancestors %q", id, got, p.Ancestors)
					}
					touched = append(touched, got...)
				}
				changes := mustApply(t, l, f, touched, mode)
				checkValues(t, f, tc.wantFiles)
				checkSums(t, l, tc.wantFiles)

				// Every non-zero file changed exactly once, from 0.
				wantChanges := 0
				for _, v := range tc.wantFiles {
					for _, x := range v {
						if x != 0 {
							wantChanges++
						}
					}
				}
				if len(changes) != wantChanges || len(f.writes) != wantChanges {
					t.Errorf("got %d changes and %d writes; want %d: %v", len(changes), len(f.writes), wantChanges, f.writes)
				}
				for _, c := range changes {
					if c.From != 0 {
						t.Errorf("change %+v: From = %d; want 0", c, c.From)
					}
					idx := 0
					if c.File == fLow {
						idx = 1
					}
					if c.To != tc.wantFiles[c.Path][idx] {
						t.Errorf("change %+v: To = %d; want %d", c, c.To, tc.wantFiles[c.Path][idx])
					}
				}

				// Applying again changes nothing.
				f.writes = nil
				if again := mustApply(t, l, f, touched, protection.Full); len(again) != 0 || len(f.writes) != 0 {
					t.Errorf("second Apply: changes %+v, writes %v; want none", again, f.writes)
				}
			})
		}
	}
}

func TestRaiseOnlyNeverLowers(t *testing.T) {
	tests := []struct {
		name       string
		mode       protection.Mode
		wantFiles  want
		wantWrites []write
	}{
		{
			name:       "RaiseOnly keeps the larger values",
			mode:       protection.RaiseOnly,
			wantFiles:  want{kp: {150, 230}, bu: {150, 230}, pod1: {150, 230}},
			wantWrites: nil,
		},
		{
			name:      "Full lowers them",
			mode:      protection.Full,
			wantFiles: want{kp: {60, 230}, bu: {60, 230}, pod1: {60, 230}},
			wantWrites: []write{
				{pod1, fMin, "60"}, {bu, fMin, "60"}, {kp, fMin, "60"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake().addCgroups(kp, bu, pod1)
			l := protection.New(0)
			paths := l.Set("c1", promise(pod1+"/c1", 100, 200))
			l.Set("c2", promise(pod1+"/c2", 50, 30))
			mustApply(t, l, f, paths, protection.Full)
			checkValues(t, f, want{kp: {150, 230}, bu: {150, 230}, pod1: {150, 230}})

			// c1 shrinks its min; low stays.
			paths = l.Set("c1", promise(pod1+"/c1", 10, 200))
			f.writes = nil
			changes := mustApply(t, l, f, paths, tc.mode)
			checkValues(t, f, tc.wantFiles)
			if !slices.Equal(f.writes, tc.wantWrites) {
				t.Errorf("writes = %v; want %v", f.writes, tc.wantWrites)
			}
			if len(changes) != len(tc.wantWrites) {
				t.Errorf("changes = %+v; want %d", changes, len(tc.wantWrites))
			}
			for _, c := range changes {
				if c.From != 150 || c.To != 60 || c.File != fMin {
					t.Errorf("change %+v; want memory.min 150 -> 60", c)
				}
			}
		})
	}
}

func TestFullLowersOnlyOwnValues(t *testing.T) {
	f := newFake().addCgroups(kp, bu, pod1)
	// kubelet set these before the plugin ran.
	f.set(pod1, fMin, 500) // above what the ledger promises
	f.set(bu, fLow, 100)   // below: the ledger raises it and owns it
	l := protection.New(0)
	paths := l.Set("c1", promise(pod1+"/c1", 100, 200))
	l.Set("c2", promise(pod1+"/c2", 50, 30))

	changes := mustApply(t, l, f, paths, protection.Full)
	checkValues(t, f, want{kp: {150, 230}, bu: {150, 230}, pod1: {500, 230}})
	wantChanges := []protection.Change{
		{Path: kp, File: fMin, From: 0, To: 150},
		{Path: kp, File: fLow, From: 0, To: 230},
		{Path: bu, File: fMin, From: 0, To: 150},
		{Path: bu, File: fLow, From: 100, To: 230},
		{Path: pod1, File: fLow, From: 0, To: 230},
	}
	if !slices.Equal(changes, wantChanges) {
		t.Errorf("changes = %+v; want %+v", changes, wantChanges)
	}

	// kubelet now moves the ledger's kubepods memory.low up.
	f.set(kp, fLow, 999)

	// c1 goes away: the sums drop to 50/30.
	paths = l.Remove("c1")
	f.writes = nil
	changes = mustApply(t, l, f, paths, protection.Full)
	checkValues(t, f, want{
		kp:   {50, 999}, // low: kubelet's value, kept
		bu:   {50, 100}, // low: raised by the ledger from kubelet's 100, lowered back to it, not below (issue 10, item 5)
		pod1: {500, 30}, // min: kubelet's value, kept
	})
	wantWrites := []write{
		{pod1, fLow, "30"},
		{bu, fLow, "100"}, {bu, fMin, "50"},
		{kp, fMin, "50"},
	}
	if !slices.Equal(f.writes, wantWrites) {
		t.Errorf("writes = %v; want %v", f.writes, wantWrites)
	}
	if len(changes) != len(wantWrites) {
		t.Errorf("changes = %+v; want %d", changes, len(wantWrites))
	}
}

func TestRemove(t *testing.T) {
	f := newFake().addCgroups(kp, bu, pod1, pod3)
	l := protection.New(0)
	var paths []string
	paths = append(paths, l.Set("c1", promise(pod1+"/c1", 100, 200))...)
	paths = append(paths, l.Set("c2", promise(pod1+"/c2", 50, 30))...)
	paths = append(paths, l.Set("c3", promise(pod3+"/c3", 1000, 0))...)
	mustApply(t, l, f, paths, protection.RaiseOnly)
	checkValues(t, f, want{kp: {1150, 230}, bu: {150, 230}, pod1: {150, 230}, pod3: {1000, 0}})

	steps := []struct {
		remove    string
		wantPaths []string
		wantFiles want
	}{
		{remove: "c1", wantPaths: []string{kp, bu, pod1}, wantFiles: want{kp: {1050, 30}, bu: {50, 30}, pod1: {50, 30}, pod3: {1000, 0}}},
		{remove: "c1", wantPaths: nil, wantFiles: want{kp: {1050, 30}, bu: {50, 30}, pod1: {50, 30}, pod3: {1000, 0}}},
		{remove: "unknown", wantPaths: nil, wantFiles: want{kp: {1050, 30}, bu: {50, 30}, pod1: {50, 30}, pod3: {1000, 0}}},
		{remove: "c2", wantPaths: []string{kp, bu, pod1}, wantFiles: want{kp: {1000, 0}, bu: {0, 0}, pod1: {0, 0}, pod3: {1000, 0}}},
		{remove: "c3", wantPaths: []string{kp, pod3}, wantFiles: want{kp: {0, 0}, bu: {0, 0}, pod1: {0, 0}, pod3: {0, 0}}},
	}
	for i, s := range steps {
		t.Run(fmt.Sprintf("%d_remove_%s", i, s.remove), func(t *testing.T) {
			got := l.Remove(s.remove)
			if !slices.Equal(got, s.wantPaths) {
				t.Fatalf("Remove(%s) = %q; want %q", s.remove, got, s.wantPaths)
			}
			mustApply(t, l, f, got, protection.Full)
			checkValues(t, f, s.wantFiles)
			checkSums(t, l, s.wantFiles)
		})
	}
	if got := l.TotalMin(""); got != 0 {
		t.Errorf("TotalMin after removing all = %d; want 0", got)
	}

	// Everything went back to 0: a later kubelet value is not the ledger's.
	f.set(pod1, fMin, 77)
	f.writes = nil
	mustApply(t, l, f, []string{kp, bu, pod1, pod3}, protection.Full)
	if len(f.writes) != 0 || f.get(t, pod1, fMin) != 77 {
		t.Errorf("after all promises went: writes %v, pod1 memory.min %d; want no writes and 77", f.writes, f.get(t, pod1, fMin))
	}
}

// TestApplyOrder checks raises outermost first and lowerings innermost first.
func TestApplyOrder(t *testing.T) {
	f := newFake().addCgroups(kp, bu, pod1)
	l := protection.New(0)
	paths := l.Set("c1", promise(pod1+"/c1", 100, 200))

	// Paths deliberately given innermost first.
	rev := slices.Clone(paths)
	slices.Reverse(rev)
	mustApply(t, l, f, rev, protection.Full)
	wantRaise := []write{
		{kp, fMin, "100"}, {kp, fLow, "200"},
		{bu, fMin, "100"}, {bu, fLow, "200"},
		{pod1, fMin, "100"}, {pod1, fLow, "200"},
	}
	if !slices.Equal(f.writes, wantRaise) {
		t.Fatalf("raise writes = %v; want %v", f.writes, wantRaise)
	}

	// min grows, low shrinks: all raises (outermost first), then all
	// lowerings (innermost first).
	f.writes = nil
	paths = l.Set("c1", promise(pod1+"/c1", 300, 50))
	changes := mustApply(t, l, f, paths, protection.Full)
	wantMixed := []write{
		{kp, fMin, "300"}, {bu, fMin, "300"}, {pod1, fMin, "300"},
		{pod1, fLow, "50"}, {bu, fLow, "50"}, {kp, fLow, "50"},
	}
	if !slices.Equal(f.writes, wantMixed) {
		t.Fatalf("mixed writes = %v; want %v", f.writes, wantMixed)
	}
	wantChanges := []protection.Change{
		{Path: kp, File: fMin, From: 100, To: 300},
		{Path: bu, File: fMin, From: 100, To: 300},
		{Path: pod1, File: fMin, From: 100, To: 300},
		{Path: pod1, File: fLow, From: 200, To: 50},
		{Path: bu, File: fLow, From: 200, To: 50},
		{Path: kp, File: fLow, From: 200, To: 50},
	}
	if !slices.Equal(changes, wantChanges) {
		t.Fatalf("changes = %+v; want %+v", changes, wantChanges)
	}

	// Everything goes: lowerings innermost first, min before low per path
	// reversed.
	f.writes = nil
	mustApply(t, l, f, l.Remove("c1"), protection.Full)
	wantLower := []write{
		{pod1, fLow, "0"}, {pod1, fMin, "0"},
		{bu, fLow, "0"}, {bu, fMin, "0"},
		{kp, fLow, "0"}, {kp, fMin, "0"},
	}
	if !slices.Equal(f.writes, wantLower) {
		t.Fatalf("lower writes = %v; want %v", f.writes, wantLower)
	}
}

func TestApplyVanishedAncestor(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fakeFS)
	}{
		{
			name:  "pod cgroup gone before reading",
			setup: func(f *fakeFS) { delete(f.vals, fkey{pod1, fMin}); delete(f.vals, fkey{pod1, fLow}) },
		},
		{
			name: "pod cgroup gone between read and write",
			setup: func(f *fakeFS) {
				f.writeErr[fkey{pod1, fMin}] = fmt.Errorf("failed to write: %w", &os.PathError{Op: "openat2", Path: pod1, Err: unix.ENOENT})
				f.writeErr[fkey{pod1, fLow}] = fmt.Errorf("failed to write: %w", unix.ENODEV)
			},
		},
		{
			name: "read ENODEV",
			setup: func(f *fakeFS) {
				f.readErr[fkey{pod1, fMin}] = fmt.Errorf("failed to read: %w", unix.ENODEV)
				f.readErr[fkey{pod1, fLow}] = fmt.Errorf("failed to read: %w", os.ErrNotExist)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake().addCgroups(kp, bu, pod1)
			tc.setup(f)
			l := protection.New(0)
			paths := l.Set("c1", promise(pod1+"/c1", 100, 200))
			changes, err := l.Apply(f, paths, protection.RaiseOnly)
			if err != nil {
				t.Fatalf("Apply: %v; want a vanished ancestor skipped", err)
			}
			wantChanges := []protection.Change{
				{Path: kp, File: fMin, To: 100}, {Path: kp, File: fLow, To: 200},
				{Path: bu, File: fMin, To: 100}, {Path: bu, File: fLow, To: 200},
			}
			if !slices.Equal(changes, wantChanges) {
				t.Errorf("changes = %+v; want %+v", changes, wantChanges)
			}
			checkValues(t, f, want{kp: {100, 200}, bu: {100, 200}})
		})
	}
}

func TestApplyErrors(t *testing.T) {
	errDenied := &os.PathError{Op: "open", Path: pod1 + "/memory.min", Err: unix.EACCES}
	errInvalid := fmt.Errorf("failed to write %q: %w", "100", unix.EINVAL)
	tests := []struct {
		name        string
		setup       func(f *fakeFS)
		wantIs      error
		wantChanges []protection.Change
		wantFiles   want
	}{
		{
			name:   "read error",
			setup:  func(f *fakeFS) { f.readErr[fkey{pod1, fMin}] = fmt.Errorf("failed to read: %w", errDenied) },
			wantIs: errDenied,
			wantChanges: []protection.Change{
				{Path: kp, File: fMin, To: 100}, {Path: kp, File: fLow, To: 200},
				{Path: bu, File: fMin, To: 100}, {Path: bu, File: fLow, To: 200},
				{Path: pod1, File: fLow, To: 200},
			},
			wantFiles: want{kp: {100, 200}, bu: {100, 200}, pod1: {0, 200}},
		},
		{
			name:   "write error",
			setup:  func(f *fakeFS) { f.writeErr[fkey{bu, fMin}] = errInvalid },
			wantIs: unix.EINVAL,
			wantChanges: []protection.Change{
				{Path: kp, File: fMin, To: 100}, {Path: kp, File: fLow, To: 200},
				{Path: bu, File: fLow, To: 200},
				{Path: pod1, File: fMin, To: 100}, {Path: pod1, File: fLow, To: 200},
			},
			wantFiles: want{kp: {100, 200}, bu: {0, 200}, pod1: {100, 200}},
		},
		{
			name: "unparsable value",
			setup: func(f *fakeFS) {
				f.readErr[fkey{kp, fLow}] = errors.New(`failed to parse /kubepods/memory.low: "x" is not an integer`)
			},
			wantIs:    nil,
			wantFiles: want{kp: {100, 0}, bu: {100, 200}, pod1: {100, 200}},
			wantChanges: []protection.Change{
				{Path: kp, File: fMin, To: 100},
				{Path: bu, File: fMin, To: 100}, {Path: bu, File: fLow, To: 200},
				{Path: pod1, File: fMin, To: 100}, {Path: pod1, File: fLow, To: 200},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake().addCgroups(kp, bu, pod1)
			tc.setup(f)
			l := protection.New(0)
			paths := l.Set("c1", promise(pod1+"/c1", 100, 200))
			changes, err := l.Apply(f, paths, protection.RaiseOnly)
			if err == nil {
				t.Fatal("Apply returned no error")
			}
			if !strings.HasPrefix(err.Error(), "ancestor protection: ") {
				t.Errorf("error = %q; want the prefix %q", err, "ancestor protection: ")
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.wantIs)
			}
			if cgroupfs.IsGone(err) {
				t.Errorf("IsGone(%v) = true; want false", err)
			}
			if !slices.Equal(changes, tc.wantChanges) {
				t.Errorf("changes = %+v; want %+v", changes, tc.wantChanges)
			}
			checkValues(t, f, tc.wantFiles)
		})
	}
}

func TestTotalMin(t *testing.T) {
	l := protection.New(0)
	l.Set("c1", promise(pod1+"/c1", 100, 200))
	l.Set("c2", promise(pod1+"/c2", 50, 30))
	l.Set("c3", promise(pod3+"/c3", 1000, 5000))
	l.Set("c2", promise(pod1+"/c2", 60, 30)) // replaced, not added
	tests := []struct {
		except string
		want   int64
	}{
		{except: "", want: 1160},
		{except: "unknown", want: 1160},
		{except: "c1", want: 1060},
		{except: "c2", want: 1100},
		{except: "c3", want: 160},
	}
	for _, tc := range tests {
		t.Run("except_"+tc.except, func(t *testing.T) {
			if got := l.TotalMin(tc.except); got != tc.want {
				t.Fatalf("TotalMin(%q) = %d; want %d", tc.except, got, tc.want)
			}
		})
	}
	if got := protection.New(0).TotalMin(""); got != 0 {
		t.Errorf("empty ledger TotalMin = %d; want 0", got)
	}
}

func TestSetMovesPromise(t *testing.T) {
	f := newFake().addCgroups(kp, bu, pod1, pod2)
	l := protection.New(0)
	mustApply(t, l, f, l.Set("c1", promise(pod1+"/c1", 100, 200)), protection.Full)
	got := l.Set("c1", promise(pod2+"/c1", 40, 20))
	if wantPaths := []string{kp, bu, pod2, pod1}; !slices.Equal(got, wantPaths) {
		t.Fatalf("Set = %q; want %q", got, wantPaths)
	}
	mustApply(t, l, f, got, protection.Full)
	checkValues(t, f, want{kp: {40, 20}, bu: {40, 20}, pod1: {0, 0}, pod2: {40, 20}})
}

func TestReset(t *testing.T) {
	tests := []struct {
		name      string
		rebuild   map[string]protection.Promise // promises Set again after Reset
		wantFiles want
	}{
		{
			name:      "nothing rebuilt",
			wantFiles: want{kp: {0, 0}, bu: {0, 0}, pod1: {0, 0}, pod3: {0, 0}},
		},
		{
			name:      "one container rebuilt",
			rebuild:   map[string]protection.Promise{"c2": promise(pod1+"/c2", 50, 30)},
			wantFiles: want{kp: {50, 30}, bu: {50, 30}, pod1: {50, 30}, pod3: {0, 0}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake().addCgroups(kp, bu, pod1, pod3)
			l := protection.New(0)
			var paths []string
			paths = append(paths, l.Set("c1", promise(pod1+"/c1", 100, 200))...)
			paths = append(paths, l.Set("c2", promise(pod1+"/c2", 50, 30))...)
			paths = append(paths, l.Set("c3", promise(pod3+"/c3", 1000, 0))...)
			mustApply(t, l, f, paths, protection.Full)
			checkValues(t, f, want{kp: {1150, 230}, bu: {150, 230}, pod1: {150, 230}, pod3: {1000, 0}})

			touched := l.Reset()
			if got, wantPaths := slices.Sorted(slices.Values(touched)), []string{kp, bu, pod1, pod3}; !slices.Equal(got, slices.Sorted(slices.Values(wantPaths))) {
				t.Fatalf("Reset = %q; want %q in any order", touched, wantPaths)
			}
			if got := l.TotalMin(""); got != 0 {
				t.Errorf("TotalMin after Reset = %d; want 0", got)
			}
			checkSums(t, l, want{kp: {0, 0}, bu: {0, 0}, pod1: {0, 0}, pod3: {0, 0}})
			// Values the ledger wrote still name their ancestors, so that a
			// restarted plugin lowers them even with no container left.
			if again := slices.Sorted(slices.Values(l.Reset())); !slices.Equal(again, slices.Sorted(slices.Values([]string{kp, bu, pod1, pod3}))) {
				t.Errorf("second Reset = %q; want the written ancestors", again)
			}

			for id, p := range tc.rebuild {
				l.Set(id, p)
			}
			mustApply(t, l, f, touched, protection.Full)
			checkValues(t, f, tc.wantFiles)
			if len(tc.rebuild) == 0 {
				if again := l.Reset(); len(again) != 0 {
					t.Errorf("Reset after lowering everything = %q; want none", again)
				}
			}
		})
	}
}

func TestApplyDuplicatePaths(t *testing.T) {
	f := newFake().addCgroups(kp, bu, pod1)
	l := protection.New(0)
	l.Set("c1", promise(pod1+"/c1", 100, 200))
	paths := []string{pod1, pod1, bu, kp, bu, pod1, kp}
	changes := mustApply(t, l, f, paths, protection.Full)
	if len(f.writes) != 6 || len(changes) != 6 {
		t.Fatalf("%d writes, %d changes; want 6 each: %v", len(f.writes), len(changes), f.writes)
	}
	// Each file once, and each raised cgroup's memory.max once.
	if f.reads != 9 {
		t.Errorf("%d reads; want 9", f.reads)
	}
	if !slices.Equal(paths, []string{pod1, pod1, bu, kp, bu, pod1, kp}) {
		t.Errorf("Apply modified its input: %q", paths)
	}
	checkValues(t, f, want{kp: {100, 200}, bu: {100, 200}, pod1: {100, 200}})
}

func TestApplyEmpty(t *testing.T) {
	f := newFake().addCgroups(kp)
	l := protection.New(0)
	changes, err := l.Apply(f, nil, protection.Full)
	if err != nil || changes != nil || f.reads != 0 || len(f.writes) != 0 {
		t.Fatalf("Apply(nil) = %+v, %v with %d reads, %d writes; want nothing", changes, err, f.reads, len(f.writes))
	}
}

func TestThousandContainers(t *testing.T) {
	const pods, perPod = 100, 10
	f := newFake().addCgroups(kp, bu)
	l := protection.New(0)
	podPath := func(i int) string {
		if i%2 == 0 {
			return fmt.Sprintf("%s/pod%d", bu, i)
		}
		return fmt.Sprintf("%s/pod%d", kp, i) // guaranteed
	}
	wantPod := map[string][2]int64{}
	var total, totalLow, buMin, buLow int64
	var touched []string
	for i := range pods {
		pp := podPath(i)
		f.addCgroups(pp)
		for j := range perPod {
			min := int64(i+1)*1_000_000 + int64(j)
			low := 2*min + 1
			touched = append(touched, l.Set(fmt.Sprintf("c-%d-%d", i, j), promise(fmt.Sprintf("%s/c%d", pp, j), min, low))...)
			s := wantPod[pp]
			wantPod[pp] = [2]int64{s[0] + min, s[1] + low}
			total += min
			totalLow += low
			if i%2 == 0 {
				buMin += min
				buLow += low
			}
		}
	}
	if len(touched) != pods*perPod*3-pods*perPod/2 {
		t.Fatalf("touched %d paths; want %d", len(touched), pods*perPod*3-pods*perPod/2)
	}
	changes := mustApply(t, l, f, touched, protection.Full)

	w := want{kp: {total, totalLow}, bu: {buMin, buLow}}
	for p, v := range wantPod {
		w[p] = v
	}
	checkValues(t, f, w)
	if got := l.TotalMin(""); got != total {
		t.Errorf("TotalMin = %d; want %d", got, total)
	}
	if got := l.TotalMin("c-0-0"); got != total-1_000_000 {
		t.Errorf("TotalMin(c-0-0) = %d; want %d", got, total-1_000_000)
	}
	if want := (pods + 2) * 2; len(f.writes) != want || len(changes) != want {
		t.Errorf("%d writes, %d changes; want %d", len(f.writes), len(changes), want)
	}
	// Outermost first: /kubepods before /kubepods/burstable before pods.
	pos := map[string]int{}
	for i, wr := range f.writes {
		if _, ok := pos[wr.path]; !ok {
			pos[wr.path] = i
		}
	}
	for p := range wantPod {
		if pos[kp] > pos[p] || (strings.HasPrefix(p, bu+"/") && pos[bu] > pos[p]) {
			t.Errorf("pod %s written before one of its ancestors", p)
		}
	}
	if pos[kp] != 0 {
		t.Errorf("first write is %v; want /kubepods", f.writes[0])
	}

	// Remove one pod's containers: only that pod and its ancestors change.
	f.writes = nil
	var gone []string
	for j := range perPod {
		gone = append(gone, l.Remove(fmt.Sprintf("c-0-%d", j))...)
	}
	mustApply(t, l, f, gone, protection.Full)
	p0 := wantPod[podPath(0)]
	w[kp] = [2]int64{total - p0[0], totalLow - p0[1]}
	w[bu] = [2]int64{buMin - p0[0], buLow - p0[1]}
	w[podPath(0)] = [2]int64{0, 0}
	checkValues(t, f, w)
	if len(f.writes) != 6 {
		t.Errorf("%d writes after removing one pod; want 6: %v", len(f.writes), f.writes)
	}
}

// v2Tree lays out a cgroup v2 tree with memory.min and memory.low set to
// "0\n" in each directory.
func v2Tree(t *testing.T, dirs ...string) (*cgroupfs.FS, string) {
	t.Helper()
	root := t.TempDir()
	for _, d := range dirs {
		p := filepath.Join(root, d)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, file := range []string{fMin, fLow} {
			if err := os.WriteFile(filepath.Join(p, file), []byte("0\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return &cgroupfs.FS{Root: root, Version: 2, PlainFiles: true}, root
}

func checkFile(t *testing.T, root, rel, file, want string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel, file))
	if err != nil {
		t.Errorf("%s/%s: %v", rel, file, err)
		return
	}
	if string(b) != want {
		t.Errorf("%s/%s = %q; want %q", rel, file, b, want)
	}
}

func TestApplyRealFS(t *testing.T) {
	fs, root := v2Tree(t, kp, bu, pod1, pod3)
	l := protection.New(0)
	var paths []string
	paths = append(paths, l.Set("c1", promise(pod1+"/c1", 64<<20, 128<<20))...)
	paths = append(paths, l.Set("c2", promise(pod2+"/c2", 1<<20, 0))...) // pod2 has no cgroup (gone)
	paths = append(paths, l.Set("c3", promise(pod3+"/c3", 256<<20, 0))...)

	changes, err := l.Apply(fs, paths, protection.RaiseOnly)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for _, c := range []struct{ rel, file, want string }{
		{kp, fMin, "336592896"}, {kp, fLow, "134217728"},
		{bu, fMin, "68157440"}, {bu, fLow, "134217728"},
		{pod1, fMin, "67108864"}, {pod1, fLow, "134217728"},
		{pod3, fMin, "268435456"}, {pod3, fLow, "0\n"},
	} {
		checkFile(t, root, c.rel, c.file, c.want)
	}
	if len(changes) != 7 {
		t.Errorf("changes = %+v; want 7", changes)
	}
	if _, err := os.Stat(filepath.Join(root, pod2)); err == nil {
		t.Errorf("Apply created the vanished %s", pod2)
	}

	// Everything goes.
	paths = nil
	for _, id := range []string{"c1", "c2", "c3"} {
		paths = append(paths, l.Remove(id)...)
	}
	if _, err := l.Apply(fs, paths, protection.Full); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for _, rel := range []string{kp, bu, pod1, pod3} {
		for _, file := range []string{fMin, fLow} {
			want := "0"
			if rel == pod3 && file == fLow {
				want = "0\n" // never written
			}
			checkFile(t, root, rel, file, want)
		}
	}
}

// TestApplyLeavesMaxAlone: memory.min and memory.low accept "max" on cgroup
// v2 (cgroupfs.FS.ReadInt reads it as -1). A "max" the plugin did not write is
// above any sum, so the ledger must neither "raise" nor lower it.
func TestApplyLeavesMaxAlone(t *testing.T) {
	tests := []struct {
		name string
		mode protection.Mode
		min  int64 // promised below pod1
	}{
		{name: "RaiseOnly with a promise", mode: protection.RaiseOnly, min: 64 << 20},
		{name: "Full with a promise", mode: protection.Full, min: 64 << 20},
		{name: "Full with a zero promise", mode: protection.Full, min: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs, root := v2Tree(t, kp, bu, pod1)
			if err := os.WriteFile(filepath.Join(root, pod1, fLow), []byte("max\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, bu, fMin), []byte("max\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			l := protection.New(0)
			paths := l.Set("c1", promise(pod1+"/c1", tc.min, tc.min))
			changes, err := l.Apply(fs, paths, tc.mode)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			checkFile(t, root, pod1, fLow, "max\n")
			checkFile(t, root, bu, fMin, "max\n")
			for _, c := range changes {
				if c.From < 0 {
					t.Errorf("change %+v replaced %q by %d", c, "max", c.To)
				}
			}
		})
	}
}

// A restarted plugin restores what the previous process wrote and still
// lowers it once no container needs it.
func TestSnapshotRestore(t *testing.T) {
	f := newFake().addCgroups(kp, bu, pod1)
	l := protection.New(0)
	mustApply(t, l, f, l.Set("c1", promise(pod1+"/c1", 100, 200)), protection.Full)
	snap := l.Snapshot()
	wantSnap := []state.Value{
		{Path: kp, File: "memory.low", Value: 200}, {Path: kp, File: "memory.min", Value: 100},
		{Path: bu, File: "memory.low", Value: 200}, {Path: bu, File: "memory.min", Value: 100},
		{Path: pod1, File: "memory.low", Value: 200}, {Path: pod1, File: "memory.min", Value: 100},
	}
	if !reflect.DeepEqual(snap, wantSnap) {
		t.Fatalf("Snapshot = %+v; want %+v", snap, wantSnap)
	}

	fresh := protection.New(0)
	fresh.Restore(snap)
	touched := fresh.Reset()
	if got := slices.Sorted(slices.Values(touched)); !slices.Equal(got, []string{kp, bu, pod1}) {
		t.Fatalf("Reset after Restore = %q; want the three ancestors", got)
	}
	mustApply(t, fresh, f, touched, protection.Full)
	checkValues(t, f, want{kp: {0, 0}, bu: {0, 0}, pod1: {0, 0}})

	// Without the restored values the same lowering must not happen.
	f2 := newFake().addCgroups(kp, bu, pod1)
	mustApply(t, l, f2, l.Set("c1", promise(pod1+"/c1", 100, 200)), protection.Full)
	mustApply(t, protection.New(0), f2, []string{kp, bu, pod1}, protection.Full)
	checkValues(t, f2, want{kp: {100, 200}, bu: {100, 200}, pod1: {100, 200}})
}

// A vanished cgroup takes what the ledger wrote there with it: the saved
// state must not keep naming it.
func TestApplyForgetsVanishedCgroups(t *testing.T) {
	f := newFake().addCgroups(kp, bu, pod1)
	l := protection.New(0)
	mustApply(t, l, f, l.Set("c1", promise(pod1+"/c1", 100, 200)), protection.Full)
	delete(f.vals, fkey{pod1, fMin})
	delete(f.vals, fkey{pod1, fLow})
	mustApply(t, l, f, l.Remove("c1"), protection.Full)
	for _, v := range l.Snapshot() {
		if v.Path == pod1 {
			t.Errorf("Snapshot still holds %+v of the vanished pod cgroup", v)
		}
	}
	if n := len(l.Snapshot()); n != 0 {
		t.Errorf("Snapshot has %d values after lowering everything; want 0", n)
	}
}

// TestLedgerShrinksAfterMassRemoval: once the promises fell to a quarter
// of their peak the ledger's maps are made anew at their size; cloned, as
// they were, they kept the capacity of the peak (some 3 MB after 20 000
// promises on 7 000 pods).
func TestLedgerShrinksAfterMassRemoval(t *testing.T) {
	const peak = 20000
	l := protection.New(0)
	ids := make([]string, peak)
	ancestors := make([][]string, peak)
	for i := range ids {
		ids[i] = fmt.Sprintf("%064x", i)
		ancestors[i] = []string{"/kubepods", "/kubepods/burstable", fmt.Sprintf("/kubepods/burstable/pod%036x", i/3)}
	}
	before := heapNow()
	for i, id := range ids {
		l.Set(id, protection.Promise{Ancestors: ancestors[i], Min: 1 << 20, Low: 2 << 20})
	}
	full := heapNow() - before
	for _, id := range ids {
		l.Remove(id)
	}
	left := heapNow() - before
	t.Logf("%d B per promise with %d, %d B left", full/peak, peak, left)
	if left > 64<<10 {
		t.Errorf("%d bytes left after %d promises went (%d with them); want under 64 KiB", left, peak, full)
	}
	if got, _ := l.Sums("/kubepods"); got != 0 {
		t.Errorf("/kubepods sums %d; want 0", got)
	}
	runtime.KeepAlive(ids)
	runtime.KeepAlive(ancestors)
}

func heapNow() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
