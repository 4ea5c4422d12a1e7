package node_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
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
