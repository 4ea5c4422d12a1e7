package protection_test

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"nri-memqos/pkg/protection"
	"nri-memqos/pkg/state"
)

// TestBaseline: a value someone else set before the plugin, or since, is a
// floor the plugin raises above and lowers back to, never below (issue 10,
// item 5).
func TestBaseline(t *testing.T) {
	f := newFake().addCgroups(kp, bu, pod1)
	f.set(bu, fMin, 300) // kubelet's, below what will be promised
	l := protection.New(0)
	mustApply(t, l, f, l.Set("c1", promise(pod1+"/c1", 500, 0)), protection.RaiseOnly)
	checkValues(t, f, want{kp: {500, 0}, bu: {500, 0}, pod1: {500, 0}})

	// kubelet raises kubepods above the sum: its value is the new baseline.
	f.set(kp, fMin, 800)
	mustApply(t, l, f, l.Set("c1", promise(pod1+"/c1", 600, 0)), protection.Full)
	checkValues(t, f, want{kp: {800, 0}, bu: {600, 0}, pod1: {600, 0}})

	// The container goes: every file back at its baseline.
	mustApply(t, l, f, l.Remove("c1"), protection.Full)
	checkValues(t, f, want{kp: {800, 0}, bu: {300, 0}, pod1: {0, 0}})
	if snap := l.Snapshot(); len(snap) != 0 {
		t.Errorf("Snapshot after every file is back at its baseline = %+v; want empty", snap)
	}
}

// TestRepair: Repair writes back what someone else reset below the target,
// marks those changes, and takes a foreign value above the sum as the new
// baseline (kubelet's TieredReservation coexists).
func TestRepair(t *testing.T) {
	f := newFake().addCgroups(kp, bu, pod1)
	l := protection.New(0)
	mustApply(t, l, f, l.Set("c1", promise(pod1+"/c1", 100, 200)), protection.RaiseOnly)

	f.set(bu, fMin, 0)   // kubelet's QoS manager resets it
	f.set(bu, fLow, 500) // kubelet's TieredReservation: above the sum
	f.writes = nil
	changes, err := l.Repair(f)
	if err != nil {
		t.Fatal(err)
	}
	want1 := []protection.Change{{Path: bu, File: fMin, From: 0, To: 100, Repair: true}}
	if !slices.Equal(changes, want1) {
		t.Errorf("Repair = %+v; want %+v", changes, want1)
	}
	checkValues(t, f, want{kp: {100, 200}, bu: {100, 500}, pod1: {100, 200}})

	// Nothing changed since: Repair writes nothing.
	f.writes = nil
	if changes, err := l.Repair(f); err != nil || len(changes) != 0 || len(f.writes) != 0 {
		t.Errorf("second Repair = %+v, %v (writes %v); want nothing", changes, err, f.writes)
	}

	// The container goes: bu's memory.low stays at kubelet's 500, memory.min
	// goes to kubelet's last value, 0.
	mustApply(t, l, f, l.Remove("c1"), protection.Full)
	checkValues(t, f, want{kp: {0, 0}, bu: {0, 500}, pod1: {0, 0}})
}

// TestBounds: nothing is written above the ledger's bound (MemTotal) or the
// ancestor's own memory.max.
func TestBounds(t *testing.T) {
	f := newFake().addCgroups(kp, bu, pod1)
	f.set(pod1, "memory.max", 700)
	l := protection.New(1000)
	mustApply(t, l, f, l.Set("c1", promise(pod1+"/c1", 900, 5000)), protection.RaiseOnly)
	checkValues(t, f, want{kp: {900, 1000}, bu: {900, 1000}, pod1: {700, 700}})
}

// TestSnapshotKeepsBaselines: a restarted plugin lowers its own values to
// the baselines found by the one before, not to 0.
func TestSnapshotKeepsBaselines(t *testing.T) {
	f := newFake().addCgroups(kp, bu, pod1)
	f.set(bu, fLow, 100)
	l := protection.New(0)
	mustApply(t, l, f, l.Set("c1", promise(pod1+"/c1", 0, 300)), protection.RaiseOnly)
	snap := l.Snapshot()
	if i := slices.IndexFunc(snap, func(v state.Value) bool { return v.Path == bu && v.File == fLow }); i < 0 || snap[i].Value != 300 || snap[i].Baseline != 100 {
		t.Fatalf("Snapshot = %+v; want %s/%s 300 over baseline 100", snap, bu, fLow)
	}
	restarted := protection.New(0)
	restarted.Restore(snap)
	// The container is gone when the new process looks.
	mustApply(t, restarted, f, restarted.Reset(), protection.Full)
	checkValues(t, f, want{kp: {0, 0}, bu: {0, 100}, pod1: {0, 0}})
}

// journalFake records what the ledger tells its journal, and the fake's
// writes at that moment, so the order of notes and writes shows.
type journalFake struct {
	f       *fakeFS
	writing []state.Value
	wrote   []state.Value
	forgot  []state.Value
	// writesAtNote is len(f.writes) when each Writing came.
	writesAtNote []int
}

func (j *journalFake) Writing(vals []state.Value) {
	j.writing = append(j.writing, vals...)
	j.writesAtNote = append(j.writesAtNote, len(j.f.writes))
}

func (j *journalFake) Wrote(vals, forgot []state.Value) {
	j.wrote = append(j.wrote, vals...)
	j.forgot = append(j.forgot, forgot...)
}

// TestJournalBeforeWrite: the journal hears of every value, with its
// baseline and the value the file held, before the file is written; and of
// every file the ledger forgets.
func TestJournalBeforeWrite(t *testing.T) {
	f := newFake().addCgroups(kp, bu, pod1)
	f.set(bu, fMin, 50) // kubelet's
	j := &journalFake{f: f}
	l := protection.New(0)
	l.SetJournal(j)
	mustApply(t, l, f, l.Set("c1", promise(pod1+"/c1", 100, 0)), protection.RaiseOnly)
	if len(f.writes) != 3 || !slices.Equal(j.writesAtNote, []int{0}) {
		t.Fatalf("writes %v, journal notes taken after %v writes; want 3 writes, all after one note", f.writes, j.writesAtNote)
	}
	prev := func(v int64) *int64 { return &v }
	wantNotes := []state.Value{
		{Path: kp, File: fMin, Value: 100, Previous: prev(0)},
		{Path: bu, File: fMin, Value: 100, Baseline: 50, Previous: prev(50)},
		{Path: pod1, File: fMin, Value: 100, Previous: prev(0)},
	}
	if !reflect.DeepEqual(j.writing, wantNotes) {
		t.Errorf("journal Writing = %+v; want %+v", j.writing, wantNotes)
	}
	// After the writes, the same values without Previous: a file holding
	// the old value later is someone else's doing.
	wantWrote := []state.Value{
		{Path: kp, File: fMin, Value: 100}, {Path: bu, File: fMin, Value: 100, Baseline: 50}, {Path: pod1, File: fMin, Value: 100},
	}
	if !reflect.DeepEqual(j.wrote, wantWrote) {
		t.Errorf("journal Wrote = %+v; want %+v", j.wrote, wantWrote)
	}
	j.writing, j.wrote, j.writesAtNote, f.writes = nil, nil, nil, nil
	mustApply(t, l, f, l.Remove("c1"), protection.Full)
	checkValues(t, f, want{kp: {0, 0}, bu: {50, 0}, pod1: {0, 0}})
	if !slices.Equal(j.writesAtNote, []int{0}) || len(j.writing) != 3 {
		t.Errorf("lowering: %d values noted after %v writes; want 3, before any write", len(j.writing), j.writesAtNote)
	}
	if len(j.forgot) != 3 {
		t.Errorf("journal Forgot = %+v; want the three files, back at their baselines", j.forgot)
	}
}

// TestRestorePrevious: a process that noted a value and died before
// writing it leaves the file at the value before, Previous: the next
// process takes that as its own and lowers it, not as a new baseline.
func TestRestorePrevious(t *testing.T) {
	f := newFake().addCgroups(kp)
	f.set(kp, fMin, 300) // written by the dead process, which had noted 500 next
	l := protection.New(0)
	prev := int64(300)
	l.Restore([]state.Value{{Path: kp, File: fMin, Value: 500, Baseline: 20, Previous: &prev}})
	mustApply(t, l, f, l.Reset(), protection.Full)
	checkValues(t, f, want{kp: {20, 0}})

	// Without Previous, 300 is someone else's value: left alone.
	f.set(kp, fMin, 300)
	l2 := protection.New(0)
	l2.Restore([]state.Value{{Path: kp, File: fMin, Value: 500, Baseline: 20}})
	mustApply(t, l2, f, l2.Reset(), protection.Full)
	checkValues(t, f, want{kp: {300, 0}})
}

// TestMemoryMaxCached: an ancestor's memory.max is read once; Repair reads
// it again (kubelet changes a pod's at an in-place resize).
func TestMemoryMaxCached(t *testing.T) {
	f := newFake().addCgroups(kp, bu, pod1)
	f.set(pod1, "memory.max", 700)
	l := protection.New(0)
	mustApply(t, l, f, l.Set("c1", promise(pod1+"/c1", 600, 0)), protection.RaiseOnly)
	f.set(pod1, "memory.max", 2000) // a resize raised the pod's limit
	mustApply(t, l, f, l.Set("c1", promise(pod1+"/c1", 900, 0)), protection.RaiseOnly)
	checkValues(t, f, want{kp: {900, 0}, bu: {900, 0}, pod1: {700, 0}})
	if _, err := l.Repair(f); err != nil {
		t.Fatal(err)
	}
	checkValues(t, f, want{kp: {900, 0}, bu: {900, 0}, pod1: {900, 0}})
}

// TestShrinkAfterMassRemoval: the ledger makes its maps anew after most
// promises went (a Go map keeps its size); sums, totals and the files it
// wrote are the same as before.
func TestShrinkAfterMassRemoval(t *testing.T) {
	f := newFake().addCgroups(kp, bu, pod1)
	l := protection.New(0)
	for i := range 1000 {
		mustApply(t, l, f, l.Set(fmt.Sprint("c", i), promise(pod1+"/c", 1, 2)), protection.RaiseOnly)
	}
	checkValues(t, f, want{kp: {1000, 2000}, bu: {1000, 2000}, pod1: {1000, 2000}})
	var touched []string
	for i := range 900 {
		touched = l.Remove(fmt.Sprint("c", i))
	}
	mustApply(t, l, f, touched, protection.Full)
	checkValues(t, f, want{kp: {100, 200}, bu: {100, 200}, pod1: {100, 200}})
	if got := l.TotalMin(""); got != 100 {
		t.Errorf("TotalMin = %d; want 100", got)
	}
	for i := 900; i < 1000; i++ {
		touched = l.Remove(fmt.Sprint("c", i))
	}
	mustApply(t, l, f, touched, protection.Full)
	checkValues(t, f, want{kp: {0, 0}, bu: {0, 0}, pod1: {0, 0}})
	if snap := l.Snapshot(); len(snap) != 0 {
		t.Errorf("Snapshot after every promise went = %+v; want empty", snap)
	}
}
