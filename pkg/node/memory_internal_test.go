package node

import (
	"fmt"
	"runtime"
	"testing"
)

// TestShrinkMakesSmallMaps: after a mass removal the core's per-container
// maps are made anew at their size. maps.Clone, which it used, keeps the
// capacity of the peak: 20 000 containers gone left some 2 MB behind.
func TestShrinkMakesSmallMaps(t *testing.T) {
	const peak = 20000
	n := &Node{containers: map[string]*tracked{}, requests: map[string]int64{}, entries: map[string]*entry{}}
	n.shrink.release = func() {}
	before := heapNow()
	for i := range peak {
		id := fmt.Sprintf("%064x", i)
		n.containers[id], n.requests[id], n.entries[id] = &tracked{}, 1, &entry{}
		n.noteCount(len(n.containers))
	}
	full := heapNow() - before
	for id := range n.containers {
		delete(n.containers, id)
		delete(n.requests, id)
		delete(n.entries, id)
		n.noteCount(len(n.containers))
	}
	left := heapNow() - before
	t.Logf("%d B per container with %d, %d B left", full/peak, peak, left)
	if left > 64<<10 {
		t.Errorf("%d bytes left after %d containers went (%d with them); want under 64 KiB", left, peak, full)
	}
	if n.containers == nil || n.requests == nil || n.entries == nil || n.promises == nil {
		t.Error("a map made anew is nil")
	}
}

func heapNow() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
