package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/config"
	"nri-memqos/pkg/health"
	"nri-memqos/pkg/policy"
	"nri-memqos/pkg/protection"
	"nri-memqos/pkg/reconcile"
	"nri-memqos/pkg/state"
)

// Options configure a Node.
type Options struct {
	// Log receives every message of the core and of its reconciler.
	Log *logrus.Logger
	// Host is the node's memory and page size.
	Host Host
	// FileConfig is the configuration from the -config file, used when the
	// runtime gives none; nil means the built-in defaults.
	FileConfig *config.Config
	// StateFile keeps ledger and requests across restarts; "" keeps none.
	StateFile string
	// Meminfo gives the reconciler MemAvailable and MemTotal; nil reads
	// /proc/meminfo.
	Meminfo reconcile.Meminfo
	// NodePSI gives the reconciler the node's memory pressure; nil reads
	// /proc/pressure/memory.
	NodePSI func() (cgroupfs.PSI, error)
	// OneShot is a core for one event of a short-lived process (the OCI
	// hook): it takes the other containers' promises from the state file,
	// since no runtime listing follows, and writes everything before the
	// event returns (CreateNow, RemoveNow); Run is not called.
	OneShot bool
}

// Container is one container as the runtime presents it, in policy facts.
type Container struct {
	ID  string
	Pod policy.Pod
	Ctr policy.Container
	// CgroupsPath is the OCI cgroupsPath (cgroupfs or systemd form).
	CgroupsPath string
	// CreatedAt orders containers in Resync (oldest first).
	CreatedAt int64
	// Inactive marks a container the runtime lists (in Resync) that neither
	// runs nor is about to (stopped, or its pod unknown): its saved request
	// is kept, nothing is decided for it.
	Inactive bool
}

// tracked is a container the plugin decided for.
type tracked struct {
	// seq orders containers by when the plugin first decided for them, so
	// re-deciding all (reload) keeps the node protection cap for the
	// containers that had protection first.
	seq      uint64
	pod      policy.Pod
	ctr      policy.Container
	decision *policy.Decision
	// rel is the container's cgroup path relative to a hierarchy root.
	rel string
}

// Node is the core. Create it with New, configure it (Configure), then feed
// it the runtime's events.
type Node struct {
	log       *logrus.Logger
	host      Host
	stateFile string
	meminfo   reconcile.Meminfo
	nodePSI   func() (cgroupfs.PSI, error)

	mu         sync.Mutex
	cfg        *config.Config
	fileConfig *config.Config
	// fromRuntime tells that the runtime's plugin configuration is in force
	// (pre-registered): file reloads do not apply then.
	fromRuntime bool
	fs          *cgroupfs.FS
	ledger      *protection.Ledger
	containers  map[string]*tracked
	nextSeq     uint64
	// requests are the memory requests resolved per container ID; kept
	// across restarts because an in-place resize changes them after the
	// creation annotation was stamped.
	requests map[string]int64
	// store keeps the state on disk (nil without a state file); changed
	// is what the event in progress changed, for its journal record.
	store   *state.Store
	changed changes
	// entries are, per container ID, the files the plugin set in the
	// container's cgroup (for cleanup); see entries.go. Kept across
	// restarts in the state file.
	entries map[string]*entry
	// promises are, per container ID, the protection promised, as the
	// state file keeps it for short-lived processes (see OneShot).
	promises map[string]state.Promise
	oneShot  bool

	reconciler *reconcile.Reconciler
	// unsupported are the unified files the kernel does not offer; probed
	// tells that a probe found a cgroup to look in (cgroup v2).
	unsupported map[string]bool
	probed      bool
	// nextScan is when a probe may scan the root's children again.
	nextScan time.Time
	// configured is closed when the first configuration is installed.
	configured chan struct{}
	repairs    *repairs
	// repairing is the ancestor repair or writer pass in progress
	// (liveness).
	repairing health.InFlight
	// pend are the containers created and not yet started (metrics).
	pend *pending
	// effects is the queue of the ancestor writer (effects.go).
	effects *effects
	// shrink releases memory after a mass removal (memory.go).
	shrink shrinkWatch
	// runs counts the Run calls in progress (Close waits for them).
	runMu sync.Mutex
	runs  sync.WaitGroup
}

// errNotConfigured fails events that arrive before any configuration.
var errNotConfigured = errors.New("memqos: no configuration installed yet")

// New returns a core with no configuration installed.
func New(o Options) *Node {
	if o.Meminfo == nil {
		o.Meminfo = ReadMeminfo
	}
	if o.NodePSI == nil {
		o.NodePSI = ReadNodePSI
	}
	return &Node{
		log:        o.Log,
		host:       o.Host,
		stateFile:  o.StateFile,
		meminfo:    o.Meminfo,
		nodePSI:    o.NodePSI,
		fileConfig: o.FileConfig,
		oneShot:    o.OneShot,
		promises:   map[string]state.Promise{},
		ledger:     protection.New(o.Host.MemTotal),
		containers: map[string]*tracked{},
		requests:   map[string]int64{},
		configured: make(chan struct{}),
		repairs:    newRepairs(),
		pend:       &pending{since: map[string]time.Time{}},
		effects:    newEffects(),
		changed:    changes{requests: map[string]struct{}{}, entries: map[string]struct{}{}, promises: map[string]struct{}{}},
	}
}

// Run runs the ancestor writer, the reconciler and the ancestor repair
// from the first configuration on until ctx ends.
func (n *Node) Run(ctx context.Context) {
	n.runMu.Lock()
	n.runs.Add(1)
	n.runMu.Unlock()
	defer n.runs.Done()
	select {
	case <-ctx.Done():
		return
	case <-n.configured:
	}
	n.mu.Lock()
	r, fs := n.reconciler, n.fs
	n.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); n.runAncestorWriter(ctx, fs) }()
	go func() { defer wg.Done(); n.runRepairs(ctx) }()
	r.Run(ctx)
	wg.Wait()
}

// closeWait bounds how long Close waits for Run to end.
const closeWait = 5 * time.Second

// Close closes the state store once Run has ended (at most closeWait):
// the ancestor writer's last pass, after Run's context ended, still
// journals what it writes. Call it when the events have ended.
func (n *Node) Close() error {
	done := make(chan struct{})
	go func() {
		n.runMu.Lock()
		defer n.runMu.Unlock()
		n.runs.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(closeWait):
		n.log.Warnf("closing the state while the ancestor writer still runs (waited %v)", closeWait)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.store == nil {
		return nil
	}
	return n.store.Close()
}

// Reconciler returns the reconciler (nil before the first configuration).
func (n *Node) Reconciler() *reconcile.Reconciler {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.reconciler
}

// Version is the cgroup version in force (0 before the first configuration).
func (n *Node) Version() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fs == nil {
		return 0
	}
	return n.fs.Version
}

// Configure installs the configuration the runtime hands to pre-registered
// plugins (from its conf.d) when runtimeConfig is not empty; else the
// -config file's, else the defaults.
func (n *Node) Configure(runtimeConfig string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	cfg := n.fileConfig
	n.fromRuntime = runtimeConfig != ""
	if runtimeConfig != "" {
		var err error
		if cfg, err = config.Parse([]byte(runtimeConfig)); err != nil {
			n.log.Errorf("refusing configuration from runtime: %v", err)
			return err
		}
	}
	if cfg == nil {
		cfg = config.Default()
	}
	if err := n.install(cfg); err != nil {
		n.log.Errorf("refusing configuration: %v", err)
		return err
	}
	return nil
}

// install puts a validated configuration and the cgroup mount it names in
// force. Callers hold n.mu.
func (n *Node) install(cfg *config.Config) error {
	fs, err := cgroupfs.Detect(cfg.CgroupRoot, string(cfg.CgroupVersion))
	if err != nil {
		return err
	}
	if fs.PlainFiles {
		n.log.Warnf("%s is not a cgroup filesystem: writing it as a plain test tree", fs.MemoryDir("/"))
	}
	first := n.fs == nil
	n.cfg, n.fs = cfg, fs
	if first {
		n.loadState()
		n.reconciler = reconcile.New(fs, fs.Version, cfg, n.targets, n.meminfo, n.log, n.host.PageSize)
		n.reconciler.SetNodePSI(n.nodePSI)
		n.probe()
		close(n.configured)
	} else {
		n.reconciler.SetConfig(cfg)
	}
	n.log.WithFields(logrus.Fields{"cgroupRoot": fs.Root, "cgroupVersion": fs.Version, "classes": cfg.ClassNames()}).Info("configured")
	return nil
}

// Reload installs a new configuration from the file: new containers get it
// at once, every running container is re-decided under it (its ancestors
// now, its own values by the reconciler's next drift repair). The cgroup
// mount cannot change without a restart.
func (n *Node) Reload(cfg *config.Config) {
	n.mu.Lock()
	defer n.mu.Unlock()
	defer n.saveState()
	if n.fromRuntime {
		n.log.Warn("configuration file changed, but the runtime's plugin configuration is in force: ignored")
		return
	}
	if n.fs == nil {
		if err := n.install(cfg); err != nil {
			n.log.Errorf("configuration rejected, keeping the previous one: %v", err)
			return
		}
		n.fileConfig = cfg
		return
	}
	if cfg.CgroupRoot != n.cfg.CgroupRoot || cfg.CgroupVersion != n.cfg.CgroupVersion {
		n.log.Warnf("cgroupRoot and cgroupVersion change only with a restart: keeping %s (%s)", n.cfg.CgroupRoot, n.cfg.CgroupVersion)
		cfg.CgroupRoot, cfg.CgroupVersion = n.cfg.CgroupRoot, n.cfg.CgroupVersion
	}
	// A later reconnection configures the plugin again from fileConfig.
	n.cfg, n.fileConfig = cfg, cfg
	n.redecide("reload", n.trackedInOrder())
	n.reconciler.SetConfig(cfg)
	n.log.WithFields(logrus.Fields{"classes": cfg.ClassNames(), "containers": len(n.containers)}).Info("configuration reloaded")
}
