package node

import (
	"maps"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/policy"
	"nri-memqos/pkg/state"
)

// Container entries: per managed container, its cgroup path, the value the
// plugin last set in each file it sets, and the value to give back instead
// of the kernel's default (state.Container). `nri-memqos cleanup` resets the
// container from them. Only containers the plugin set a file in have one;
// a container's entry goes with the container (Remove), or when a
// Synchronize does not list it running.

// entry is a container's entry as the core keeps it: state.Container's
// values per file as short lists, not maps. A container has at most five
// files the plugin sets: a map of them was some 300 bytes each (three per
// container), the lists are a few dozen.
type entry struct {
	path                string
	set, older, restore fileValues
}

// fileValues are values per cgroup file, in the order first set.
type fileValues []fileValue

type fileValue struct{ file, value string }

// get returns file's value.
func (v fileValues) get(file string) (string, bool) {
	for _, fv := range v {
		if fv.file == file {
			return fv.value, true
		}
	}
	return "", false
}

// put sets file's value.
func (v *fileValues) put(file, value string) {
	for i := range *v {
		if (*v)[i].file == file {
			(*v)[i].value = value
			return
		}
	}
	if *v == nil {
		*v = make(fileValues, 0, 2)
	}
	*v = append(*v, fileValue{file, value})
}

// toMap is the values as state.Container keeps them, nil for none.
func (v fileValues) toMap() map[string]string {
	if len(v) == 0 {
		return nil
	}
	m := make(map[string]string, len(v))
	for _, fv := range v {
		m[fv.file] = fv.value
	}
	return m
}

// valuesOf is the values of a state.Container map.
func valuesOf(m map[string]string) fileValues {
	if len(m) == 0 {
		return nil
	}
	v := make(fileValues, 0, len(m))
	for file, value := range m {
		v = append(v, fileValue{file, value})
	}
	return v
}

// record is the entry as the state saves it.
func (e *entry) record() *state.Container {
	set := e.set.toMap()
	if set == nil {
		set = map[string]string{}
	}
	return &state.Container{Path: e.path, Set: set, Older: e.older.toMap(), Restore: e.restore.toMap()}
}

// entryOf is a saved entry as the core keeps it.
func entryOf(c *state.Container) *entry {
	return &entry{path: c.Path, set: valuesOf(c.Set), older: valuesOf(c.Older), restore: valuesOf(c.Restore)}
}

// entry returns the entry of container id, made for cgroup rel when there
// is none. Callers hold n.mu.
func (n *Node) entry(id, rel string) *entry {
	if n.entries == nil {
		n.entries = map[string]*entry{}
	}
	e := n.entries[id]
	if e == nil {
		e = &entry{path: rel}
		n.entries[id] = e
		n.entryChanged(id)
	}
	if e.path != rel {
		e.path = rel
		n.entryChanged(id)
	}
	return e
}

// forget drops the entry of container id. Callers hold n.mu.
func (n *Node) forget(id string) {
	if _, ok := n.entries[id]; ok {
		delete(n.entries, id)
		n.entryChanged(id)
	}
}

// noteSet records that the plugin sets file to value in container id's
// cgroup: the previous value of the plugin's, if another, stays
// recognisable as the plugin's (older). Callers hold n.mu.
func (n *Node) noteSet(id string, e *entry, file, value string) {
	old, ok := e.set.get(file)
	if ok && old == value {
		return
	}
	if ok {
		e.older.put(file, old)
	}
	e.set.put(file, value)
	n.entryChanged(id)
}

// noteRestore records the value file gets back at cleanup. Callers hold
// n.mu.
func (n *Node) noteRestore(id string, e *entry, file, value string) {
	if old, ok := e.restore.get(file); ok && old == value {
		return
	}
	e.restore.put(file, value)
	n.entryChanged(id)
}

// noteUnified records the unified keys the plugin puts into container id's
// unified map (cgroup v2): those of its decision the kernel offers. kubelet
// is the unified map kubelet asked for (at creation, at an in-place
// resize), nil when unknown: its value of a key the plugin overrides is
// what cleanup restores. Callers hold n.mu.
func (n *Node) noteUnified(id string, t *tracked, kubelet map[string]string) {
	if n.fs == nil || n.fs.Version != 2 || t.rel == "" {
		return
	}
	set := t.decision.UnifiedV2()
	maps.DeleteFunc(set, func(k, _ string) bool { return n.unsupported[k] })
	if len(set) == 0 && n.entries[id] == nil {
		return
	}
	e := n.entry(id, t.rel)
	for file, v := range set {
		n.noteSet(id, e, file, v)
		if kv, ok := kubelet[file]; ok {
			n.noteRestore(id, e, file, kv)
		}
	}
}

// resyncKubelet is the unified map of a container listed by Synchronize
// when it is kubelet's own: a container created without the plugin (no
// resolved-request annotation) the plugin has no entry for yet. A container
// created with the plugin lists the plugin's values next to kubelet's: its
// entry (state file) tells them apart, and without one nothing does. Callers
// hold n.mu.
func (n *Node) resyncKubelet(c Container) map[string]string {
	if _, ok := n.entries[c.ID]; ok {
		return nil
	}
	if _, ok := c.Ctr.Annotations[policy.AnnotationRecordedRequest]; ok {
		return nil
	}
	return c.Ctr.Unified
}

// noteV1 records the cgroup v1 values the plugin is about to write into
// container id's cgroup, and what each file holds before: a value that is
// not the plugin's (the kernel's or kubelet's before the first write, or
// the runtime's after an update reset it) is what cleanup restores. A file
// that already holds the value the plugin writes, with no entry for it,
// was written by an earlier process of the plugin whose state is lost (or
// holds it by chance): its restore value stays unknown, the kernel default.
// One read per file and event (Start, PostUpdate, Synchronize). Callers
// hold n.mu.
func (n *Node) noteV1(id, rel string, values map[string]int64) {
	var e *entry
	for _, file := range []string{cgroupfs.V1SoftLimit, cgroupfs.V1Swappiness, cgroupfs.V1MemSwLimit} {
		v, ok := values[file]
		if !ok {
			continue
		}
		cur, err := n.fs.ReadInt(rel, file)
		if err != nil {
			// Gone, or no memsw without swap accounting: the plugin
			// writes nothing there either.
			continue
		}
		if e == nil {
			e = n.entry(id, rel)
		}
		want, found := state.V1Value(v), state.V1Value(cur)
		prev, known := e.set.get(file)
		older, _ := e.older.get(file)
		ours := known && (found == prev || found == older)
		switch {
		case ours:
		case !known && found == want:
		default:
			n.noteRestore(id, e, file, found)
		}
		n.noteSet(id, e, file, want)
	}
}
