package reconcile

import (
	"context"
	"hash/maphash"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/config"
	"nri-memqos/pkg/health"
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
	ReclaimFile(rel string, bytes int64) (fileOnly bool, err error)
	ReadSignals(rel string) (cgroupfs.Signals, error)
	Read(rel, file string) (string, error)
	Write(rel, file, value string) (bool, error)
	ApplyV1(rel string, values map[string]int64) ([]string, error)
	Limit(rel string) (int64, error)
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
	// TierThrottles counts the steps priority-aware reclaim lowered the
	// container's memory.high by.
	TierThrottles uint64
	// Pressure (memory.pressure "some", percent of the time), Refaults and
	// Steal (pages per second) of a container that asks for priority-aware
	// reclaim, over its last window of at least a second.
	Pressure, Refaults, Steal float64
	// Events are counted since the reconciler first saw the container. With
	// more than eventsPerTick containers they are read every few ticks (see
	// eventsPeriod), so they may lag by that much.
	Events cgroupfs.Events
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
	// reclaiming is set while a memory.reclaim write that outlived its
	// deadline is still in the kernel; no other is issued until it returns.
	reclaiming    atomic.Bool
	reclaimLogged bool
	// target is the container as the last tick saw it.
	target Target
	// tier is what priority-aware reclaim keeps of the container, made
	// the first time the tiers read it: nil for the many they never
	// touch (some 280 bytes each).
	tier *tierMemory
}

// tierMemory is what priority-aware reclaim keeps of one container:
// signalBase and rates are a protected container's last signal reading
// and the rates since the one before; victim is the last reading of a
// lower-priority container; throttle the memory.high it holds (High 0:
// none).
type tierMemory struct {
	signalBase tierReading
	rates      tierRates
	victim     cgroupfs.Signals
	throttle   Throttle
}

// tierMem is the container's tierMemory, made on first use.
func (s *state) tierMem() *tierMemory {
	if s.tier == nil {
		s.tier = &tierMemory{}
	}
	return s.tier
}

// throttle is the throttle the tiers hold (zero: none).
func (s *state) throttle() Throttle {
	if s.tier == nil {
		return Throttle{}
	}
	return s.tier.throttle
}

// throttleHigh is the memory.high the tiers hold, 0 for none.
func (s *state) throttleHigh() int64 { return s.throttle().High }

// setThrottle records a throttle; releasing one never held makes nothing.
func (s *state) setThrottle(th Throttle) {
	if s.tier == nil && th == (Throttle{}) {
		return
	}
	s.tierMem().throttle = th
}

// Reconciler runs the loop. Create it with New; Run until the context ends.
type Reconciler struct {
	cg      Cgroups
	version int
	source  func() []Target
	meminfo Meminfo
	log     *logrus.Logger
	page    int64

	// cfg is swapped whole, without a lock: installing a configuration never
	// waits for a tick's cgroup I/O.
	cfg atomic.Pointer[config.Config]

	// mu is held through a tick: Stats and HeldHigh wait for it, nothing
	// on the NRI event path does.
	mu         sync.Mutex
	states     map[string]*state
	statesPeak int // the most states since the map was last made anew
	lastDrift  time.Time
	nodeActive bool
	// tick counts the ticks that ran; samples is the tick's reading, its
	// array kept from one tick to the next.
	tick    uint64
	samples []sample
	seed    maphash.Seed // of the containers' phases
	// chunk is the most one memory.reclaim write asks for.
	chunk int64
	// skip are the cgroup v2 files the kernel does not offer: drift repair
	// leaves them alone.
	skip atomic.Pointer[map[string]bool]
	// inflight are the ticks in progress, for the liveness check; read
	// without r.mu.
	inflight health.InFlight
	// tierState is priority-aware reclaim's; tierSigs and victims keep
	// their arrays from one tick to the next.
	tierState TierState
	tierSigs  []TierSignal
	victims   []sample
	// nodePSI reads /proc/pressure/memory (nil: not read); nodePSIPrev
	// is its last reading, at nodePSIAt, and nodePSIShare the share of
	// the window that ended there.
	nodePSI       func() (cgroupfs.PSI, error)
	nodePSIPrev   cgroupfs.PSI
	nodePSIAt     time.Time
	nodePSIShare  float64
	nodePSILogged bool
}

// New returns a reconciler over the containers source returns.
func New(cg Cgroups, version int, cfg *config.Config, source func() []Target, meminfo Meminfo, log *logrus.Logger, page int64) *Reconciler {
	if page <= 0 {
		page = 4096
	}
	r := &Reconciler{cg: cg, version: version, source: source, meminfo: meminfo, log: log, page: page,
		states: map[string]*state{}, seed: maphash.MakeSeed(), chunk: reclaimChunk}
	r.cfg.Store(cfg)
	return r
}

// SkipFiles tells the reconciler which cgroup v2 files the kernel does not
// offer (cgroupfs.FS.ProbeUnified): drift repair does not write them.
func (r *Reconciler) SkipFiles(files []string) {
	m := make(map[string]bool, len(files))
	for _, f := range files {
		m[f] = true
	}
	r.skip.Store(&m)
}

// SetNodePSI sets the reader of the node's memory pressure
// (/proc/pressure/memory) for node-pressure reclaim; call it before Run.
func (r *Reconciler) SetNodePSI(read func() (cgroupfs.PSI, error)) { r.nodePSI = read }

// SetConfig installs a new configuration; the next tick uses it. It never
// waits for a tick in progress.
func (r *Reconciler) SetConfig(cfg *config.Config) { r.cfg.Store(cfg) }

// Run ticks at the configured interval until ctx ends.
func (r *Reconciler) Run(ctx context.Context) {
	interval := r.interval()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			r.Release()
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
	cfg := r.cfg.Load()
	if cfg == nil || cfg.Reconciler.Interval.Duration <= 0 {
		return time.Second
	}
	return cfg.Reconciler.Interval.Duration
}

// Stats returns a copy of what the reconciler did, per container ID.
func (r *Reconciler) Stats() map[string]Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]Stats, len(r.states))
	for id, s := range r.states {
		c := s.stats
		c.Reclaimed = maps.Clone(s.stats.Reclaimed) // nil for the many never reclaimed from
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
	defer r.endTick(r.beginTick())
	// The source takes the plugin's lock: never call it holding r.mu.
	targets := r.source()
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg := r.cfg.Load()
	if cfg == nil || !cfg.Reconciler.Enabled {
		return
	}
	rc := cfg.Reconciler
	maxPerTick := rc.MaxReclaimPerTick.Bytes()

	r.tick++
	samples := r.samples[:0]
	period := eventsPeriod(len(targets))
	for _, t := range targets {
		if t.Decision == nil || t.Rel == "" {
			continue
		}
		s := r.states[t.ID]
		if s == nil {
			s = &state{phase: maphash.String(r.seed, t.ID)}
			r.states[t.ID] = s
		}
		s.tick = r.tick
		s.target = t
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
		switch {
		case s.throttleHigh() > 0:
			// Priority-aware reclaim holds memory.high and lifts it
			// itself when the container stalls.
		case rc.Guard.Enabled:
			r.guard(now, smp, rc.Guard)
		case s.guard.Raised:
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
		if s.throttleHigh() > 0 {
			s.stats.High = s.throttleHigh()
		}
		// Watermarks stay those of the policy's memory.high: a throttle
		// already makes the kernel reclaim at its own.
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
	// A Go map keeps its size after deletions: after a mass removal, a
	// new one, sized for what is left.
	r.statesPeak = max(r.statesPeak, len(r.states))
	if r.statesPeak >= 512 && len(r.states)*4 < r.statesPeak {
		// Collected anew, not cloned: maps.Clone keeps the capacity.
		r.states, r.statesPeak = maps.Collect(maps.All(r.states)), len(r.states)
	}
	if r.version == 2 {
		r.tiers(now, samples, rc)
		r.nodePressure(now, samples, rc.NodePressure)
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
