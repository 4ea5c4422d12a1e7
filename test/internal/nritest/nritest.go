// Package nritest is the runtime side of NRI for tests: NRI's real
// adaptation (github.com/containerd/nri/pkg/adaptation) on a socket of the
// test's own, and a fake store of the pods and containers the runtime knows,
// which the adaptation hands to plugins when they synchronize. The tests
// relay pod and container events to the adaptation themselves and record
// their outcome in the store.
package nritest

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	"google.golang.org/protobuf/proto"
)

// Paths are where one runtime has its NRI socket and the binaries and
// configuration files of its pre-registered plugins.
type Paths struct {
	Socket, PluginDir, ConfDir string
}

// Layout makes dir/plugins and dir/conf.d and returns them with the socket
// dir/nri.sock. Unix socket paths are limited to about 108 bytes: keep dir
// short.
func Layout(dir string) (Paths, error) {
	p := Paths{
		Socket:    filepath.Join(dir, "nri.sock"),
		PluginDir: filepath.Join(dir, "plugins"),
		ConfDir:   filepath.Join(dir, "conf.d"),
	}
	for _, d := range []string{p.PluginDir, p.ConfDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return Paths{}, err
		}
	}
	return p, nil
}

// Store is the runtime's view of its pods and containers; it outlives
// adaptation restarts, as the runtime's own state outlives the loss of a
// plugin connection. It keeps the objects it is given: callers that go on
// changing theirs pass a copy.
type Store struct {
	mu      sync.Mutex
	pods    map[string]*api.PodSandbox
	ctrs    map[string]*api.Container
	created int64
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{pods: map[string]*api.PodSandbox{}, ctrs: map[string]*api.Container{}}
}

// Snapshot returns copies of the pods and containers, oldest container
// first, as a synchronization hands them to plugins.
func (s *Store) Snapshot() ([]*api.PodSandbox, []*api.Container) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var pods []*api.PodSandbox
	for _, p := range s.pods {
		pods = append(pods, proto.Clone(p).(*api.PodSandbox))
	}
	var ctrs []*api.Container
	for _, c := range s.ctrs {
		ctrs = append(ctrs, proto.Clone(c).(*api.Container))
	}
	slices.SortFunc(ctrs, func(a, b *api.Container) int { return cmp.Compare(a.CreatedAt, b.CreatedAt) })
	return pods, ctrs
}

// AddPod records a pod sandbox the runtime started.
func (s *Store) AddPod(pod *api.PodSandbox) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pods[pod.Id] = pod
}

// AddCreated records a container the runtime created: its state becomes
// CREATED and its CreatedAt the next number in creation order.
func (s *Store) AddCreated(c *api.Container) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.created++
	c.CreatedAt, c.State = s.created, api.ContainerState_CONTAINER_CREATED
	s.ctrs[c.Id] = c
}

// Lookup returns copies of a container and its pod.
func (s *Store) Lookup(id string) (*api.PodSandbox, *api.Container, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.ctrs[id]
	if !ok {
		return nil, nil, false
	}
	return proto.Clone(s.pods[c.PodSandboxId]).(*api.PodSandbox), proto.Clone(c).(*api.Container), true
}

// SetState records a container's new state.
func (s *Store) SetState(id string, state api.ContainerState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctrs[id].State = state
}

// ApplyUpdate records a container update the runtime carried out (its
// unified map and memory limit); false when the container is unknown.
func (s *Store) ApplyUpdate(u *api.ContainerUpdate) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.ctrs[u.GetContainerId()]
	if ok {
		applyResources(c, u.GetLinux().GetResources())
	}
	return ok
}

// RemoveContainer forgets a container.
func (s *Store) RemoveContainer(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.ctrs, id)
}

// RemovePod forgets a pod and every container of it.
func (s *Store) RemovePod(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for cid, c := range s.ctrs {
		if c.GetPodSandboxId() == id {
			delete(s.ctrs, cid)
		}
	}
	delete(s.pods, id)
}

// Adjust applies a CreateContainer adjustment to the runtime's view of c:
// the annotations it adds, its unified keys and its memory limit.
func Adjust(c *api.Container, adj *api.ContainerAdjustment) {
	for k, v := range adj.GetAnnotations() {
		if _, marked := api.IsMarkedForRemoval(k); marked {
			continue
		}
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[k] = v
	}
	applyResources(c, adj.GetLinux().GetResources())
}

// applyResources merges the unified keys and the memory limit of res into c.
func applyResources(c *api.Container, res *api.LinuxResources) {
	if u := res.GetUnified(); len(u) > 0 {
		if c.Linux.Resources.Unified == nil {
			c.Linux.Resources.Unified = map[string]string{}
		}
		maps.Copy(c.Linux.Resources.Unified, u)
	}
	if l := res.GetMemory().GetLimit(); l != nil {
		if c.Linux.Resources.Memory == nil {
			c.Linux.Resources.Memory = &api.LinuxMemory{}
		}
		c.Linux.Resources.Memory.Limit = api.Int64(l.GetValue())
	}
}

// SyncEvent is one call of the runtime's synchronization callback: how many
// pods and containers it handed the plugins and what they returned.
type SyncEvent struct {
	Pods, Ctrs int
	Updates    []*api.ContainerUpdate
	Err        error
}

// Runtime is one started adaptation: one lifetime of the runtime process.
type Runtime struct {
	*adaptation.Adaptation
	Store *Store

	calls atomic.Int32
	// pre receives the synchronization Start makes for pre-registered
	// plugins, syncs those of external plugins.
	pre   chan SyncEvent
	syncs chan SyncEvent
}

// Start creates and starts an adaptation that presents itself as containerd
// v2.1.0 on paths; its synchronizations hand plugins the store's pods and
// containers, and it carries out no unsolicited container update.
func Start(paths Paths, store *Store) (*Runtime, error) {
	r := &Runtime{Store: store, pre: make(chan SyncEvent, 1), syncs: make(chan SyncEvent, 64)}
	syncFn := func(ctx context.Context, cb adaptation.SyncCB) error {
		pods, ctrs := store.Snapshot()
		updates, err := cb(ctx, pods, ctrs)
		ev := SyncEvent{Pods: len(pods), Ctrs: len(ctrs), Updates: updates, Err: err}
		// Start() calls syncFn exactly once, for the pre-registered
		// plugins, before it listens for external ones.
		if r.calls.Add(1) == 1 {
			r.pre <- ev
		} else {
			select {
			case r.syncs <- ev:
			default: // nobody waits for so many: Syncs still counts it
			}
		}
		return err
	}
	updateFn := func(context.Context, []*api.ContainerUpdate) ([]*api.ContainerUpdate, error) { return nil, nil }
	a, err := adaptation.New("containerd", "v2.1.0", syncFn, updateFn,
		adaptation.WithSocketPath(paths.Socket),
		adaptation.WithPluginPath(paths.PluginDir),
		adaptation.WithPluginConfigPath(paths.ConfDir),
	)
	if err != nil {
		return nil, err
	}
	if err := a.Start(); err != nil {
		return nil, err
	}
	r.Adaptation = a
	return r, nil
}

// RunPod relays RunPodSandbox and records the pod in the store.
func (r *Runtime) RunPod(ctx context.Context, pod *api.PodSandbox) error {
	if err := r.RunPodSandbox(ctx, &adaptation.RunPodSandboxRequest{Pod: pod}); err != nil {
		return err
	}
	r.Store.AddPod(pod)
	return nil
}

// PreSync returns the synchronization Start made for the pre-registered
// plugins; false when there was none.
func (r *Runtime) PreSync() (SyncEvent, bool) {
	select {
	case ev := <-r.pre:
		return ev, true
	default:
		return SyncEvent{}, false
	}
}

// Syncs counts the synchronizations of external plugins so far.
func (r *Runtime) Syncs() int { return max(0, int(r.calls.Load())-1) }

var (
	// ErrExited is WaitSync's error when the plugin exited first.
	ErrExited = errors.New("plugin exited before synchronizing")
	// ErrTimeout is WaitSync's error when no plugin synchronized in time.
	ErrTimeout = errors.New("no plugin synchronized in time")
)

// WaitSync waits for the next synchronization of an external plugin and,
// when it succeeded, until the adaptation registered the plugin. It gives
// up with ErrExited when exited (the plugin process's end; nil: none)
// closes first, with ErrTimeout after timeout.
func (r *Runtime) WaitSync(exited <-chan struct{}, timeout time.Duration) (SyncEvent, error) {
	select {
	case ev := <-r.syncs:
		if ev.Err == nil {
			// The adaptation registers the plugin after syncFn returns,
			// holding the plugin-sync lock meanwhile: wait for it.
			r.BlockPluginSync().Unblock()
		}
		return ev, nil
	case <-exited:
		return SyncEvent{}, ErrExited
	case <-time.After(timeout):
		return SyncEvent{}, ErrTimeout
	}
}
