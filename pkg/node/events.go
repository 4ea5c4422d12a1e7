package node

import (
	"cmp"
	"os"
	"slices"

	"github.com/sirupsen/logrus"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/policy"
	"nri-memqos/pkg/protection"
)

// Update is the decision to send to one running container (Resync).
type Update struct {
	ID       string
	Decision *policy.Decision
}

// Create decides a new container's memory QoS, records its protection and
// raises its ancestors (cgroup v2) before it starts. It returns nil, nil for
// a container that is not opted in, and an error (logged, one line) for a
// bad label or annotation: that container fails, nothing else changes.
func (n *Node) Create(c Container) (*policy.Decision, error) { return n.admit(c, "create") }

// admit decides a container from kubelet's request as it stands (creation,
// in-place resize), records it and raises its ancestors. Callers are Create
// and Update.
func (n *Node) admit(c Container, event string) (*policy.Decision, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	defer n.saveState()
	if n.cfg == nil {
		return nil, errNotConfigured
	}
	n.probe()
	l := ctrLog(n.log, c)
	c.Ctr.UnifiedFromKubelet = true
	t, err := n.decide(c)
	if err != nil {
		if old, kept := n.containers[c.ID]; kept && event == "update" {
			// A running container's labels and annotations do not change:
			// the configuration did (a class removed or restricted). It
			// keeps its last decision, as a reload keeps it, and the
			// update carries it: kubelet's resize request holds its own
			// memory.min/low (0 without TieredReservation), which would
			// otherwise replace the plugin's values.
			l.Warnf("update: %v; keeping the container's last decision (class %q) until a configuration decides it again", err, old.decision.Class)
			return old.decision, nil
		}
		l.Error(err)
		return nil, err
	}
	if t == nil {
		return nil, nil
	}
	logDecision(l, event, t.decision)
	n.track(c.ID, t)
	n.noteUnified(c.ID, t, c.Ctr.Unified)
	if event == "create" {
		n.noteCreated(c.ID)
	}
	n.promise(l, c.ID, t)
	return t.decision, nil
}

// PostCreate writes the cgroup v1 values of a container created with its
// cgroup: CRI-O has the OCI runtime create the container (and its cgroup,
// with the limit) before NRI PostCreateContainer, so its values hold before
// it starts. containerd creates the cgroup only in CRI StartContainer: at
// PostCreate there is no directory yet, and nothing is written or logged;
// Start writes them. It writes only into the container's own cgroup (from
// its cgroups path), never into a sibling such as CRI-O's conmon cgroup.
// Failures are logged, never fatal.
func (n *Node) PostCreate(c Container) {
	n.mu.Lock()
	defer n.mu.Unlock()
	defer n.saveState()
	if n.fs == nil || n.fs.Version != 1 {
		return
	}
	t, ok := n.containers[c.ID]
	if !ok || t.rel == "" {
		return
	}
	if n.cgroupExists(t) {
		n.writeV1(ctrLog(n.log, c), c.ID, t)
	}
}

// cgroupExists tells whether the container's memory cgroup is there yet
// (containerd makes it at start, CRI-O at creation). Callers hold n.mu.
func (n *Node) cgroupExists(t *tracked) bool {
	fi, err := os.Stat(n.fs.MemoryDir(t.rel))
	return err == nil && fi.IsDir()
}

// Start writes the cgroup v1 values directly: the container's cgroup exists
// from here on (containerd creates the task in CRI StartContainer, CRI-O at
// creation, where PostCreate wrote them already: what holds is not written
// again), and NRI's spec generator drops swappiness and reservation from
// creation adjustments. Failures are logged, never fatal.
func (n *Node) Start(c Container) {
	if !n.waitAncestors(startWait) {
		ctrLog(n.log, c).Warnf("starting before its ancestors' protection was written (waited %v)", startWait)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	defer n.saveState()
	n.noteStarted(c.ID)
	if n.fs == nil || n.fs.Version != 1 {
		return
	}
	if t, ok := n.containers[c.ID]; ok {
		n.writeV1(ctrLog(n.log, c), c.ID, t)
	}
}

// Update re-decides a container for an in-place resize; c.Ctr holds the
// resources asked for. Ancestors are raised now, lowered in PostUpdate,
// after the update landed. A managed container the configuration in force
// can no longer decide keeps its last decision, which the update carries.
func (n *Node) Update(c Container) (*policy.Decision, error) { return n.admit(c, "update") }

// PostUpdate lowers ancestors after a shrink (cgroup v2) and rewrites the
// cgroup v1 values the runtime's update may have reset.
func (n *Node) PostUpdate(c Container) {
	n.mu.Lock()
	defer n.mu.Unlock()
	defer n.saveState()
	t, ok := n.containers[c.ID]
	if !ok {
		return
	}
	l := ctrLog(n.log, c)
	switch n.fs.Version {
	case 1:
		n.writeV1(l, c.ID, t)
	case 2:
		if t.rel != "" {
			n.ancestorsLater(l, cgroupfs.Ancestors(t.rel), protection.Full)
		}
	}
}

// Remove forgets a container (stopped or removed) and withdraws its
// protection from its ancestors.
func (n *Node) Remove(c Container) {
	n.mu.Lock()
	defer n.mu.Unlock()
	defer n.saveState()
	delete(n.containers, c.ID)
	n.noteCount(len(n.containers))
	n.forget(c.ID)
	n.dropRequest(c.ID)
	n.notePromise(c.ID, nil)
	if paths := n.ledger.Remove(c.ID); len(paths) > 0 && n.fs != nil && n.fs.Version == 2 {
		n.ancestorsLater(ctrLog(n.log, c), paths, protection.Full)
	}
}

// Resync rebuilds the core's view from what the runtime lists (after a
// plugin restart, or a reconnection) and returns the values every managed
// container should hold, so a restart or an upgrade applies without
// restarting pods. On cgroup v1 it writes them itself. Containers are
// re-decided oldest first, so the node protection cap keeps serving the
// containers that had protection before.
func (n *Node) Resync(ctrs []Container) ([]Update, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	defer n.saveState()
	if n.cfg == nil {
		return nil, errNotConfigured
	}
	n.probe()
	known := make(map[string]bool, len(ctrs))
	running := make(map[string]bool, len(ctrs))
	active := make([]Container, 0, len(ctrs))
	for _, c := range ctrs {
		known[c.ID] = true
		if !c.Inactive {
			c.Ctr.UnifiedFromKubelet = false
			c.Ctr.Limit = n.limitInForce(c)
			active = append(active, c)
			running[c.ID] = true
		}
	}
	for id := range n.requests {
		if !known[id] {
			n.dropRequest(id)
		}
	}
	// A container that does not run has no cgroup left to clean up; one
	// that runs keeps its entry even when no longer managed (its values
	// stay in its cgroup).
	for id := range n.entries {
		if !running[id] {
			n.forget(id)
		}
	}
	slices.SortStableFunc(active, func(a, b Container) int { return cmp.Compare(a.CreatedAt, b.CreatedAt) })
	decided := n.redecide("synchronize", active)
	updates := make([]Update, 0, len(decided))
	for _, c := range decided {
		t := n.containers[c.ID]
		if n.fs.Version == 1 && t.rel != "" && n.cgroupExists(t) {
			// A created container without its cgroup yet (containerd)
			// gets its values at start.
			n.writeV1(ctrLog(n.log, c), c.ID, t)
		}
		updates = append(updates, Update{ID: c.ID, Decision: t.decision})
	}
	n.log.WithFields(logrus.Fields{"containers": len(ctrs), "managed": len(n.containers)}).Info("synchronized")
	return updates, nil
}

// limitInForce is the container's memory limit: the one its cgroup holds
// when it holds a finite one, else the runtime's. The runtime's view can be
// stale (CRI-O's Synchronize after an update and a restart reports the
// creation-time limit). Callers hold n.mu.
func (n *Node) limitInForce(c Container) int64 {
	rel, err := cgroupfs.RelPath(c.CgroupsPath)
	if err != nil {
		return c.Ctr.Limit
	}
	if limit, err := n.fs.Limit(rel); err == nil && limit > 0 {
		return limit
	}
	return c.Ctr.Limit
}

// redecide decides every container of list from scratch, in list order,
// against a reset ledger: the node cap counts the new promises, not the
// old ones. A container the core already manages that the configuration
// in force no longer decides (its class unknown or not allowed in its
// namespace, no longer opted in, any other refusal) keeps its last
// decision and promise, with one warning: a reload never withdraws the
// protection of a running container, and the container is decided again
// by the next configuration that accepts it. A container the core did not
// manage that fails (logged) or is not opted in is left alone. It returns
// the containers now managed, in order, and brings every ancestor that
// held protection to the new sums. Callers hold n.mu.
func (n *Node) redecide(event string, list []Container) []Container {
	touched := n.ledger.Reset()
	prev := n.containers
	defer func() {
		// Containers no longer managed lose their saved promise.
		for id := range n.promises {
			if _, ok := n.containers[id]; !ok {
				n.notePromise(id, nil)
			}
		}
	}()
	n.containers = make(map[string]*tracked, len(list))
	decided := make([]Container, 0, len(list))
	for _, c := range list {
		l := ctrLog(n.log, c)
		t, err := n.decide(c)
		switch old, managed := prev[c.ID]; {
		case t != nil:
			logDecision(l, event, t.decision)
		case managed:
			why := "no longer opted in"
			if err != nil {
				why = err.Error()
			}
			l.WithField("class", old.decision.Class).Warnf("%s: %s; keeping the container's last decision (class %q) until a configuration decides it again",
				event, why, old.decision.Class)
			t = old
		case err != nil:
			l.Warnf("%s: %v", event, err)
			continue
		default:
			continue
		}
		n.track(c.ID, t)
		kubelet := c.Ctr.Unified
		if !c.Ctr.UnifiedFromKubelet {
			kubelet = n.resyncKubelet(c)
		}
		n.noteUnified(c.ID, t, kubelet)
		touched = append(touched, n.setPromise(c.ID, t)...)
		decided = append(decided, c)
	}
	if n.fs.Version == 2 {
		n.applyAncestors(n.log.WithField("event", event), n.fs, touched, protection.Full)
	}
	return decided
}

// trackedInOrder lists the managed containers as facts, in the order the
// plugin first decided for them. Callers hold n.mu.
func (n *Node) trackedInOrder() []Container {
	order := make([]*tracked, 0, len(n.containers))
	ids := make(map[*tracked]string, len(n.containers))
	for id, t := range n.containers {
		order = append(order, t)
		ids[t] = id
	}
	slices.SortFunc(order, func(a, b *tracked) int { return cmp.Compare(a.seq, b.seq) })
	list := make([]Container, 0, len(order))
	for _, t := range order {
		list = append(list, Container{ID: ids[t], Pod: t.pod, Ctr: t.ctr, CgroupsPath: t.rel})
	}
	return list
}

// decide runs the policy for one container with the node facts in force.
// c.Ctr.UnifiedFromKubelet tells whether its unified map is kubelet's
// request as it stands. Callers hold n.mu.
func (n *Node) decide(c Container) (*tracked, error) {
	t := &tracked{pod: c.Pod.Kept(), ctr: c.Ctr.Kept()}
	t.ctr.Recorded = nil
	if r, ok := n.requests[c.ID]; ok {
		t.ctr.Recorded = &r
	}
	d, err := policy.Decide(n.cfg, t.pod, t.ctr, n.facts(c.ID))
	if err != nil || d == nil {
		return nil, err
	}
	t.decision = d
	n.record(c.ID, d.Request)
	if rel, err := cgroupfs.RelPath(c.CgroupsPath); err == nil {
		t.rel = rel
	}
	return t, nil
}

// facts are the node facts for deciding container id: the memory.min and
// memory.low promised to every other container count towards the node caps.
func (n *Node) facts(id string) policy.Node {
	return policy.Node{MemTotal: n.host.MemTotal, PageSize: n.host.PageSize,
		PromisedMin: n.ledger.TotalMin(id), PromisedLow: n.ledger.TotalLow(id)}
}

// track stores a container's decision, keeping its place in the order.
// Callers hold n.mu.
func (n *Node) track(id string, t *tracked) {
	if old, ok := n.containers[id]; ok {
		t.seq = old.seq
	} else {
		n.nextSeq++
		t.seq = n.nextSeq
	}
	n.containers[id] = t
	n.noteCount(len(n.containers))
}

// writeV1 writes container id's cgroup v1 values, noting them in its entry
// first. Callers hold n.mu.
func (n *Node) writeV1(l *logrus.Entry, id string, t *tracked) {
	if t.rel == "" {
		l.Warn("no cgroups path: cgroup v1 values not written")
		return
	}
	changed, err := n.applyV1(id, t)
	if err != nil {
		l.Warnf("cgroup v1 values: %v", err)
	}
	if len(changed) > 0 {
		l.WithField("files", changed).Info("cgroup v1 values written")
	}
}

// applyV1 notes container id's cgroup v1 values in its entry and writes
// them; it returns the files it changed. Callers hold n.mu.
func (n *Node) applyV1(id string, t *tracked) ([]string, error) {
	v1 := t.decision.V1()
	if t.decision.Swap != nil {
		// memsw is the limit plus swap: take the limit in force, not the
		// one the runtime last told (stale after a runtime restart).
		if limit, err := n.fs.Limit(t.rel); err == nil {
			v1 = t.decision.V1At(limit)
		}
	}
	files := v1.Files()
	n.noteV1(id, t.rel, files)
	return n.fs.ApplyV1(t.rel, files)
}

func ctrLog(log *logrus.Logger, c Container) *logrus.Entry {
	return log.WithFields(logrus.Fields{"namespace": c.Pod.Namespace, "pod": c.Pod.Name, "container": c.Ctr.Name})
}

// logDecision logs a decision and its warnings, then drops the warnings
// from it: they are said once, not kept with the container for its life
// (on a node past its protection cap every container has one).
func logDecision(l *logrus.Entry, event string, d *policy.Decision) {
	defer func() { d.Warnings = nil }()
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
