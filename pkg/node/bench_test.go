package node_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"nri-memqos/pkg/cgroupfs"
	"nri-memqos/pkg/node"
)

// BenchmarkCreate measures one CreateContainer and the RemoveContainer that
// keeps the live count at N, through the core with a state file, at N live
// containers: the event path alone (the ancestor writer is held off while
// it is timed). Time and allocations per operation must not grow with N
// (issue 11).
func BenchmarkCreate(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("live=%d", n), func(b *testing.B) {
			tr := newTree(b, 2)
			log := logrus.New()
			log.SetOutput(io.Discard)
			log.SetLevel(logrus.WarnLevel)
			core := node.New(node.Options{Log: log, Host: node.Host{MemTotal: 64 * gi, PageSize: 4096},
				StateFile: filepath.Join(b.TempDir(), "state.json"), FileConfig: mustConfig(b, tr.configYAML("")),
				Meminfo: func() (int64, int64, error) { return 64 * gi, 64 * gi, nil }, NodePSI: func() (cgroupfs.PSI, error) { return cgroupfs.PSI{}, nil }})
			if err := core.Configure(""); err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { core.Run(ctx); close(done) }()
			defer func() { cancel(); <-done; _ = core.Close() }()
			spec := func(i int) ctrSpec {
				return ctrSpec{id: fmt.Sprintf("c%07d", i), pod: fmt.Sprintf("p%05d", i/10), class: "latency-sensitive",
					request: 1 * mi, limit: limit512}
			}
			for i := range n {
				tr.cgroup(spec(i).rel())
				if _, err := core.Create(spec(i).facts()); err != nil {
					b.Fatal(err)
				}
			}
			for i := n; i < n+b.N; i++ {
				tr.cgroup(spec(i).rel())
			}
			for !core.AncestorWriterRunning() {
				time.Sleep(time.Millisecond)
			}
			resume := core.PauseAncestorWriter()
			defer resume()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := core.Create(spec(n + i).facts()); err != nil {
					b.Fatal(err)
				}
				core.Remove(spec(i).facts())
			}
		})
	}
}

// BenchmarkHeap reports the heap the core keeps per managed container
// (B/container, issue 11's memory targets): N containers of the three
// classes, with container IDs of the runtime's length, created through the
// core with its state file; the reconciler has ticked over all of them and
// stopped; the heap after a collection, less the heap before the first
// creation, over N.
// Run it with -benchtime 1x: each iteration builds a node anew.
func BenchmarkHeap(b *testing.B) {
	classes := []string{"latency-sensitive", "burstable", "best-effort"}
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("live=%d", n), func(b *testing.B) {
			var perCtr float64
			for range b.N {
				b.StopTimer()
				tr := newTree(b, 2)
				specs := make([]ctrSpec, n)
				for i := range specs {
					specs[i] = ctrSpec{id: fmt.Sprintf("%064x", 1<<40+i), pod: fmt.Sprintf("%036x", i/3), class: classes[i%3],
						request: 2 * mi, limit: limit512}
					tr.cgroup(specs[i].rel())
				}
				log := logrus.New()
				log.SetOutput(io.Discard)
				before := node.HeapNow()
				b.StartTimer()
				core := node.New(node.Options{Log: log, Host: node.Host{MemTotal: 64 * gi, PageSize: 4096},
					StateFile: filepath.Join(b.TempDir(), "state.json"), FileConfig: mustConfig(b, tr.configYAML("reconciler:\n  interval: 100ms\n")),
					Meminfo: func() (int64, int64, error) { return 64 * gi, 64 * gi, nil }, NodePSI: func() (cgroupfs.PSI, error) { return cgroupfs.PSI{}, nil }})
				if err := core.Configure(""); err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { core.Run(ctx); close(done) }()
				for _, s := range specs {
					f := s.facts()
					d, err := core.Create(f)
					if err != nil {
						b.Fatal(err)
					}
					// The runtime writes the adjustment's values into the
					// container's cgroup: without them the reconciler
					// repairs drift in every container.
					for file, v := range d.UnifiedV2() {
						tr.cgroupWrite(s.rel(), file, v)
					}
					core.PostCreate(f)
					core.Start(f)
				}
				for deadline := time.Now().Add(30 * time.Second); len(core.Reconciler().Stats()) < n; time.Sleep(20 * time.Millisecond) {
					if time.Now().After(deadline) {
						b.Fatalf("the reconciler holds %d of %d containers after 30s", len(core.Reconciler().Stats()), n)
					}
				}
				// Stopped, so that no tick is under way when the heap is
				// read: the core keeps what it holds.
				cancel()
				<-done
				perCtr += float64(node.HeapNow()-before) / float64(n)
				b.StopTimer()
				_ = core.Close()
				runtime.KeepAlive(specs)
			}
			b.ReportMetric(perCtr/float64(b.N), "B/container")
		})
	}
}
