package config

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
)

const (
	// testSettle is the watcher's settle time in these tests.
	testSettle = 50 * time.Millisecond
	// pause is a writer stalled long enough for the watcher to read the
	// file twice in between.
	pause = 8 * testSettle
	// quiet is how long no further apply may follow the expected one.
	quiet = 12 * testSettle
	// applyTimeout bounds the wait for an expected apply.
	applyTimeout = 5 * time.Second
)

// version is a complete configuration file, told apart by its
// nodeProtectionFraction (0.5 + v/100). A prefix of it (a half-written
// file) is valid YAML too, but lacks nodeProtectionFraction, the key
// written last.
func version(v int) string {
	return fmt.Sprintf("defaultClass: burstable\nnamespaceClasses:\n  team-a: best-effort\nnodeProtectionFraction: %v\n", fraction(v))
}

func fraction(v int) float64 { return 0.5 + float64(v)/100 }

// halves splits a file's content in two, the first half valid on its own.
func halves(s string) (string, string) {
	i := strings.Index(s, "namespaceClasses")
	return s[:i], s[i:]
}

type watchRun struct {
	t       *testing.T
	path    string
	applied chan *Config
	hup     chan os.Signal
	logs    *test.Hook
}

// startWatch runs a watcher of path with the test settle time until the
// test ends, and returns once it watches the directory.
func startWatch(t *testing.T, path string) *watchRun {
	t.Helper()
	return startWatchSettle(t, path, testSettle)
}

func startWatchSettle(t *testing.T, path string, settle time.Duration) *watchRun {
	t.Helper()
	log, hook := test.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	r := &watchRun{t: t, path: path, applied: make(chan *Config, 100), hup: make(chan os.Signal, 1), logs: hook}
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	w := &watcher{log: log, path: path, settle: settle, apply: func(c *Config) { r.applied <- c }, ready: func() { close(ready) }}
	go func() {
		defer close(done)
		w.run(ctx, r.hup)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			for _, e := range hook.AllEntries() {
				t.Logf("watcher log: %s %s", e.Level, e.Message)
			}
		}
	})
	select {
	case <-ready:
	case <-time.After(applyTimeout):
		t.Fatal("watcher did not start")
	}
	return r
}

// expectOne waits for one apply, which must be version v, and then for
// quiet: no further apply.
func (r *watchRun) expectOne(v int) {
	r.t.Helper()
	select {
	case c := <-r.applied:
		if c.NodeProtectionFraction != fraction(v) || c.DefaultClass != ClassBurstable || c.NamespaceClasses["team-a"] != ClassBestEffort {
			r.t.Fatalf("applied %s; want version %d (nodeProtectionFraction %v): an empty or partial file was applied", dump(c), v, fraction(v))
		}
	case <-time.After(applyTimeout):
		r.t.Fatalf("version %d not applied within %v", v, applyTimeout)
	}
	r.expectNone()
}

// expectNone checks that nothing is applied for a while.
func (r *watchRun) expectNone() {
	r.t.Helper()
	select {
	case c := <-r.applied:
		r.t.Fatalf("unexpected apply of %s", dump(c))
	case <-time.After(quiet):
	}
}

// rejections returns the rejection lines logged so far.
func (r *watchRun) rejections() []string {
	var out []string
	for _, e := range r.logs.AllEntries() {
		if strings.Contains(e.Message, "configuration rejected") {
			out = append(out, e.Message)
		}
	}
	return out
}

// expectRejectedEmpty checks that the watcher saw an empty file and
// rejected it, naming the file.
func (r *watchRun) expectRejectedEmpty() {
	r.t.Helper()
	for _, l := range r.rejections() {
		if strings.Contains(l, "empty") && strings.Contains(l, r.path) {
			return
		}
	}
	r.t.Errorf("no rejection of the empty file %s logged; rejections: %q", r.path, r.rejections())
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeTo(t *testing.T, f *os.File, content string) {
	t.Helper()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
}

// TestWatchTruncateThenWrite: a file rewritten in place (as shell
// redirection, kubectl cp or most tools do) is empty, then half written,
// for a while. Only the final content is applied, once; the empty file
// the watcher saw meanwhile is rejected.
func TestWatchTruncateThenWrite(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "memqos.yaml")
	write(t, path, version(1))
	r := startWatch(t, path)

	// Quick: truncate and write in one go.
	write(t, path, version(2))
	r.expectOne(2)

	// Slow: the writer stalls on the empty file, then writes in two parts.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(pause)
	first, rest := halves(version(3))
	writeTo(t, f, first)
	time.Sleep(testSettle / 5)
	writeTo(t, f, rest)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r.expectOne(3)
	r.expectRejectedEmpty()
}

// TestWatchHalfWrittenUntilSettled: a writer that stalls with half the
// file for longer than the settle time, but less than twice it, is not
// applied half: the watcher reads the file again a settle time later and
// sees it changed.
func TestWatchHalfWrittenUntilSettled(t *testing.T) {
	t.Parallel()
	const settle = 200 * time.Millisecond
	path := filepath.Join(t.TempDir(), "memqos.yaml")
	write(t, path, version(1))
	r := startWatchSettle(t, path, settle)
	first, rest := halves(version(2))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	writeTo(t, f, first)
	time.Sleep(settle * 3 / 2)
	writeTo(t, f, rest)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r.expectOne(2)
}

// TestWatchRenameIntoPlace: editors save by renaming. Either a complete
// temporary file renamed over the original, or (vim without backupcopy)
// the original renamed away and a new file written at its name, which is
// empty for a while.
func TestWatchRenameIntoPlace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "memqos.yaml")
	write(t, path, version(1))
	r := startWatch(t, path)

	// A temporary file written slowly beside it, then renamed over it.
	tmp := filepath.Join(dir, ".memqos.yaml.swp")
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	first, rest := halves(version(2))
	writeTo(t, f, first)
	time.Sleep(pause)
	writeTo(t, f, rest)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	r.expectOne(2)

	// The original renamed to a backup, a new file created, filled late.
	backup := path + "~"
	if err := os.Rename(path, backup); err != nil {
		t.Fatal(err)
	}
	f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(pause)
	writeTo(t, f, version(3))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(backup); err != nil {
		t.Fatal(err)
	}
	r.expectOne(3)
	r.expectRejectedEmpty()
}

// configMap is a ConfigMap volume as kubelet's atomic writer lays it out:
// the key is a symlink into ..data, itself a symlink to a timestamped
// directory that every update replaces whole.
type configMap struct {
	t   *testing.T
	dir string
	gen int
}

func newConfigMap(t *testing.T, content string) (*configMap, string) {
	m := &configMap{t: t, dir: t.TempDir()}
	m.update(content)
	if err := os.Symlink(filepath.Join("..data", "memqos.yaml"), filepath.Join(m.dir, "memqos.yaml")); err != nil {
		t.Fatal(err)
	}
	return m, filepath.Join(m.dir, "memqos.yaml")
}

// update writes a new timestamped directory, swaps ..data to it by rename
// and removes the old directory, as kubelet does.
func (m *configMap) update(content string) {
	m.t.Helper()
	old := fmt.Sprintf("..gen_%d", m.gen)
	m.gen++
	gen := fmt.Sprintf("..gen_%d", m.gen)
	if err := os.Mkdir(filepath.Join(m.dir, gen), 0o755); err != nil {
		m.t.Fatal(err)
	}
	write(m.t, filepath.Join(m.dir, gen, "memqos.yaml"), content)
	tmp := filepath.Join(m.dir, "..data_tmp")
	if err := os.Symlink(gen, tmp); err != nil {
		m.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(m.dir, "..data")); err != nil {
		m.t.Fatal(err)
	}
	if m.gen > 1 {
		if err := os.RemoveAll(filepath.Join(m.dir, old)); err != nil {
			m.t.Fatal(err)
		}
	}
}

// TestWatchConfigMapSwap: a ConfigMap update swaps the ..data symlink; one
// apply of the new content. A ConfigMap edited to an empty value is
// rejected, not applied as the defaults.
func TestWatchConfigMapSwap(t *testing.T) {
	t.Parallel()
	m, path := newConfigMap(t, version(1))
	r := startWatch(t, path)

	m.update(version(2))
	r.expectOne(2)

	m.update("")
	r.expectNone()
	r.expectRejectedEmpty()

	m.update(version(3))
	r.expectOne(3)
}

// TestWatchSIGHUP: SIGHUP reads the file as it stands: one apply, or a
// rejection of an empty file.
func TestWatchSIGHUP(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "memqos.yaml")
	write(t, path, version(1))
	r := startWatch(t, path)
	r.hup <- syscall.SIGHUP
	r.expectOne(1)

	write(t, path, "# nothing yet\n")
	r.expectNone()
	r.expectRejectedEmpty()
	n := len(r.rejections())
	r.hup <- syscall.SIGHUP
	r.expectNone()
	if rej := r.rejections(); len(rej) != n+1 || !strings.Contains(rej[n], "SIGHUP") {
		t.Errorf("rejections after SIGHUP: %q; want one more, naming SIGHUP", rej)
	}
}
