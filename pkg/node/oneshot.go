package node

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/policy"
)

// A short-lived process (the OCI hook, Options.OneShot) runs one event
// against the state file and exits: CreateNow and RemoveNow do everything
// before they return, where the NRI plugin hands its values to the runtime
// and leaves ancestor writes to its writer.

// CreateNow decides a new container as Create does, raises its ancestors
// (cgroup v2), and writes the container's own values into its cgroup, which
// exists already: an OCI createRuntime or prestart hook runs after the
// runtime made the cgroup and set the config.json's resources, before the
// container's process runs. It returns the decision (nil: not opted in). If
// the values cannot be written, the promise is withdrawn again and the
// error returned: the runtime fails the start.
func (n *Node) CreateNow(c Container) (*policy.Decision, error) {
	d, err := n.Create(c)
	if err != nil || d == nil {
		return d, err
	}
	if err := n.writeNow(c); err != nil {
		n.RemoveNow(c)
		return nil, err
	}
	return d, nil
}

// writeNow writes container c's values into its cgroup: the limit first
// when the class sets one, then the rest (cgroup v2: the decision's unified
// keys the kernel offers; v1: soft limit, swappiness, memsw limit).
func (n *Node) writeNow(c Container) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	defer n.saveState()
	t := n.containers[c.ID]
	if t == nil {
		return nil
	}
	if t.rel == "" {
		return errors.New("the container's config.json has no linux.cgroupsPath: its memory QoS cannot be written")
	}
	if !n.cgroupExists(t) {
		return fmt.Errorf("cgroup %s does not exist: run the hook at createRuntime or prestart, after the runtime made it", n.fs.MemoryDir(t.rel))
	}
	l := ctrLog(n.log, c)
	d := t.decision
	if d.SetLimit > 0 {
		file := cgroupfs.FileMax
		if n.fs.Version == 1 {
			file = cgroupfs.V1Limit
		}
		if _, err := n.fs.Write(t.rel, file, strconv.FormatInt(d.SetLimit, 10)); err != nil {
			return err
		}
	}
	if n.fs.Version == 1 {
		_, err := n.applyV1(c.ID, t)
		return err
	}
	u := n.offered(d) // noted in the container's entry by Create
	var errs []error
	for _, file := range slices.Sorted(maps.Keys(u)) {
		if _, err := n.fs.Write(t.rel, file, u[file]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	l.WithField("values", u).Debug("cgroup values written")
	return nil
}

// RemoveNow withdraws a container's protection from its ancestors at once
// (an OCI poststop hook) and forgets it.
func (n *Node) RemoveNow(c Container) { n.Remove(c) }
