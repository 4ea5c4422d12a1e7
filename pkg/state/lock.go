package state

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// The NRI plugin and the OCI hooks (short-lived processes, one per
// container event) share the state file. Two flock(2) locks beside it keep
// them from fighting:
//
//   - the plugin lock (path + ".plugin.lock"): the plugin holds it
//     exclusively for as long as it runs. A hook takes it shared, without
//     waiting; when it cannot, the plugin runs, owns the state and sees the
//     container through NRI, and the hook leaves it alone.
//   - the writer lock (path + ".lock"): a hook holds it exclusively from
//     reading the state to its last append, so that hooks run one at a time.
//
// The kernel drops both when a process dies, kill -9 included.

// ErrPluginRunning tells a hook that the NRI plugin runs on the same state.
var ErrPluginRunning = errors.New("the nri-memqos NRI plugin runs on this state file")

// Lock is a held lock (or pair of locks); Release lets go.
type Lock struct{ files []*os.File }

// Release unlocks and closes the lock files.
func (l *Lock) Release() error {
	if l == nil {
		return nil
	}
	var errs []error
	for i := len(l.files) - 1; i >= 0; i-- {
		errs = append(errs, l.files[i].Close()) // closing the last fd drops the flock
	}
	l.files = nil
	return errors.Join(errs...)
}

// PluginLockName is the plugin lock's file of the state at path.
func PluginLockName(path string) string { return path + ".plugin.lock" }

// WriterLockName is the writer lock's file of the state at path.
func WriterLockName(path string) string { return path + ".lock" }

// LockPlugin takes the plugin lock exclusively for the NRI plugin, waiting
// at most wait for hooks that hold it shared to finish.
func LockPlugin(path string, wait time.Duration) (*Lock, error) {
	f, err := openLock(PluginLockName(path))
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return &Lock{files: []*os.File{f}}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			_ = f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("state %s: another process holds %s after %v (is another nri-memqos plugin running on this state directory?)", path, PluginLockName(path), wait)
			}
			return nil, fmt.Errorf("state %s: locking %s: %w", path, PluginLockName(path), err)
		}
		time.Sleep(delay)
	}
}

// LockHook takes the locks of one hook: the plugin lock shared, failing at
// once with ErrPluginRunning while the plugin holds it, then the writer lock
// exclusively, waiting for the hooks before it.
func LockHook(path string) (*Lock, error) {
	owner, err := openLock(PluginLockName(path))
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(owner.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		_ = owner.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrPluginRunning
		}
		return nil, fmt.Errorf("state %s: locking %s: %w", path, PluginLockName(path), err)
	}
	w, err := openLock(WriterLockName(path))
	if err != nil {
		_ = owner.Close()
		return nil, err
	}
	if err := unix.Flock(int(w.Fd()), unix.LOCK_EX); err != nil {
		_ = w.Close()
		_ = owner.Close()
		return nil, fmt.Errorf("state %s: locking %s: %w", path, WriterLockName(path), err)
	}
	return &Lock{files: []*os.File{owner, w}}, nil
}

func openLock(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state lock: %w", err)
	}
	return f, nil
}
