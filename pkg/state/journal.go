package state

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// The state on disk is a snapshot (the State at path, written whole and
// atomically) and journals beside it (path + ".journal-<generation>"): one
// JSON Record per line, each the changes of one event. An event appends its
// record, a few hundred bytes whatever the number of containers; the
// snapshot is rewritten only when the journal outgrows it, by a background
// compaction that reads the files, not the plugin's memory. State.Journal
// is the first generation the snapshot does not include.
//
// A crash (kill -9) loses nothing the plugin appended: a record is one
// write(2), in the page cache once it returns. A record cut short by the
// crash is the last line of the newest journal and is skipped on load. Every
// change is an absolute set or delete, so replaying a journal the snapshot
// already includes (a crash between the snapshot's rename and the old
// journal's removal) changes nothing.

// Record is one journal line: the changes of one event.
type Record struct {
	// Requests set resolved requests; DropRequests deletes them.
	Requests     map[string]int64 `json:"req,omitempty"`
	DropRequests []string         `json:"reqDrop,omitempty"`
	// Containers set container entries whole; DropContainers deletes them.
	Containers     map[string]*Container `json:"ctr,omitempty"`
	DropContainers []string              `json:"ctrDrop,omitempty"`
	// Ancestors set ancestor values (by path and file); DropAncestors
	// deletes them (only Path and File count).
	Ancestors     []Value `json:"anc,omitempty"`
	DropAncestors []Value `json:"ancDrop,omitempty"`
	// Promises set containers' promises; DropPromises deletes them.
	Promises     map[string]Promise `json:"prom,omitempty"`
	DropPromises []string           `json:"promDrop,omitempty"`
}

// Empty tells that r changes nothing.
func (r *Record) Empty() bool {
	return len(r.Requests) == 0 && len(r.DropRequests) == 0 && len(r.Containers) == 0 &&
		len(r.DropContainers) == 0 && len(r.Ancestors) == 0 && len(r.DropAncestors) == 0 &&
		len(r.Promises) == 0 && len(r.DropPromises) == 0
}

// builder applies many records to a state: ancestors stay in a map until
// finish, so a replay costs O(records + ancestors), not their product.
type builder struct {
	s   *State
	anc map[ancestorKey]Value
}

type ancestorKey struct{ path, file string }

func newBuilder(s *State) *builder {
	b := &builder{s: s, anc: make(map[ancestorKey]Value, len(s.Ancestors))}
	for _, v := range s.Ancestors {
		b.anc[ancestorKey{v.Path, v.File}] = v
	}
	return b
}

func (b *builder) apply(r *Record) {
	s := b.s
	if len(r.Requests) > 0 && s.Requests == nil {
		s.Requests = map[string]int64{}
	}
	maps.Copy(s.Requests, r.Requests)
	for _, id := range r.DropRequests {
		delete(s.Requests, id)
	}
	if len(r.Containers) > 0 && s.Containers == nil {
		s.Containers = map[string]*Container{}
	}
	maps.Copy(s.Containers, r.Containers)
	for _, id := range r.DropContainers {
		delete(s.Containers, id)
	}
	if len(r.Promises) > 0 && s.Promises == nil {
		s.Promises = map[string]Promise{}
	}
	maps.Copy(s.Promises, r.Promises)
	for _, id := range r.DropPromises {
		delete(s.Promises, id)
	}
	for _, v := range r.Ancestors {
		b.anc[ancestorKey{v.Path, v.File}] = v
	}
	for _, v := range r.DropAncestors {
		delete(b.anc, ancestorKey{v.Path, v.File})
	}
}

// finish puts the ancestors back into the state, sorted.
func (b *builder) finish() {
	b.s.Ancestors = nil
	if len(b.anc) == 0 {
		return
	}
	b.s.Ancestors = slices.SortedFunc(maps.Values(b.anc), func(a, b Value) int {
		return cmp.Or(strings.Compare(a.Path, b.Path), strings.Compare(a.File, b.File))
	})
}

// journalName is the journal of generation gen of the snapshot at path.
func journalName(path string, gen uint64) string {
	return path + ".journal-" + strconv.FormatUint(gen, 10)
}

// journals lists the generations of the journals beside the snapshot at
// path, in order.
func journals(path string) ([]uint64, error) {
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	prefix := filepath.Base(path) + ".journal-"
	var gens []uint64
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		if g, err := strconv.ParseUint(rest, 10, 64); err == nil {
			gens = append(gens, g)
		}
	}
	slices.Sort(gens)
	return gens, nil
}

// replay reads the snapshot at path and applies the journals it does not
// include, those before generation before (a compaction folds only the
// journals no longer appended to; everyone else asks for all). A missing snapshot is an empty state of no scope. Lines that do
// not parse are skipped and reported in err (joined), with the state
// holding everything else. last is the newest generation found (0 when
// none).
func replay(path string, before uint64) (s *State, last uint64, err error) {
	// A compaction may replace the snapshot and remove the journals it
	// took in between the reads here: read again when a journal the
	// snapshot needs vanished.
	for range 5 {
		s, last, err = replayOnce(path, before)
		if !errors.Is(err, errJournalGone) {
			return s, last, err
		}
	}
	return s, last, err
}

var errJournalGone = errors.New("journal removed while reading")

func replayOnce(path string, before uint64) (*State, uint64, error) {
	s := &State{}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return s, 0, fmt.Errorf("failed to read state: %w", err)
	default:
		if err := json.Unmarshal(data, s); err != nil {
			return &State{}, 0, fmt.Errorf("failed to read state from %s: %w", path, err)
		}
	}
	gens, err := journals(path)
	if err != nil {
		return s, 0, fmt.Errorf("failed to read state: %w", err)
	}
	var errs []error
	last := s.Journal
	b := newBuilder(s)
	defer b.finish()
	for _, g := range gens {
		if g < s.Journal || g >= before {
			continue // taken in by the snapshot, or not asked for
		}
		last = g
		name := journalName(path, g)
		data, err := os.ReadFile(name)
		if errors.Is(err, os.ErrNotExist) {
			return s, 0, errJournalGone
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("failed to read state journal: %w", err))
			continue
		}
		if err := applyJournal(b, name, data, g == gens[len(gens)-1]); err != nil {
			errs = append(errs, err)
		}
	}
	return s, last, errors.Join(errs...)
}

// Store keeps the state on disk as a snapshot and journals. Append is safe
// for concurrent use.
type Store struct {
	path string

	mu      sync.Mutex
	f       *os.File
	gen     uint64
	size    int64 // bytes in the current journal
	base    int64 // bytes of the last snapshot
	compact chan struct{}
	closed  bool

	// written counts the bytes written: appends and snapshots.
	written atomic.Uint64
	// onError receives a background compaction's failure.
	onError func(error)
}

// compactMin is the journal size below which it is never compacted.
const compactMin = 256 << 10

// appendCompactMin is the size of the journals below which OpenAppend
// never folds them.
const appendCompactMin = 4 << 10

// Open takes over the state at path for scope: it reads the snapshot and
// its journals, writes them as one snapshot and starts a new journal. A
// state saved for another scope (another cgroup mount) is dropped. err
// reports what could not be read (the state holds the rest); a Store is
// returned unless the new snapshot or journal cannot be written. onError,
// when not nil, receives the failures of background compactions.
func Open(path, scope string, onError func(error)) (*Store, *State, error) {
	s, last, rerr := replay(path, math.MaxUint64)
	if s.Scope != scope {
		s = &State{Scope: scope}
	}
	st := &Store{path: path, gen: last + 1, onError: onError}
	s.Journal = st.gen
	n, err := st.writeSnapshot(s)
	if err != nil {
		return nil, s, errors.Join(rerr, err)
	}
	st.base = n
	removeJournalsBefore(path, st.gen)
	f, err := os.OpenFile(journalName(path, st.gen), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, s, errors.Join(rerr, fmt.Errorf("failed to open state journal: %w", err))
	}
	st.f = f
	return st, s, rerr
}

// OpenAppend is Open for a short-lived writer that holds the writer lock (an
// OCI hook, LockHook): it reads the snapshot and its journals and appends to
// the newest journal, leaving the snapshot as it is, so that a hook run
// writes its records, not the whole state (in a fresh process, rewriting a
// snapshot of 100 containers costs about as much again as reading it). It
// does what Open does instead when there is no snapshot for scope yet, when
// the journals outgrow a quarter of the snapshot (every later hook reads
// them again), or when the newest journal ends in a record cut short by a
// crash (a record appended after it would be lost with it).
func OpenAppend(path, scope string, onError func(error)) (*Store, *State, error) {
	s, last, rerr := replay(path, math.MaxUint64)
	snap, err := os.Stat(path)
	if err != nil || s.Scope != scope || last < s.Journal {
		return Open(path, scope, onError)
	}
	var size, newest int64
	gens, err := journals(path)
	if err != nil {
		return Open(path, scope, onError)
	}
	for _, g := range gens {
		if g < s.Journal {
			continue
		}
		if fi, err := os.Stat(journalName(path, g)); err == nil {
			size += fi.Size()
			if g == last {
				newest = fi.Size()
			}
		}
	}
	if size > max(appendCompactMin, snap.Size()/4) {
		return Open(path, scope, onError)
	}
	f, err := os.OpenFile(journalName(path, last), os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, s, errors.Join(rerr, fmt.Errorf("failed to open state journal: %w", err))
	}
	if newest > 0 {
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, newest-1); err != nil || b[0] != '\n' {
			_ = f.Close()
			return Open(path, scope, onError)
		}
	}
	return &Store{path: path, gen: last, size: newest, base: snap.Size(), f: f, onError: onError}, s, rerr
}

// Append writes r to the journal: on disk (page cache) when it returns.
func (st *Store) Append(r *Record) error {
	if r.Empty() {
		return nil
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("failed to save state: %w", err)
	}
	data = append(data, '\n')
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return errors.New("failed to save state: store closed")
	}
	// One write(2) per record, O_APPEND.
	if _, err := st.f.Write(data); err != nil {
		return fmt.Errorf("failed to save state to %s: %w", st.f.Name(), err)
	}
	st.size += int64(len(data))
	st.written.Add(uint64(len(data)))
	if st.size > max(compactMin, 2*st.base) && st.compact == nil {
		st.rotate()
	}
	return nil
}

// rotate starts the next journal and compacts the previous ones into the
// snapshot in the background. Callers hold st.mu.
func (st *Store) rotate() {
	f, err := os.OpenFile(journalName(st.path, st.gen+1), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o600)
	if err != nil {
		st.report(fmt.Errorf("failed to start a new state journal: %w", err))
		return
	}
	_ = st.f.Close() // every record was flushed: nothing of ours is lost
	st.f, st.gen, st.size = f, st.gen+1, 0
	done := make(chan struct{})
	st.compact = done
	go st.compactBefore(st.gen, done)
}

// compactBefore writes the snapshot that includes every journal before gen
// and removes them.
func (st *Store) compactBefore(gen uint64, done chan struct{}) {
	defer close(done)
	s, _, err := replay(st.path, gen)
	if err != nil {
		st.report(err)
	}
	s.Journal = gen
	n, err := st.writeSnapshot(s)
	st.mu.Lock()
	st.compact = nil
	if err == nil {
		st.base = n
	}
	st.mu.Unlock()
	if err != nil {
		st.report(err)
		return
	}
	removeJournalsBefore(st.path, gen)
}

// applyJournal applies the records of journal name (content data) to s.
// Lines that do not parse are skipped and reported, except a last line
// without its newline when newest is set: a record cut short by a crash.
func applyJournal(b *builder, name string, data []byte, newest bool) error {
	var errs []error
	for n, rest := 1, data; len(rest) > 0; n++ {
		line, after, complete := bytes.Cut(rest, []byte{'\n'})
		rest = after
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			if newest && !complete {
				break
			}
			errs = append(errs, fmt.Errorf("state journal %s line %d skipped: %w", name, n, err))
			continue
		}
		b.apply(&r)
	}
	return errors.Join(errs...)
}

// writeSnapshot saves s at st.path and counts the bytes.
func (st *Store) writeSnapshot(s *State) (int64, error) {
	n, err := save(st.path, s)
	st.written.Add(uint64(n))
	return n, err
}

// Remove removes the state at path: the snapshot and every journal beside
// it. A missing state is no error.
func Remove(path string) error {
	gens, err := journals(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to remove state: %w", err)
	}
	var errs []error
	for _, g := range gens {
		if err := os.Remove(journalName(path, g)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("failed to remove state: %w", err)
	}
	return nil
}

// removeJournalsBefore removes the journals a snapshot includes.
func removeJournalsBefore(path string, gen uint64) {
	gens, _ := journals(path)
	for _, g := range gens {
		if g < gen {
			_ = os.Remove(journalName(path, g)) // a leftover is skipped on load
		}
	}
}

func (st *Store) report(err error) {
	if st.onError != nil {
		st.onError(err)
	}
}

// Wait waits for a background compaction in progress.
func (st *Store) Wait() {
	st.mu.Lock()
	done := st.compact
	st.mu.Unlock()
	if done != nil {
		<-done
	}
}

// BytesWritten is the number of bytes the store wrote: records and
// snapshots.
func (st *Store) BytesWritten() uint64 { return st.written.Load() }

// Close waits for a compaction in progress and closes the journal.
func (st *Store) Close() error {
	st.Wait()
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return nil
	}
	st.closed = true
	return st.f.Close()
}
