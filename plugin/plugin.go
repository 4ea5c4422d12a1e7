package main

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	"github.com/sirupsen/logrus"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/config"
	"nri-memqos/pkg/metrics"
	"nri-memqos/pkg/policy"
	"nri-memqos/pkg/protection"
	"nri-memqos/pkg/reconcile"
	"nri-memqos/pkg/state"
)

// The handlers this plugin relies on. The stub finds handlers by reflection
// and silently ignores one whose signature drifted: these assertions make
// such a drift a compile error.
var (
	_ stub.ConfigureInterface           = (*plugin)(nil)
	_ stub.SynchronizeInterface         = (*plugin)(nil)
	_ stub.CreateContainerInterface     = (*plugin)(nil)
	_ stub.StartContainerInterface      = (*plugin)(nil)
	_ stub.UpdateContainerInterface     = (*plugin)(nil)
	_ stub.PostUpdateContainerInterface = (*plugin)(nil)
	_ stub.StopContainerInterface       = (*plugin)(nil)
	_ stub.RemoveContainerInterface     = (*plugin)(nil)
)

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

// plugin holds state that outlives any one runtime connection.
type plugin struct {
	log *logrus.Logger

	mu         sync.Mutex
	cfg        *config.Config
	fileConfig *config.Config // from -config, used when the runtime gives none
	fs         *cgroupfs.FS
	node       nodeInfo
	ledger     *protection.Ledger
	containers map[string]*tracked
	nextSeq    uint64
	// requests are the memory requests resolved per container ID; kept
	// across restarts because an in-place resize changes them after the
	// creation annotation was stamped.
	requests map[string]int64
	// stateFile persists ledger and requests ("" = none); dirty marks
	// changes not yet saved.
	stateFile string
	dirty     bool

	// ctx bounds the reconciler, which starts with the first configuration.
	ctx        context.Context
	reconciler *reconcile.Reconciler
	// metrics, when not nil, records event timings and readiness.
	metrics *metrics.Metrics
	// fromRuntime tells that the runtime's plugin configuration is in force
	// (pre-registered): file reloads do not apply then.
	fromRuntime bool
}

func newPlugin(log *logrus.Logger, fileConfig *config.Config, node nodeInfo, stateFile string) *plugin {
	p := &plugin{
		log:        log,
		fileConfig: fileConfig,
		node:       node,
		ledger:     protection.New(),
		stateFile:  stateFile,
		containers: map[string]*tracked{},
		requests:   map[string]int64{},
	}
	return p
}

// loadState takes back what a previous process of the plugin saved for the
// same cgroup mount.
func (p *plugin) loadState() {
	if p.stateFile == "" {
		return
	}
	st, err := state.Load(p.stateFile, p.stateScope())
	if err != nil {
		p.log.Warnf("starting without saved state: %v", err)
	}
	p.ledger.Restore(st.Ancestors)
	maps.Copy(p.requests, st.Requests)
}

// saveState writes the state when it changed. Callers hold p.mu.
func (p *plugin) saveState() {
	if p.stateFile == "" || !p.dirty {
		return
	}
	st := &state.State{Scope: p.stateScope(), Ancestors: p.ledger.Snapshot(), Requests: p.requests}
	if err := state.Save(p.stateFile, st); err != nil {
		p.log.Warnf("%v", err)
		return
	}
	p.dirty = false
}

// record remembers the request resolved for a container.
func (p *plugin) record(id string, request int64) {
	if old, ok := p.requests[id]; !ok || old != request {
		p.requests[id] = request
		p.dirty = true
	}
}

// stateScope names the cgroup mount the saved ancestor values belong to.
func (p *plugin) stateScope() string {
	return fmt.Sprintf("%s v%d", p.fs.Root, p.fs.Version)
}

// setConfig installs a validated configuration and the cgroup mount it names.
func (p *plugin) setConfig(cfg *config.Config) error {
	fs, err := cgroupfs.Detect(cfg.CgroupRoot, string(cfg.CgroupVersion))
	if err != nil {
		return err
	}
	if dir := fs.MemoryDir("/"); !cgroupfs.IsCgroupFilesystem(dir) {
		p.log.Warnf("%s is not a cgroup filesystem: writing it as a plain test tree", dir)
		cgroupfs.UseTestTree()
	}
	first := p.fs == nil
	p.cfg, p.fs = cfg, fs
	if first {
		p.loadState()
		p.reconciler = reconcile.New(fs, fs.Version, cfg, p.targets, readMeminfo, p.log, p.node.pageSize)
		if p.ctx != nil {
			go p.reconciler.Run(p.ctx)
		}
	} else {
		p.reconciler.SetConfig(cfg)
	}
	p.log.WithFields(logrus.Fields{"cgroupRoot": fs.Root, "cgroupVersion": fs.Version, "classes": cfg.ClassNames()}).Info("configured")
	return nil
}

// Configure takes the configuration the runtime hands to pre-registered
// plugins (from its conf.d); without one, the -config file or the defaults.
func (p *plugin) Configure(_ context.Context, cfgText, runtime, version string) (stub.EventMask, error) {
	defer p.observe("Configure", time.Now())
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log.WithFields(logrus.Fields{"runtime": runtime, "version": version}).Info("connected to runtime")
	cfg := p.fileConfig
	p.fromRuntime = cfgText != ""
	if cfgText != "" {
		var err error
		if cfg, err = config.Parse([]byte(cfgText)); err != nil {
			p.log.Errorf("refusing configuration from runtime: %v", err)
			return 0, err
		}
	}
	if cfg == nil {
		cfg = config.Default()
	}
	if err := p.setConfig(cfg); err != nil {
		p.log.Errorf("refusing configuration: %v", err)
		return 0, err
	}
	return 0, nil
}

func ctrLog(log *logrus.Logger, pod *api.PodSandbox, ctr *api.Container) *logrus.Entry {
	return log.WithFields(logrus.Fields{
		"namespace": pod.GetNamespace(), "pod": pod.GetName(), "container": ctr.GetName(),
	})
}

// decide runs the policy for one container with the node facts in force.
// fromKubelet tells that the container's resources (or res) are kubelet's
// request as it stands, not what the runtime holds after earlier events.
// Callers hold p.mu.
func (p *plugin) decide(pod *api.PodSandbox, ctr *api.Container, res *api.LinuxResources, fromKubelet bool) (*tracked, error) {
	t := &tracked{pod: podFacts(pod), ctr: containerFacts(ctr, res)}
	t.ctr.UnifiedFromKubelet = fromKubelet
	if r, ok := p.requests[ctr.GetId()]; ok {
		t.ctr.Recorded = &r
	}
	node := p.node.facts(p.ledger.TotalMin(ctr.GetId()))
	if q := p.cfg.NodeAllocatable; q != nil {
		node.Allocatable, _ = q.Bytes() // validated with the config
	}
	d, err := policy.Decide(p.cfg, t.pod, t.ctr, node)
	if err != nil || d == nil {
		return nil, err
	}
	t.decision = d
	p.record(ctr.GetId(), d.Request)
	if rel, err := cgroupfs.RelPath(ctr.GetLinux().GetCgroupsPath()); err == nil {
		t.rel = rel
	}
	return t, nil
}

func logDecision(l *logrus.Entry, event string, d *policy.Decision) {
	if !l.Logger.IsLevelEnabled(logrus.InfoLevel) {
		for _, w := range d.Warnings {
			l.Warn(w)
		}
		return
	}
	l = l.WithFields(logrus.Fields{"class": d.Class, "request": d.Request, "requestSource": string(d.RequestSource)})
	for _, w := range d.Warnings {
		l.Warn(w)
	}
	l.WithField("values", d.UnifiedV2()).Infof("%s: memory QoS decided", event)
}

// promise records a container's protection and raises its ancestors (v2).
// Callers hold p.mu.
func (p *plugin) promise(l *logrus.Entry, id string, t *tracked) {
	if paths := p.setPromise(id, t); len(paths) > 0 {
		p.applyAncestors(l, paths, protection.RaiseOnly)
	}
}

// setPromise records a container's protection in the ledger, which also
// counts the node-wide memory.min cap on both cgroup versions, and returns
// the ancestors to write (cgroup v2 only). Callers hold p.mu.
func (p *plugin) setPromise(id string, t *tracked) []string {
	var ancestors []string
	if p.fs.Version == 2 && t.rel != "" {
		ancestors = cgroupfs.Ancestors(t.rel)
	}
	return p.ledger.Set(id, protection.Promise{
		Ancestors: ancestors,
		Min:       t.decision.ProtectedMin(),
		Low:       t.decision.ProtectedLow(),
	})
}

func (p *plugin) applyAncestors(l *logrus.Entry, paths []string, mode protection.Mode) {
	changes, err := p.ledger.Apply(p.fs, paths, mode)
	for _, c := range changes {
		l.WithFields(logrus.Fields{"cgroup": c.Path, "file": c.File, "from": c.From, "to": c.To}).Debug("ancestor protection")
	}
	if err != nil {
		l.Warnf("%v", err)
	}
	if len(changes) > 0 {
		p.dirty = true
	}
}

// CreateContainer decides the container's memory QoS and returns it as an
// adjustment. A bad label or annotation fails this container only.
func (p *plugin) CreateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	defer p.observe("CreateContainer", time.Now())
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.saveState()
	l := ctrLog(p.log, pod, ctr)
	t, err := p.decide(pod, ctr, nil, true)
	if err != nil {
		l.Error(err)
		return nil, nil, err
	}
	if t == nil {
		return nil, nil, nil
	}
	logDecision(l, "create", t.decision)
	p.track(ctr.GetId(), t)
	p.promise(l, ctr.GetId(), t)
	return creationAdjustment(t.decision, p.fs.Version), nil, nil
}

// StartContainer writes the cgroup v1 values directly: the container's cgroup
// exists from here on (containerd creates the task in CRI StartContainer,
// CRI-O at creation), and NRI's spec generator drops swappiness and
// reservation from creation adjustments. Failures are logged, never fatal.
func (p *plugin) StartContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	defer p.observe("StartContainer", time.Now())
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fs.Version != 1 {
		return nil
	}
	t, ok := p.containers[ctr.GetId()]
	if !ok {
		return nil
	}
	p.writeV1(ctrLog(p.log, pod, ctr), t)
	return nil
}

func (p *plugin) writeV1(l *logrus.Entry, t *tracked) {
	if t.rel == "" {
		l.Warn("no cgroups path: cgroup v1 values not written")
		return
	}
	changed, err := p.fs.ApplyV1(t.rel, t.decision.V1())
	if err != nil {
		l.Warnf("cgroup v1 values: %v", err)
	}
	if len(changed) > 0 {
		l.WithField("files", changed).Info("cgroup v1 values written")
	}
}

// UpdateContainer recomputes for an in-place resize and returns the new
// values; ancestors are raised now and lowered after the update landed.
func (p *plugin) UpdateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container, res *api.LinuxResources) ([]*api.ContainerUpdate, error) {
	defer p.observe("UpdateContainer", time.Now())
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.saveState()
	l := ctrLog(p.log, pod, ctr)
	t, err := p.decide(pod, ctr, res, true)
	if err != nil {
		l.Error(err)
		return nil, err
	}
	if t == nil {
		return nil, nil
	}
	logDecision(l, "update", t.decision)
	p.track(ctr.GetId(), t)
	p.promise(l, ctr.GetId(), t)
	if u := containerUpdate(ctr.GetId(), t.decision, p.fs.Version); u != nil {
		return []*api.ContainerUpdate{u}, nil
	}
	return nil, nil
}

// PostUpdateContainer lowers ancestors after a shrink and rewrites the v1
// values the runtime's update may have reset.
func (p *plugin) PostUpdateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	defer p.observe("PostUpdateContainer", time.Now())
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.saveState()
	t, ok := p.containers[ctr.GetId()]
	if !ok {
		return nil
	}
	l := ctrLog(p.log, pod, ctr)
	switch p.fs.Version {
	case 1:
		p.writeV1(l, t)
	case 2:
		if t.rel != "" {
			p.applyAncestors(l, cgroupfs.Ancestors(t.rel), protection.Full)
		}
	}
	return nil
}

// StopContainer withdraws the container's protection from its ancestors.
func (p *plugin) StopContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) ([]*api.ContainerUpdate, error) {
	defer p.observe("StopContainer", time.Now())
	p.forget(pod, ctr)
	return nil, nil
}

// RemoveContainer forgets the container.
func (p *plugin) RemoveContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	defer p.observe("RemoveContainer", time.Now())
	p.forget(pod, ctr)
	return nil
}

func (p *plugin) forget(pod *api.PodSandbox, ctr *api.Container) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.saveState()
	delete(p.containers, ctr.GetId())
	if _, ok := p.requests[ctr.GetId()]; ok {
		delete(p.requests, ctr.GetId())
		p.dirty = true
	}
	if paths := p.ledger.Remove(ctr.GetId()); len(paths) > 0 && p.fs.Version == 2 {
		p.applyAncestors(ctrLog(p.log, pod, ctr), paths, protection.Full)
	}
}

// Synchronize rebuilds the plugin's state from what runs and returns the
// values every opted-in container should hold, so a plugin restart or
// upgrade applies without restarting pods.
func (p *plugin) Synchronize(_ context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	defer p.observe("Synchronize", time.Now())
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.saveState()
	byID := make(map[string]*api.PodSandbox, len(pods))
	for _, pod := range pods {
		byID[pod.GetId()] = pod
	}
	// Oldest first, so the node protection cap keeps serving the containers
	// that had protection before.
	ctrs = slices.Clone(ctrs)
	slices.SortStableFunc(ctrs, func(a, b *api.Container) int {
		return cmp.Compare(a.GetCreatedAt(), b.GetCreatedAt())
	})
	touched := p.ledger.Reset()
	p.containers = map[string]*tracked{}
	known := make(map[string]bool, len(ctrs))
	for _, c := range ctrs {
		known[c.GetId()] = true
	}
	for id := range p.requests {
		if !known[id] {
			delete(p.requests, id)
			p.dirty = true
		}
	}
	var updates []*api.ContainerUpdate
	for _, ctr := range ctrs {
		pod := byID[ctr.GetPodSandboxId()]
		if pod == nil {
			continue
		}
		switch ctr.GetState() {
		case api.ContainerState_CONTAINER_CREATED, api.ContainerState_CONTAINER_RUNNING:
		default:
			continue
		}
		l := ctrLog(p.log, pod, ctr)
		t, err := p.decide(pod, ctr, nil, false)
		if err != nil {
			l.Warnf("synchronize: %v", err)
			continue
		}
		if t == nil {
			continue
		}
		logDecision(l, "synchronize", t.decision)
		p.track(ctr.GetId(), t)
		touched = append(touched, p.setPromise(ctr.GetId(), t)...)
		if p.fs.Version == 1 {
			p.writeV1(l, t)
		}
		if u := containerUpdate(ctr.GetId(), t.decision, p.fs.Version); u != nil {
			u.SetIgnoreFailure()
			updates = append(updates, u)
		}
	}
	if p.fs.Version == 2 {
		p.applyAncestors(p.log.WithField("event", "synchronize"), touched, protection.Full)
	}
	p.log.WithFields(logrus.Fields{"containers": len(ctrs), "managed": len(p.containers), "updates": len(updates)}).Info("synchronized")
	if p.metrics != nil {
		p.metrics.SetReady(true)
	}
	return updates, nil
}

// reload installs a new configuration from the file: new containers get it
// at once; running containers get their recomputed values from the
// reconciler's next drift repair (and their ancestors now). The cgroup
// mount cannot change without a restart.
func (p *plugin) reload(cfg *config.Config) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.saveState()
	if p.fromRuntime {
		p.log.Warn("configuration file changed, but the runtime's plugin configuration is in force: ignored")
		return
	}
	if p.fs == nil {
		if err := p.setConfig(cfg); err != nil {
			p.log.Errorf("configuration rejected, keeping the previous one: %v", err)
			return
		}
		p.fileConfig = cfg
		return
	}
	if cfg.CgroupRoot != p.cfg.CgroupRoot || cfg.CgroupVersion != p.cfg.CgroupVersion {
		p.log.Warnf("cgroupRoot and cgroupVersion change only with a restart: keeping %s (%s)", p.cfg.CgroupRoot, p.cfg.CgroupVersion)
		cfg.CgroupRoot, cfg.CgroupVersion = p.cfg.CgroupRoot, p.cfg.CgroupVersion
	}
	// A later reconnection configures the plugin again from fileConfig.
	p.cfg, p.fileConfig = cfg, cfg
	// Re-decide every container from scratch, in the order they came, as
	// Synchronize does: the node cap must count the new promises, not the
	// old ones.
	touched := p.ledger.Reset()
	order := make([]string, 0, len(p.containers))
	for id := range p.containers {
		order = append(order, id)
	}
	slices.SortFunc(order, func(a, b string) int { return cmp.Compare(p.containers[a].seq, p.containers[b].seq) })
	for _, id := range order {
		t := p.containers[id]
		l := p.log.WithFields(logrus.Fields{"namespace": t.pod.Namespace, "pod": t.pod.Name, "container": t.ctr.Name})
		if r, ok := p.requests[id]; ok {
			t.ctr.Recorded = &r
		}
		node := p.node.facts(p.ledger.TotalMin(id))
		if q := cfg.NodeAllocatable; q != nil {
			node.Allocatable, _ = q.Bytes()
		}
		d, err := policy.Decide(cfg, t.pod, t.ctr, node)
		if err != nil || d == nil {
			// Opted out or now invalid: the container keeps what it has;
			// the plugin stops managing it.
			if err != nil {
				l.Warnf("reload: %v", err)
			} else {
				l.Info("reload: no longer opted in; values left as they are")
			}
			delete(p.containers, id)
			continue
		}
		t.decision = d
		logDecision(l, "reload", d)
		touched = append(touched, p.setPromise(id, t)...)
	}
	if p.fs.Version == 2 {
		p.applyAncestors(p.log.WithField("event", "reload"), touched, protection.Full)
	}
	p.reconciler.SetConfig(cfg)
	p.log.WithFields(logrus.Fields{"classes": cfg.ClassNames(), "containers": len(p.containers)}).Info("configuration reloaded")
}

// track stores a container's decision, keeping its place in the order.
// Callers hold p.mu.
func (p *plugin) track(id string, t *tracked) {
	if old, ok := p.containers[id]; ok {
		t.seq = old.seq
	} else {
		p.nextSeq++
		t.seq = p.nextSeq
	}
	p.containers[id] = t
}

// targets lists the containers the reconciler looks after.
func (p *plugin) targets() []reconcile.Target {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]reconcile.Target, 0, len(p.containers))
	for id, t := range p.containers {
		out = append(out, reconcile.Target{
			ID: id, Namespace: t.pod.Namespace, Pod: t.pod.Name, Container: t.ctr.Name,
			Rel: t.rel, Decision: t.decision,
		})
	}
	return out
}

// nodeInfo holds the node facts read once at start.
type nodeInfo struct {
	memTotal int64
	pageSize int64
}

func (n nodeInfo) facts(promisedMin int64) policy.Node {
	return policy.Node{MemTotal: n.memTotal, PageSize: n.pageSize, PromisedMin: promisedMin}
}
