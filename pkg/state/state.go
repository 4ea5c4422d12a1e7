package state

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Value is one ancestor cgroup file value the plugin wrote, and the
// baseline under it: the value someone else (kubelet) had set, which the
// plugin never lowers the file below. A state saved without baselines
// reads them as 0.
type Value struct {
	Path     string `json:"path"`
	File     string `json:"file"`
	Value    int64  `json:"value"`
	Baseline int64  `json:"baseline,omitempty"`
	// Previous is the value the plugin had written before Value, which the
	// file still holds when the plugin stopped between noting Value and
	// writing it: it is the plugin's too.
	Previous *int64 `json:"previous,omitempty"`
}

// State is the content of the file.
type State struct {
	// Scope names the cgroup mount (root and version) the state belongs to.
	Scope string `json:"scope"`
	// Ancestors are the ancestor values the plugin wrote.
	Ancestors []Value `json:"ancestors,omitempty"`
	// Requests are the memory requests resolved per container ID.
	Requests map[string]int64 `json:"requests,omitempty"`
	// Containers are, per container ID, the files the plugin set in the
	// cgroups of the containers it manages, for `nri-memqos cleanup`.
	Containers map[string]*Container `json:"containers,omitempty"`
	// Promises are, per container ID, the protection promised to it: a
	// short-lived process (the OCI hook) rebuilds the ledger's sums from
	// them, where the NRI plugin has the runtime's listing.
	Promises map[string]Promise `json:"promises,omitempty"`
	// Journal is the first journal generation this snapshot does not
	// include (see Store); 0 in a state saved before journals.
	Journal uint64 `json:"journal,omitempty"`
}

// Promise is the protection promised to one container: memory.min and
// memory.low, and its cgroup (relative to the hierarchy root, as
// cgroupfs.RelPath gives it; "" when unknown), whose ancestors carry the
// sums on cgroup v2.
type Promise struct {
	Path string `json:"path,omitempty"`
	Min  int64  `json:"min,omitempty"`
	Low  int64  `json:"low,omitempty"`
}

// Container is what the plugin set in one container's cgroup, so that
// cleanup can reset it to what the container would hold without the
// plugin. Values are file contents as written: decimal bytes or "max" on
// cgroup v2; decimal on cgroup v1, -1 for unlimited.
type Container struct {
	// Path is the container's cgroup, relative to the hierarchy root as
	// cgroupfs.RelPath gives it.
	Path string `json:"path"`
	// Set is the value the plugin last set, per file: on cgroup v2 the
	// unified keys it put in (memory.min, memory.low, memory.high,
	// memory.swap.max, memory.oom.group), on v1 the files it wrote
	// (memory.soft_limit_in_bytes, memory.swappiness,
	// memory.memsw.limit_in_bytes).
	Set map[string]string `json:"set"`
	// Older is, per file, the value the plugin set before Set's when the
	// file may still hold it (a reload's values reach running containers
	// through the reconciler's drift repair, some seconds later).
	Older map[string]string `json:"older,omitempty"`
	// Restore is, per file, the value to give back instead of the kernel's
	// default: on v2 kubelet's, where kubelet set the key in the
	// container's unified map itself; on v1 the value found before the
	// plugin's first write.
	Restore map[string]string `json:"restore,omitempty"`
}

// v1Unlimited is how cgroup v1 shows an unlimited (-1) limit on 64 KiB
// pages (on 4 KiB pages it shows 9223372036854771712): anything from it up
// reads as unlimited.
const v1Unlimited = math.MaxInt64 &^ (64<<10 - 1)

// V1Value is a cgroup v1 value as Container keeps it: decimal, and every
// unlimited value (-1, or what the kernel shows for it) as -1.
func V1Value(v int64) string {
	if v < 0 || v >= v1Unlimited {
		return "-1"
	}
	return strconv.FormatInt(v, 10)
}

// Scope names a cgroup mount: its root and version, as State.Scope holds
// them.
func Scope(root string, version int) string {
	return fmt.Sprintf("%s v%d", root, version)
}

// ParseScope takes a Scope apart; ok is false for anything Scope does not
// make.
func ParseScope(scope string) (root string, version int, ok bool) {
	i := strings.LastIndex(scope, " v")
	if i <= 0 {
		return "", 0, false
	}
	v, err := strconv.Atoi(scope[i+2:])
	if err != nil || (v != 1 && v != 2) {
		return "", 0, false
	}
	return scope[:i], v, true
}

// Save writes s to path atomically (write to a temporary file, rename) as
// a snapshot of its own: journals beside it are left out (and removed).
func Save(path string, s *State) error {
	gens, _ := journals(path)
	cp := *s
	if len(gens) > 0 {
		cp.Journal = gens[len(gens)-1] + 1
	}
	if _, err := save(path, &cp); err != nil {
		return err
	}
	removeJournalsBefore(path, cp.Journal)
	return nil
}

// save writes s to path atomically and returns the bytes written.
func save(path string, s *State) (int64, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".state-*")
	if err != nil {
		return 0, fmt.Errorf("failed to save state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close() // the write failed already: that is the error to report
		return 0, fmt.Errorf("failed to save state to %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("failed to save state to %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, fmt.Errorf("failed to save state: %w", err)
	}
	return int64(len(data)), nil
}

// Read reads the state saved at path (snapshot and journals) whatever its
// scope. A missing snapshot is an error that errors.Is(err, os.ErrNotExist)
// recognises.
func Read(path string) (*State, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("failed to read state: %w", err)
	}
	s, _, err := replay(path, math.MaxUint64)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Load reads the state saved at path (snapshot and journals) for scope. A
// missing file, or one saved for another scope, gives an empty state; what
// cannot be read is reported, with the state holding the rest.
func Load(path, scope string) (*State, error) {
	s, _, err := replay(path, math.MaxUint64)
	if s.Scope != scope {
		return &State{Scope: scope}, err
	}
	return s, err
}
