// Package cleanup withdraws what the plugin set on a node, from its state
// file: every ancestor memory.min/memory.low it raised goes back to its
// baseline, every container file it set goes back to what the container
// would hold without the plugin. A file someone else changed since the
// plugin wrote it is theirs and stays. `nri-memqos cleanup` runs it once the
// plugin is gone for good (uninstall); a restart or an upgrade must not.
package cleanup

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/state"
)

// Defaults are what each file the plugin sets holds without it: the kernel's
// value in a new cgroup, where neither kubelet nor the runtime set the file
// (v2: kubelet's own unified keys are recorded in the state and given back
// instead; v1: the value found before the plugin's first write is).
var (
	DefaultsV2 = map[string]string{
		cgroupfs.FileMin:      "0",
		cgroupfs.FileLow:      "0",
		cgroupfs.FileHigh:     "max",
		cgroupfs.FileSwapMax:  "max",
		cgroupfs.FileOOMGroup: "0",
	}
	DefaultsV1 = map[string]string{
		cgroupfs.V1SoftLimit:  "-1",
		cgroupfs.V1Swappiness: "60",
		cgroupfs.V1MemSwLimit: "-1",
	}
)

// ancestorFiles are the ancestor files the plugin writes.
var ancestorFiles = []string{cgroupfs.FileMin, cgroupfs.FileLow}

// Files is the cgroup I/O cleanup needs; *cgroupfs.FS implements it.
type Files interface {
	Read(rel, file string) (string, error)
	ReadInt(rel, file string) (int64, error)
	Write(rel, file, value string) (bool, error)
	// Exists tells whether rel has file; file "" asks for rel itself.
	Exists(rel, file string) bool
}

var _ Files = (*cgroupfs.FS)(nil)

// Outcome is what became of one file.
type Outcome string

// Outcomes, as the report names them.
const (
	// Reset: the file held the plugin's value and was given back its own.
	Reset Outcome = "reset"
	// Unchanged: the file held the plugin's value, which is also what it
	// gets back.
	Unchanged Outcome = "unchanged"
	// Kept: someone else changed the file since the plugin wrote it.
	Kept Outcome = "kept"
	// Gone: the cgroup no longer exists.
	Gone Outcome = "gone"
	// Failed: reading or writing the file failed.
	Failed Outcome = "FAILED"
)

// Summary counts the outcomes.
type Summary struct {
	Reset, Unchanged, Kept, Gone, Failed int
}

func (s *Summary) add(o Outcome) {
	switch o {
	case Reset:
		s.Reset++
	case Unchanged:
		s.Unchanged++
	case Kept:
		s.Kept++
	case Gone:
		s.Gone++
	case Failed:
		s.Failed++
	}
}

// Validate checks a state before anything is written: the version is
// known, every path is a clean absolute cgroup path below the root and
// every file one the plugin sets.
func Validate(st *state.State, version int) error {
	defaults := DefaultsV2
	switch version {
	case 1:
		defaults = DefaultsV1
	case 2:
	default:
		return fmt.Errorf("cgroup version %d; allowed: 1, 2", version)
	}
	var errs []error
	for _, v := range st.Ancestors {
		if err := checkPath(v.Path); err != nil {
			errs = append(errs, fmt.Errorf("ancestor %w", err))
		}
		if !slices.Contains(ancestorFiles, v.File) {
			errs = append(errs, fmt.Errorf("ancestor %s: %q is not a file the plugin writes there; allowed: %s", v.Path, v.File, strings.Join(ancestorFiles, ", ")))
		}
	}
	for id, c := range st.Containers {
		if c == nil {
			errs = append(errs, fmt.Errorf("container %s: no entry", id))
			continue
		}
		if err := checkPath(c.Path); err != nil {
			errs = append(errs, fmt.Errorf("container %s: %w", id, err))
		}
		for file := range c.Set {
			if _, ok := defaults[file]; !ok {
				errs = append(errs, fmt.Errorf("container %s: %q is not a file the plugin sets on cgroup v%d; allowed: %s",
					id, file, version, strings.Join(slices.Sorted(maps.Keys(defaults)), ", ")))
			}
		}
	}
	return errors.Join(errs...)
}

func checkPath(p string) error {
	if p == "" || p[0] != '/' || p == "/" || path.Clean(p) != p || slices.Contains(strings.Split(p, "/"), "..") {
		return fmt.Errorf("path %q: want a clean absolute cgroup path below the root", p)
	}
	return nil
}

// Options tune Run.
type Options struct {
	// DryRun writes nothing and reports what would be written.
	DryRun bool
	// Out receives one line per file, nil discards them.
	Out io.Writer
}

// Run resets every container file and ancestor value of st on fs (cgroup
// version version), containers first, then ancestors innermost first,
// printing one line per file to o.Out. Validate st first.
func Run(fs Files, version int, st *state.State, o Options) Summary {
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	r := &run{fs: fs, version: version, dry: o.DryRun, out: out}
	ids := make([]string, 0, len(st.Containers))
	for id, c := range st.Containers {
		if c != nil {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int {
		return cmp.Or(strings.Compare(st.Containers[a].Path, st.Containers[b].Path), strings.Compare(a, b))
	})
	for _, id := range ids {
		r.container(id, st.Containers[id])
	}
	anc := slices.Clone(st.Ancestors)
	slices.SortStableFunc(anc, func(a, b state.Value) int {
		return cmp.Or(-cmp.Compare(strings.Count(a.Path, "/"), strings.Count(b.Path, "/")),
			strings.Compare(a.Path, b.Path), strings.Compare(a.File, b.File))
	})
	for _, v := range anc {
		r.ancestor(v)
	}
	return r.sum
}

type run struct {
	fs      Files
	version int
	dry     bool
	out     io.Writer
	sum     Summary
}

func (r *run) line(o Outcome, what, file, text string) {
	r.sum.add(o)
	label := string(o)
	if r.dry && o == Reset {
		label = "would reset"
	}
	if file != "" {
		what += " " + file
	}
	fmt.Fprintf(r.out, "%-11s %s: %s\n", label, what, text)
}

// container resets one container's files.
func (r *run) container(id string, c *state.Container) {
	what := fmt.Sprintf("container %s %s", shortID(id), c.Path)
	defaults := DefaultsV2
	if r.version == 1 {
		defaults = DefaultsV1
	}
	if !r.fs.Exists(c.Path, "") {
		r.line(Gone, what, "", "the cgroup no longer exists, nothing to reset")
		return
	}
	for _, file := range slices.Sorted(maps.Keys(c.Set)) {
		set := c.Set[file]
		cur, err := r.read(c.Path, file)
		if err != nil {
			if cgroupfs.IsGone(err) {
				r.line(Gone, what, file, "no such file (or the cgroup went away), nothing to reset")
				continue
			}
			r.line(Failed, what, file, err.Error())
			continue
		}
		why := ""
		switch {
		case cur == set:
		case cur == c.Older[file]:
			why = ", set by the plugin before a reload"
		case r.version == 2 && file == cgroupfs.FileHigh && r.guardRaised(c.Path, set, cur):
			why = ", raised by the plugin's memory.high guard"
		default:
			r.line(Kept, what, file, fmt.Sprintf("holds %s, the plugin set %s: changed by someone else since, left alone", cur, set))
			continue
		}
		to, src := c.Restore[file], "kubelet's"
		if r.version == 1 {
			src = "found before the plugin's first write"
		}
		if _, ok := c.Restore[file]; !ok {
			to, src = defaults[file], "the kernel's default"
		}
		r.reset(what, c.Path, file, cur, to, src+why)
	}
}

// read reads a file as state.Container keeps values: v2 as the file shows
// it, v1 as a number with every unlimited value -1.
func (r *run) read(rel, file string) (string, error) {
	if r.version == 1 {
		v, err := r.fs.ReadInt(rel, file)
		if err != nil {
			return "", err
		}
		return state.V1Value(v), nil
	}
	return r.fs.Read(rel, file)
}

// guardRaised tells that memory.high holds cur, above the plugin's set
// value and at most the container's memory.max: where the plugin's
// memory.high guard raises a stalled container (it keeps its steps in
// memory only).
func (r *run) guardRaised(rel, set, cur string) bool {
	s, err1 := strconv.ParseInt(set, 10, 64)
	c, err2 := strconv.ParseInt(cur, 10, 64)
	if err1 != nil || err2 != nil || c <= s {
		return false
	}
	limit, err := r.fs.ReadInt(rel, cgroupfs.FileMax)
	return err == nil && limit >= 0 && c <= limit
}

// ancestor lowers one ancestor value back to its baseline.
func (r *run) ancestor(v state.Value) {
	what := "ancestor " + v.Path
	cur, err := r.fs.ReadInt(v.Path, v.File)
	switch {
	case err != nil && cgroupfs.IsGone(err):
		r.line(Gone, what, v.File, "the cgroup no longer exists, nothing to reset")
		return
	case err != nil:
		r.line(Failed, what, v.File, err.Error())
		return
	case cur != v.Value:
		r.line(Kept, what, v.File, fmt.Sprintf("holds %s, the plugin wrote %d: changed by someone else since, left alone", intText(cur), v.Value))
		return
	}
	r.reset(what, v.Path, v.File, intText(cur), strconv.FormatInt(v.Baseline, 10), "its baseline, someone else's value")
}

func intText(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// reset writes to into a file that holds the plugin's value cur.
func (r *run) reset(what, rel, file, cur, to, src string) {
	if cur == to {
		r.line(Unchanged, what, file, fmt.Sprintf("holds %s, which is also %s: nothing to write", cur, src))
		return
	}
	if !r.dry {
		if _, err := r.fs.Write(rel, file, to); err != nil {
			if cgroupfs.IsGone(err) {
				r.line(Gone, what, file, "the cgroup went away, nothing to reset")
				return
			}
			r.line(Failed, what, file, fmt.Sprintf("%s -> %s: %v", cur, to, err))
			return
		}
	}
	r.line(Reset, what, file, fmt.Sprintf("%s -> %s (%s)", cur, to, src))
}

// shortID is a container ID as crictl ps shows it: its first 12 characters.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
