package state

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLockHookWhilePluginRuns: a hook fails at once with ErrPluginRunning
// while the plugin holds its lock (flock is per open file, so a second open
// in this process conflicts like another process would), and gets its locks
// once the plugin let go.
func TestLockHookWhilePluginRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ancestors.json")
	plugin, err := LockPlugin(path, 0)
	if err != nil {
		t.Fatalf("LockPlugin on a free state: %v", err)
	}
	start := time.Now()
	hook, err := LockHook(path)
	if !errors.Is(err, ErrPluginRunning) {
		t.Fatalf("LockHook while the plugin holds its lock = %v, %v; want ErrPluginRunning", hook, err)
	}
	if hook != nil {
		t.Errorf("LockHook returned a lock with ErrPluginRunning")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("LockHook took %v to give up; want at once (non-blocking)", d)
	}
	if err := plugin.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
	hook, err = LockHook(path)
	if err != nil {
		t.Fatalf("LockHook after the plugin released = %v; want the locks", err)
	}
	if err := hook.Release(); err != nil {
		t.Errorf("Release: %v", err)
	}
}

// TestLockPluginWaitsForHooks: the plugin waits at most its bound for a
// hook in progress, then fails naming the lock file; after the hook
// released it gets the lock.
func TestLockPluginWaitsForHooks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ancestors.json")
	hook, err := LockHook(path)
	if err != nil {
		t.Fatal(err)
	}
	const wait = 100 * time.Millisecond
	start := time.Now()
	plugin, err := LockPlugin(path, wait)
	took := time.Since(start)
	if err == nil {
		_ = plugin.Release()
		t.Fatalf("LockPlugin while a hook holds the plugin lock shared: no error")
	}
	if plugin != nil {
		t.Errorf("LockPlugin returned a lock with its error %v", err)
	}
	for _, want := range []string{PluginLockName(path), "after 100ms"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("LockPlugin error %q does not name %q", err, want)
		}
	}
	if took < wait || took > wait+2*time.Second {
		t.Errorf("LockPlugin gave up after %v; want about %v", took, wait)
	}
	if err := hook.Release(); err != nil {
		t.Fatal(err)
	}
	plugin, err = LockPlugin(path, wait)
	if err != nil {
		t.Fatalf("LockPlugin after the hook released: %v", err)
	}
	// And now the hooks stay away.
	if _, err := LockHook(path); !errors.Is(err, ErrPluginRunning) {
		t.Errorf("LockHook under the plugin = %v; want ErrPluginRunning", err)
	}
	if err := plugin.Release(); err != nil {
		t.Error(err)
	}
}

// TestLockPluginWaitsUntilHookEnds: a hook that finishes within the
// plugin's bound lets the plugin start.
func TestLockPluginWaitsUntilHookEnds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ancestors.json")
	hook, err := LockHook(path)
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan error, 1)
	time.AfterFunc(20*time.Millisecond, func() { released <- hook.Release() })
	plugin, err := LockPlugin(path, 5*time.Second)
	if err != nil {
		t.Fatalf("LockPlugin with a hook ending in 20ms and a 5s bound: %v", err)
	}
	if err := <-released; err != nil {
		t.Error(err)
	}
	if err := plugin.Release(); err != nil {
		t.Error(err)
	}
}

// TestLockHooksSerialized: two hooks on the same state run one at a time:
// the second LockHook returns only after the first released.
func TestLockHooksSerialized(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ancestors.json")
	first, err := LockHook(path)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		l   *Lock
		err error
	}
	got := make(chan result, 1)
	go func() {
		l, err := LockHook(path)
		got <- result{l, err}
	}()
	select {
	case r := <-got:
		_ = r.l.Release()
		t.Fatalf("second LockHook returned (%v) while the first held the writer lock", r.err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatalf("second LockHook after the first released: %v", r.err)
		}
		if err := r.l.Release(); err != nil {
			t.Error(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second LockHook still blocked 10s after the first released")
	}
}

// TestReleaseNil: releasing no lock, or a lock twice, is no error.
func TestReleaseNil(t *testing.T) {
	var l *Lock
	if err := l.Release(); err != nil {
		t.Errorf("(*Lock)(nil).Release() = %v; want nil", err)
	}
	path := filepath.Join(t.TempDir(), "ancestors.json")
	h, err := LockHook(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Release(); err != nil {
		t.Fatal(err)
	}
	if err := h.Release(); err != nil {
		t.Errorf("second Release = %v; want nil", err)
	}
}

// TestLockNames: the lock files sit beside the state.
func TestLockNames(t *testing.T) {
	tests := []struct{ path, plugin, writer string }{
		{"/run/nri-memqos/ancestors.json", "/run/nri-memqos/ancestors.json.plugin.lock", "/run/nri-memqos/ancestors.json.lock"},
		{"s", "s.plugin.lock", "s.lock"},
	}
	for _, tc := range tests {
		if got := PluginLockName(tc.path); got != tc.plugin {
			t.Errorf("PluginLockName(%q) = %q; want %q", tc.path, got, tc.plugin)
		}
		if got := WriterLockName(tc.path); got != tc.writer {
			t.Errorf("WriterLockName(%q) = %q; want %q", tc.path, got, tc.writer)
		}
	}
}

// TestLockInMissingDirectory: a state directory that does not exist is an
// error, not a panic or a hang.
func TestLockInMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "ancestors.json")
	if l, err := LockHook(path); err == nil {
		_ = l.Release()
		t.Error("LockHook in a missing directory: no error")
	}
	if l, err := LockPlugin(path, 10*time.Millisecond); err == nil {
		_ = l.Release()
		t.Error("LockPlugin in a missing directory: no error")
	}
}
