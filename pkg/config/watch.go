package config

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/sirupsen/logrus"
)

// Watch reloads the configuration file when it changes and on SIGHUP.
// It watches the file's directory, not the file: editors and Kubernetes
// ConfigMap updates replace the file (or the ..data symlink) instead of
// writing it in place. An invalid file is rejected with its reason and the
// configuration in force stays.
// hup must already be registered for SIGHUP (before the plugin starts, so
// that an early SIGHUP does not end the process).
func Watch(ctx context.Context, log *logrus.Logger, path string, hup <-chan os.Signal, apply func(*Config)) {

	var events <-chan fsnotify.Event
	var errs <-chan error
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warnf("config reload on file change is off (SIGHUP still reloads): %v", err)
	} else {
		defer w.Close()
		if err := w.Add(filepath.Dir(path)); err != nil {
			log.Warnf("config reload on file change is off (SIGHUP still reloads): %v", err)
		} else {
			events, errs = w.Events, w.Errors
		}
	}

	load := func(why string) {
		cfg, err := Load(path)
		if err != nil {
			log.Errorf("configuration rejected (%s), keeping the previous one: %v", why, err)
			return
		}
		apply(cfg)
	}
	// Several events arrive for one save: settle for a moment first.
	var settle <-chan time.Time
	base := filepath.Base(path)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			load("SIGHUP")
		case ev := <-events:
			name := filepath.Base(ev.Name)
			if name == base || name == "..data" {
				settle = time.After(200 * time.Millisecond)
			}
		case err := <-errs:
			log.Warnf("config watch: %v", err)
		case <-settle:
			settle = nil
			load("file changed")
		}
	}
}
