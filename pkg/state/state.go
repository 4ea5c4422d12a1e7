package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
}

// State is the content of the file.
type State struct {
	// Scope names the cgroup mount (root and version) the state belongs to.
	Scope string `json:"scope"`
	// Ancestors are the ancestor values the plugin wrote.
	Ancestors []Value `json:"ancestors,omitempty"`
	// Requests are the memory requests resolved per container ID.
	Requests map[string]int64 `json:"requests,omitempty"`
}

// Save writes s to path atomically (write to a temporary file, rename).
func Save(path string, s *State) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".state-*")
	if err != nil {
		return fmt.Errorf("failed to save state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close() // the write failed already: that is the error to report
		return fmt.Errorf("failed to save state to %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("failed to save state to %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("failed to save state: %w", err)
	}
	return nil
}

// Load reads the state saved at path for scope. A missing file, or one
// saved for another scope, gives an empty state.
func Load(path, scope string) (*State, error) {
	empty := &State{Scope: scope}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return empty, nil
	}
	if err != nil {
		return empty, fmt.Errorf("failed to load state: %w", err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return empty, fmt.Errorf("failed to load state from %s: %w", path, err)
	}
	if s.Scope != scope {
		return empty, nil
	}
	return &s, nil
}
