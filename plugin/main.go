// Command nri-memqos is an NRI plugin that gives Kubernetes pods memory
// quality of service. It runs as an external plugin (dialing the NRI socket)
// or pre-registered (started by the runtime from /opt/nri/plugins).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	"github.com/sirupsen/logrus"

	"nri-memqos/pkg/config"
	"nri-memqos/pkg/health"
	"nri-memqos/pkg/metrics"
	"nri-memqos/pkg/node"
	"nri-memqos/pkg/ocihook"
	"nri-memqos/pkg/state"
)

const (
	defaultName = "nri-memqos"
	defaultIdx  = "10"
	// pluginLockWait bounds how long the plugin waits at start for OCI
	// hooks in progress on the same state.
	pluginLockWait = 5 * time.Second
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "explain" {
		os.Exit(runExplain(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "cleanup" {
		os.Exit(runCleanup(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "oci-hook" {
		os.Exit(ocihook.Main("nri-memqos oci-hook", os.Args[2:], os.Stdin, os.Stderr))
	}
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "nri-memqos: %v\n", err)
		os.Exit(1)
	}
}

// gcPercent is the plugin's GOGC when the environment sets none. The
// plugin's live heap is small (about 2 KB per container) and what it
// allocates is short-lived (NRI requests, scrapes): at Go's default of 100
// the heap it keeps resident is twice what is live, most of the plugin's
// anonymous memory. At 50 it is one and a half times, for a collection
// about twice as often (at a live heap of a few MB, well under a
// millisecond each).
const gcPercent = 50

// setGC applies gcPercent unless GOGC is set (the runtime applied that
// one); GOMEMLIMIT, when set, the runtime applies on its own.
func setGC(lookup func(string) (string, bool)) {
	if _, ok := lookup("GOGC"); !ok {
		debug.SetGCPercent(gcPercent)
	}
}

func run() error {
	var (
		name       = flag.String("name", defaultName, "plugin name to register with")
		idx        = flag.String("idx", defaultIdx, "plugin index (order among plugins) to register with")
		socket     = flag.String("socket", api.DefaultSocketPath, "NRI socket to dial (external mode)")
		configFile = flag.String("config", "", "configuration file (YAML); the runtime's plugin configuration wins when it gives one")
		logLevel   = flag.String("log-level", "info", "log level: debug, info, warn, error")
		backoffMax = flag.Duration("reconnect-max", 5*time.Second, "longest wait between reconnection attempts (external mode)")
		stateDir   = flag.String("state-dir", "/run/nri-memqos", "directory for the plugin's state across restarts (\"\" for none)")
		metricsAt  = flag.String("metrics-address", "127.0.0.1:9464", "address serving /metrics, /healthz and /readyz (\"\" for none)")
		healthAt   = flag.String("health-address", "", "address serving only /healthz and /readyz, no data, e.g. :9465 for the kubelet's probes (\"\" for none)")
		liveness   = flag.Duration("liveness-timeout", 30*time.Second, "/healthz fails when an NRI event or a reconciler tick has not finished for this long (0: never)")
	)
	flag.Parse()
	setGC(os.LookupEnv)

	// The NRI stub logs through logrus' standard logger: share it.
	log := logrus.StandardLogger()
	log.SetOutput(os.Stderr)
	lvl, err := logrus.ParseLevel(*logLevel)
	if err != nil {
		return fmt.Errorf("-log-level %q: not a level; allowed: debug, info, warn, error", *logLevel)
	}
	log.SetLevel(lvl)

	var fileCfg *config.Config
	if *configFile != "" {
		if fileCfg, err = config.Load(*configFile); err != nil {
			return err
		}
	}
	host, err := node.ReadHost()
	if err != nil {
		return err
	}
	stateFile := ""
	if *stateDir != "" {
		if err := os.MkdirAll(*stateDir, 0o700); err != nil {
			log.Warnf("running without saved state: %v", err)
		} else {
			stateFile = filepath.Join(*stateDir, stateFileName)
		}
	}
	if stateFile != "" {
		// OCI hooks on this node leave the state to the plugin while it
		// holds this lock (pkg/state, lock.go).
		lock, err := state.LockPlugin(stateFile, pluginLockWait)
		if err != nil {
			log.Warnf("%v; OCI hooks on this node may write the state too", err)
		} else {
			defer lock.Release() //nolint:errcheck // the kernel drops the lock at exit anyway
		}
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()

	core := node.New(node.Options{Log: log, Host: host, FileConfig: fileCfg, StateFile: stateFile})
	p := &plugin{log: log, core: core, metrics: metrics.New(core.MetricsSource())}
	p.metrics.SetLogger(log)
	// Liveness: NRI events (each handler, through watched), reconciler
	// ticks and ancestor repairs in progress, read without the plugin's
	// lock.
	events := &health.InFlight{}
	p.metrics.SetLiveness(metrics.Liveness{Bound: *liveness, Work: []metrics.Work{events.Oldest, core.ReconcilerTick, core.RepairInProgress}})
	// Memory QoS matters more than its metrics and probes: a busy port is
	// logged, not fatal.
	if *metricsAt != "" {
		if err := listen(ctx, log, "-metrics-address", *metricsAt, p.metrics.Handler(), "/metrics, /healthz and /readyz"); err != nil {
			log.Errorf("metrics, /healthz and /readyz are off: %v", err)
		}
	}
	if *healthAt != "" {
		if err := listen(ctx, log, "-health-address", *healthAt, p.metrics.HealthHandler(), "/healthz and /readyz"); err != nil {
			log.Errorf("the health listener is off: %v", err)
		}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	if *configFile != "" {
		go config.Watch(ctx, log, *configFile, hup, core.Reload)
	} else {
		go func() {
			for range hup {
				log.Warn("SIGHUP: no -config file to reload")
			}
		}()
	}
	if fileCfg != nil {
		// Fail fast on a cgroup root that cannot be used.
		if err := core.Configure(""); err != nil {
			return err
		}
	}
	go core.Run(ctx)
	defer func() {
		if err := core.Close(); err != nil {
			log.Warnf("closing the state: %v", err)
		}
	}()

	opts := []stub.Option{stub.WithPluginName(*name), stub.WithPluginIdx(*idx), stub.WithSocketPath(*socket)}
	// Pre-registered plugins get their connection as an inherited fd and take
	// name and index from the environment; they cannot reconnect: the runtime
	// starts them again.
	launched := os.Getenv(api.PluginSocketEnvVar) != ""
	if launched {
		opts = []stub.Option{}
	}
	return serve(ctx, log, watched{plugin: p, events: events}, opts, launched, *backoffMax)
}

// serve runs the plugin and, in external mode, reconnects with exponential
// backoff whenever the runtime goes away, keeping the plugin's state.
func serve(ctx context.Context, log *logrus.Logger, p watched, opts []stub.Option, launched bool, backoffMax time.Duration) error {
	backoff := 100 * time.Millisecond
	for {
		s, err := stub.New(p, opts...)
		if err != nil {
			return fmt.Errorf("failed to create NRI stub: %w", err)
		}
		start := time.Now()
		err = s.Run(ctx)
		p.metrics.SetReady(false)
		if ctx.Err() != nil {
			log.Info("stopping")
			return nil
		}
		if launched {
			return fmt.Errorf("connection to runtime closed: %w", err)
		}
		if time.Since(start) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		if err == nil {
			err = errors.New("connection closed")
		}
		log.Warnf("NRI connection lost (%v); reconnecting in %v", err, backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, backoffMax)
	}
}

// listen listens on addr (given by flag flagName) and serves h, which
// serves what, until ctx ends.
func listen(ctx context.Context, log *logrus.Logger, flagName, addr string, h http.Handler, what string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s %q: %w", flagName, addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Errorf("%s %s: %v", flagName, addr, err)
		}
	}()
	log.Infof("serving %s on %s", what, l.Addr())
	return nil
}
