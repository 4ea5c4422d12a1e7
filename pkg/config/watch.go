package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/sirupsen/logrus"
)

// settleTime is how long the watcher waits after the last change before
// it reads the file, and again between the two reads that must agree.
const settleTime = 200 * time.Millisecond

// Watch reloads the configuration file when it changes and on SIGHUP.
// It watches the file's directory, not the file: editors and Kubernetes
// ConfigMap updates replace the file (or the ..data symlink) instead of
// writing it in place.
//
// A reload is parsed from one complete read after the writer settled: once
// no change was seen for settleTime (at once for SIGHUP) the file is read,
// and read again settleTime later; only when both reads agree, with no
// change seen in between, is it parsed and applied. Otherwise the watcher
// waits and reads again. So a file being rewritten in place (empty or half
// written for a moment), created empty before an editor fills it, or
// swapped by a ConfigMap update is applied once, as it ends.
//
// An invalid file, and a file without a document (empty, comments only), is
// rejected with its reason and the configuration in force stays.
// hup must already be registered for SIGHUP (before the plugin starts, so
// that an early SIGHUP does not end the process).
func Watch(ctx context.Context, log *logrus.Logger, path string, hup <-chan os.Signal, apply func(*Config)) {
	(&watcher{log: log, path: path, settle: settleTime, apply: apply}).run(ctx, hup)
}

type watcher struct {
	log    *logrus.Logger
	path   string
	settle time.Duration
	apply  func(*Config)
	// ready, when not nil, is called once the directory is watched (tests).
	ready func()
}

// snapshot is one read of the file: its content, or why it could not be read.
type snapshot struct {
	data []byte
	err  error
}

func (w *watcher) read() snapshot {
	data, err := os.ReadFile(w.path)
	return snapshot{data: data, err: err}
}

func (s snapshot) same(o snapshot) bool {
	if s.err != nil || o.err != nil {
		return s.err != nil && o.err != nil && s.err.Error() == o.err.Error()
	}
	return bytes.Equal(s.data, o.data)
}

// relevant tells whether a directory event may change what path reads:
// the file itself, or the ..data symlink of a ConfigMap volume. A change of
// mode alone (including the watcher's own reads on a filesystem that
// reports access times) is not.
func (w *watcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	name := filepath.Base(ev.Name)
	return name == filepath.Base(w.path) || name == "..data"
}

func (w *watcher) run(ctx context.Context, hup <-chan os.Signal) {
	var events <-chan fsnotify.Event
	var errs <-chan error
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		w.log.Warnf("config reload on file change is off (SIGHUP still reloads): %v", err)
	} else {
		defer fw.Close()
		if err := fw.Add(filepath.Dir(w.path)); err != nil {
			w.log.Warnf("config reload on file change is off (SIGHUP still reloads): %v", err)
		} else {
			events, errs = fw.Events, fw.Errors
		}
	}
	if w.ready != nil {
		w.ready()
	}

	// A round starts at a change (or SIGHUP) and ends in one apply or one
	// rejection; a change during a round starts it again.
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var (
		why  string    // what started the round: "file changed" or "SIGHUP"
		last *snapshot // the round's previous read; nil before the first
	)
	restart := func(reason string, after time.Duration) {
		why, last = reason, nil
		timer.Reset(after)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			restart("SIGHUP", 0)
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if w.relevant(ev) {
				restart("file changed", w.settle)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			w.log.Warnf("config watch: %v", err)
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Changes may have been lost: read the file as if changed.
				restart("file changed", w.settle)
			}
		case <-timer.C:
			cur := w.read()
			if last == nil || !last.same(cur) {
				last = &cur
				timer.Reset(w.settle)
				continue
			}
			last = nil
			w.load(why, cur)
		}
	}
}

// load parses a settled read and applies it, or logs why not.
func (w *watcher) load(why string, s snapshot) {
	err := s.err
	var cfg *Config
	if err != nil {
		err = fmt.Errorf("failed to read config: %w", err)
	} else {
		cfg, err = parseFile(w.path, s.data)
	}
	if err != nil {
		w.log.Errorf("configuration rejected (%s), keeping the previous one: %v", why, err)
		return
	}
	w.apply(cfg)
}
