package reconcile

import (
	"context"
	"errors"
	"hash/maphash"
	"strconv"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/config"
	"nri-memqos/pkg/policy"
)

// Target is one container the reconciler looks after, as the plugin knows it.
type Target struct {
	ID                        string
	Namespace, Pod, Container string
	Rel                       string // cgroup path relative to the hierarchy root
	Decision                  *policy.Decision
}

// Cgroups is the cgroup I/O the reconciler needs; *cgroupfs.FS implements it.
type Cgroups interface {
	Usage(rel string) (int64, error)
	ReadEvents(rel string) (cgroupfs.Events, error)
	ReadMemoryStats(rel string) (*cgroupfs.MemoryStats, error)
	Reclaim(rel string, bytes int64) error
	Read(rel, file string) (string, error)
	Write(rel, file, value string) (bool, error)
	ApplyV1(rel string, v policy.V1Values) ([]string, error)
}

var _ Cgroups = (*cgroupfs.FS)(nil)

// Meminfo returns node MemAvailable and MemTotal in bytes.
type Meminfo func() (avail, total int64, err error)

// Stats is what the reconciler did for one container, for metrics.
type Stats struct {
	Namespace, Pod, Container, Class string
	// Usage is the last memory usage read.
	Usage int64
	// High is the memory.high in force (0: none), Raised when the guard holds it up.
	High   int64
	Raised bool
	// Reclaimed bytes by reason (measured as the usage drop around each write).
	Reclaimed     map[Reason]int64
	GuardRaises   uint64
	GuardRestores uint64
	DriftRepairs  uint64
	// Events are counted since the reconciler first saw the container. With
	// more than eventsPerTick containers they are read every few ticks (see
	// eventsPeriod), so they may lag by that much.
	Events cgroupfs.Events
}

// A steady tick reads memory.current of every container, and memory.events
// of about eventsPerTick of them, as long as each container's is still read
// at least every maxEventsPeriod ticks: with n containers, each container's
// memory.events is read every eventsPeriod(n) = ceil(n / eventsPerTick)
// ticks, 1 to maxEventsPeriod, at a phase of its own (a hash of its ID) so
// that every tick reads about n / eventsPeriod(n) of them. Reading both files
// of every container costs twice as much: at 1 000 containers this is what
// brings a steady tick to about 1% of a core at a 1 s interval
// (BenchmarkTick). Up to 100 containers every tick reads every memory.events,
// as before; beyond, OOM kills are counted and logged, and the event counters
// move, up to eventsPeriod − 1 ticks late (9 s at the default 1 s interval; a
// change in the number of containers can stretch one wait once). A
// container's first tick always reads them, to take the baseline.
const (
	eventsPerTick   = 100
	maxEventsPeriod = 10
)

func eventsPeriod(n int) uint64 {
	return uint64(min(max((n+eventsPerTick-1)/eventsPerTick, 1), maxEventsPeriod))
}

// state is the reconciler's memory of one container.
type state struct {
	guard         GuardState
	events        cgroupfs.Events
	eventsSeen    bool
	lastProactive time.Time
	driftLogged   map[string]bool
	stats         Stats
	// tick is the last tick whose targets held the container.
	tick uint64
	// phase places the container's memory.events reads among the ticks.
	phase uint64
}

// Reconciler runs the loop. Create it with New; Run until the context ends.
type Reconciler struct {
	cg      Cgroups
	version int
	source  func() []Target
	meminfo Meminfo
	log     *logrus.Logger
	page    int64

	mu         sync.Mutex
	cfg        *config.Config
	states     map[string]*state
	lastDrift  time.Time
	nodeActive bool
	// tick counts the ticks that ran; samples is the tick's reading, its
	// array kept from one tick to the next.
	tick    uint64
	samples []sample
	seed    maphash.Seed // of the containers' phases
}

// New returns a reconciler over the containers source returns.
func New(cg Cgroups, version int, cfg *config.Config, source func() []Target, meminfo Meminfo, log *logrus.Logger, page int64) *Reconciler {
	if page <= 0 {
		page = 4096
	}
	return &Reconciler{cg: cg, version: version, cfg: cfg, source: source, meminfo: meminfo, log: log, page: page,
		states: map[string]*state{}, seed: maphash.MakeSeed()}
}

// SetConfig installs a new configuration; the next tick uses it.
func (r *Reconciler) SetConfig(cfg *config.Config) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cfg = cfg
}

// Run ticks at the configured interval until ctx ends.
func (r *Reconciler) Run(ctx context.Context) {
	interval := r.interval()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r.Tick(now)
			if d := r.interval(); d != interval {
				interval = d
				t.Reset(d)
			}
		}
	}
}

func (r *Reconciler) interval() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cfg == nil || r.cfg.Reconciler.Interval.Duration <= 0 {
		return time.Second
	}
	return r.cfg.Reconciler.Interval.Duration
}

// Stats returns a copy of what the reconciler did, per container ID.
func (r *Reconciler) Stats() map[string]Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]Stats, len(r.states))
	for id, s := range r.states {
		c := s.stats
		c.Reclaimed = make(map[Reason]int64, len(s.stats.Reclaimed))
		for k, v := range s.stats.Reclaimed {
			c.Reclaimed[k] = v
		}
		out[id] = c
	}
	return out
}

// HeldHigh returns the memory.high the guard holds for a container, if it
// holds one above the policy's value.
func (r *Reconciler) HeldHigh(id string) (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.states[id]; ok && s.guard.Raised {
		return s.guard.High, true
	}
	return 0, false
}

// sample is what one tick read of one container.
type sample struct {
	t       Target
	s       *state
	usage   int64
	protect int64
}

// Tick runs one pass over every container.
func (r *Reconciler) Tick(now time.Time) {
	// The source takes the plugin's lock: never call it holding r.mu.
	targets := r.source()
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg := r.cfg
	if cfg == nil || !cfg.Reconciler.Enabled {
		return
	}
	rc := cfg.Reconciler
	maxPerTick, _ := rc.MaxReclaimPerTick.Bytes() // validated with the config

	r.tick++
	samples := r.samples[:0]
	period := eventsPeriod(len(targets))
	for _, t := range targets {
		if t.Decision == nil || t.Rel == "" {
			continue
		}
		s := r.states[t.ID]
		if s == nil {
			s = &state{driftLogged: map[string]bool{}, stats: Stats{Reclaimed: map[Reason]int64{}},
				phase: maphash.String(r.seed, t.ID)}
			r.states[t.ID] = s
		}
		s.tick = r.tick
		s.stats.Namespace, s.stats.Pod, s.stats.Container, s.stats.Class = t.Namespace, t.Pod, t.Container, t.Decision.Class
		usage, err := r.cg.Usage(t.Rel)
		if err != nil {
			r.note(t, "read usage", err)
			continue
		}
		s.stats.Usage = usage
		if !s.eventsSeen || (r.tick+s.phase)%period == 0 {
			r.countEvents(t, s, usage)
		}
		smp := sample{t: t, s: s, usage: usage, protect: max(t.Decision.ProtectedMin(), t.Decision.ProtectedLow())}
		samples = append(samples, smp)
		if r.version != 2 {
			continue
		}
		if rc.Guard.Enabled {
			r.guard(now, smp, rc.Guard)
		} else if s.guard.Raised {
			r.dropGuard(smp)
		}
		high := int64(0)
		if t.Decision.High != nil {
			high = s.guard.High
			if high == 0 {
				high = *t.Decision.High
			}
		}
		s.stats.High, s.stats.Raised = high, s.guard.Raised
		if n := WatermarkReclaim(usage, high, t.Decision.Limit, smp.protect, t.Decision.Reclaim, maxPerTick); n > 0 {
			r.reclaim(smp, n, ReasonWatermark)
		} else if rcl := t.Decision.Reclaim; rcl != nil && rcl.Proactive && now.Sub(s.lastProactive) >= rc.Proactive.Interval.Duration {
			r.proactive(now, smp, rc.Proactive, maxPerTick)
		}
	}
	for id, s := range r.states {
		if s.tick != r.tick {
			delete(r.states, id)
		}
	}
	if r.version == 2 {
		r.nodePressure(samples, rc.NodePressure)
	}
	if now.Sub(r.lastDrift) >= rc.DriftInterval.Duration {
		r.lastDrift = now
		for _, smp := range samples {
			r.repairDrift(smp)
		}
	}
	// Keep the array for the next tick (unless far too large for it), not
	// the targets it points to.
	clear(samples)
	r.samples = samples[:0]
	if cap(samples) > 2*len(samples)+1024 {
		r.samples = nil
	}
}

// note logs a failed step; a vanished cgroup is normal (the container went).
func (r *Reconciler) note(t Target, what string, err error) {
	if cgroupfs.IsGone(err) {
		return
	}
	r.log.WithFields(targetFields(t)).Warnf("reconciler: %s: %v", what, err)
}

func targetFields(t Target) logrus.Fields {
	f := logrus.Fields{"namespace": t.Namespace, "pod": t.Pod, "container": t.Container}
	if t.Decision != nil {
		f["class"] = t.Decision.Class
	}
	return f
}

// countEvents adds new memory events and logs each OOM kill once.
func (r *Reconciler) countEvents(t Target, s *state, usage int64) {
	ev, err := r.cg.ReadEvents(t.Rel)
	if err != nil {
		r.note(t, "read events", err)
		return
	}
	if !s.eventsSeen {
		// Counters from before the reconciler knew the container are history.
		s.events, s.eventsSeen = ev, true
		return
	}
	d := cgroupfs.Events{
		OOMKill: delta(ev.OOMKill, s.events.OOMKill), OOM: delta(ev.OOM, s.events.OOM),
		High: delta(ev.High, s.events.High), Max: delta(ev.Max, s.events.Max),
	}
	s.events = ev
	s.stats.Events.OOMKill += d.OOMKill
	s.stats.Events.OOM += d.OOM
	s.stats.Events.High += d.High
	s.stats.Events.Max += d.Max
	if d.OOMKill > 0 {
		r.log.WithFields(targetFields(t)).WithFields(logrus.Fields{
			"limit": t.Decision.Limit, "usage": usage, "oomKills": d.OOMKill,
		}).Warn("container OOM-killed")
	}
}

func delta(cur, prev uint64) uint64 {
	if cur < prev {
		return cur // counters restarted (a new cgroup under the same path)
	}
	return cur - prev
}

// reclaim asks the kernel for n bytes and records how far usage fell.
func (r *Reconciler) reclaim(smp sample, n int64, why Reason) {
	err := r.cg.Reclaim(smp.t.Rel, n)
	if err != nil && !errors.Is(err, unix.EAGAIN) {
		r.note(smp.t, "reclaim", err)
		return
	}
	// EAGAIN: the kernel reclaimed less than asked; count what it did.
	after, rerr := r.cg.Usage(smp.t.Rel)
	if rerr != nil {
		r.note(smp.t, "read usage", rerr)
		return
	}
	if got := smp.usage - after; got > 0 {
		smp.s.stats.Reclaimed[why] += got
	}
	smp.s.stats.Usage = after
	r.log.WithFields(targetFields(smp.t)).WithFields(logrus.Fields{
		"reason": string(why), "asked": n, "usage": after, "partial": err != nil,
	}).Debug("reclaimed")
}

// guard runs the memory.high livelock guard for one container.
func (r *Reconciler) guard(now time.Time, smp sample, cfg config.Guard) {
	d := smp.t.Decision
	if d.High == nil {
		return
	}
	orig := *d.High
	ceil := d.Limit
	if ceil <= 0 {
		return // no limit: memory.high stays the container's only bound
	}
	g := smp.s.guard
	if g.High == 0 {
		g.High = orig
	}
	// Pressure is read only for containers close to their memory.high.
	if float64(smp.usage) < 0.95*float64(g.High) && !g.Raised {
		smp.s.guard = GuardState{High: orig}
		return
	}
	st, err := r.cg.ReadMemoryStats(smp.t.Rel)
	if err != nil {
		r.note(smp.t, "read memory statistics", err)
		return
	}
	if !st.PSI {
		return
	}
	ng, act := GuardStep(g, orig, ceil, smp.usage, st.FullAvg10, now, cfg, r.page)
	if act != GuardNone {
		if _, err := r.cg.Write(smp.t.Rel, policy.FileHigh, strconv.FormatInt(ng.High, 10)); err != nil {
			r.note(smp.t, "write memory.high", err)
			return
		}
		l := r.log.WithFields(targetFields(smp.t)).WithFields(logrus.Fields{
			"from": g.High, "to": ng.High, "policy": orig, "limit": ceil, "fullAvg10": st.FullAvg10,
		})
		if act == GuardRaise {
			smp.s.stats.GuardRaises++
			l.Warn("memory.high guard: raised a stalled container")
		} else {
			smp.s.stats.GuardRestores++
			l.Info("memory.high guard: restored")
		}
	}
	smp.s.guard = ng
}

// dropGuard gives a raised memory.high back to the policy when the guard is
// turned off.
func (r *Reconciler) dropGuard(smp sample) {
	d := smp.t.Decision
	if d.High != nil {
		if _, err := r.cg.Write(smp.t.Rel, policy.FileHigh, strconv.FormatInt(*d.High, 10)); err != nil {
			r.note(smp.t, "write memory.high", err)
			return
		}
		smp.s.stats.GuardRestores++
		r.log.WithFields(targetFields(smp.t)).WithField("to", *d.High).Info("memory.high guard: off, policy value restored")
	}
	smp.s.guard = GuardState{}
}

// proactive reclaims a small part of an idle container's cold memory.
func (r *Reconciler) proactive(now time.Time, smp sample, cfg config.Proactive, maxPerTick int64) {
	smp.s.lastProactive = now
	st, err := r.cg.ReadMemoryStats(smp.t.Rel)
	if err != nil {
		r.note(smp.t, "read memory statistics", err)
		return
	}
	if !st.PSI {
		return // no pressure signal: no safe way to tell idle from busy
	}
	inactive := int64(st.InactiveFile + st.InactiveAnon)
	if n := ProactiveReclaim(inactive, smp.usage, smp.protect, st.SomeAvg10, cfg, maxPerTick); n > 0 {
		r.reclaim(smp, n, ReasonProactive)
	}
}

// nodePressure reclaims from the lowest priority classes first when the
// node runs short of memory.
func (r *Reconciler) nodePressure(samples []sample, np config.NodePressure) {
	avail, total, err := r.meminfo()
	if err != nil {
		r.log.Warnf("reconciler: %v", err)
		return
	}
	short, need := NodeShort(avail, total, np, r.nodeActive)
	if short != r.nodeActive {
		r.log.WithFields(logrus.Fields{"memAvailable": avail, "memTotal": total}).Infof("node memory pressure: %v", map[bool]string{true: "started", false: "over"}[short])
	}
	r.nodeActive = short
	if !short {
		return
	}
	maxTotal, _ := np.MaxReclaimPerTick.Bytes()
	cands := make([]Candidate, 0, len(samples))
	byID := make(map[string]sample, len(samples))
	for _, smp := range samples {
		prio := 0
		if rc := smp.t.Decision.Reclaim; rc != nil {
			prio = rc.Priority
		}
		cands = append(cands, Candidate{ID: smp.t.ID, Priority: prio, Current: smp.s.stats.Usage, Request: smp.t.Decision.Request, Protected: smp.protect})
		byID[smp.t.ID] = smp
	}
	for _, take := range NodePressurePlan(need, maxTotal, cands) {
		smp := byID[take.ID]
		smp.usage = smp.s.stats.Usage
		r.reclaim(smp, take.Bytes, ReasonNodePressure)
	}
}

// repairDrift writes back values the plugin set that someone else changed,
// except a memory.high the guard holds up on purpose.
func (r *Reconciler) repairDrift(smp sample) {
	d := smp.t.Decision
	// The logger is made only to log: most checks find nothing.
	l := func() *logrus.Entry { return r.log.WithFields(targetFields(smp.t)) }
	if r.version == 1 {
		changed, err := r.cg.ApplyV1(smp.t.Rel, d.V1())
		if err != nil {
			r.note(smp.t, "repair drift", err)
		}
		for _, f := range changed {
			smp.s.stats.DriftRepairs++
			if !smp.s.driftLogged[f] {
				smp.s.driftLogged[f] = true
				l().WithField("file", f).Warn("drift repaired: a value the plugin set was changed; further repairs of it are not logged")
			}
		}
		return
	}
	want := d.UnifiedV2()
	if smp.s.guard.Raised {
		want[policy.FileHigh] = strconv.FormatInt(smp.s.guard.High, 10)
	}
	for file, v := range want {
		cur, err := r.cg.Read(smp.t.Rel, file)
		if err != nil {
			// A file the kernel lacks (memory.swap.max without swap
			// accounting) must not stop the others.
			r.note(smp.t, "repair drift", err)
			continue
		}
		if cur == v {
			continue
		}
		if _, err := r.cg.Write(smp.t.Rel, file, v); err != nil {
			r.note(smp.t, "repair drift", err)
			continue
		}
		smp.s.stats.DriftRepairs++
		if !smp.s.driftLogged[file] {
			smp.s.driftLogged[file] = true
			l().WithFields(logrus.Fields{"file": file, "found": cur, "restored": v}).Warn("drift repaired: a value the plugin set was changed; further repairs of it are not logged")
		}
	}
}
