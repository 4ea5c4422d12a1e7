package node

import (
	"maps"
	"testing"

	"nri-memqos/pkg/state"
)

// TestEntryValues: an entry's per-file lists read, update and save as the
// state's maps do, and a saved entry comes back equal.
func TestEntryValues(t *testing.T) {
	var v fileValues
	if _, ok := v.get("memory.min"); ok || v.toMap() != nil {
		t.Fatal("an empty list holds a value")
	}
	v.put("memory.min", "1")
	v.put("memory.low", "2")
	v.put("memory.min", "3")
	if got, ok := v.get("memory.min"); !ok || got != "3" || len(v) != 2 {
		t.Fatalf("memory.min = %q, %v in %v; want 3 in two values", got, ok, v)
	}
	if _, ok := v.get("memory.high"); ok {
		t.Fatal("memory.high found, never put")
	}
	want := map[string]string{"memory.min": "3", "memory.low": "2"}
	if !maps.Equal(v.toMap(), want) || !maps.Equal(valuesOf(want).toMap(), want) {
		t.Fatalf("toMap = %v; want %v", v.toMap(), want)
	}

	saved := &state.Container{Path: "/kubepods/pod1/c1", Set: map[string]string{"memory.min": "3", "memory.high": "max"},
		Older: map[string]string{"memory.min": "1"}, Restore: map[string]string{"memory.min": "0"}}
	got := entryOf(saved).record()
	if got.Path != saved.Path || !maps.Equal(got.Set, saved.Set) || !maps.Equal(got.Older, saved.Older) || !maps.Equal(got.Restore, saved.Restore) {
		t.Fatalf("entry round trip = %+v; want %+v", got, saved)
	}
	// A new entry saves an empty set (as before: "set": {}), no older,
	// no restore.
	if r := (&entry{path: "/p"}).record(); r.Set == nil || len(r.Set) != 0 || r.Older != nil || r.Restore != nil {
		t.Fatalf("new entry saved as %+v", r)
	}
}
