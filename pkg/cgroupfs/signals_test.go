package cgroupfs_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nri-memqos/pkg/cgroupfs"
)

// A memory.stat and a memory.pressure as Linux 6.1 writes them (a cgroup of
// a container re-reading a file larger than its protection).
const (
	kernelStat = `anon 52428800
file 268435456
kernel 5242880
kernel_stack 163840
pagetables 1048576
shmem 0
file_mapped 52428800
inactive_anon 0
active_anon 52428800
inactive_file 134217728
active_file 134217728
unevictable 0
workingset_refault_anon 17
workingset_refault_file 64000
workingset_activate_anon 0
workingset_activate_file 12000
workingset_restore_anon 0
workingset_restore_file 9000
workingset_nodereclaim 0
pgscan 4000
pgsteal 3000
pgscan_kswapd 3200
pgscan_direct 800
pgsteal_kswapd 2500
pgsteal_direct 500
pgfault 12345
pgmajfault 12
`
	kernelPressure = "some avg10=12.50 avg60=3.10 avg300=0.80 total=4567890\nfull avg10=2.25 avg60=0.50 avg300=0.10 total=123456\n"
)

func TestReadSignals(t *testing.T) {
	want := cgroupfs.Signals{Anon: 52428800, File: 268435456, RefaultFile: 64000, RefaultAnon: 17, Steal: 3000, HasPSI: true,
		PSI: cgroupfs.PSI{SomeAvg10: 12.5, FullAvg10: 2.25, SomeTotal: 4567890, FullTotal: 123456}}
	tests := []struct {
		name     string
		version  int
		files    map[string]*string
		want     cgroupfs.Signals
		wantErr  []string
		wantGone bool
	}{
		{name: "Linux 6.1", version: 2, files: map[string]*string{"memory.stat": str(kernelStat), "memory.pressure": str(kernelPressure)},
			want: want},
		{name: "before 5.9: one refault counter, counted as file", version: 2,
			files: map[string]*string{"memory.stat": str("anon 1\nfile 2\nworkingset_refault 300\n"), "memory.pressure": str(kernelPressure)},
			want:  cgroupfs.Signals{Anon: 1, File: 2, RefaultFile: 300, HasPSI: true, PSI: want.PSI}},
		{name: "no pressure accounting: PSI unknown, not zero", version: 2, files: map[string]*string{"memory.stat": str(kernelStat)},
			want: cgroupfs.Signals{Anon: 52428800, File: 268435456, RefaultFile: 64000, RefaultAnon: 17, Steal: 3000}},
		{name: "malformed memory.stat value", version: 2, files: map[string]*string{"memory.stat": str("anon lots\n"), "memory.pressure": str(kernelPressure)},
			wantErr: []string{"memory.stat", "lots"}},
		{name: "malformed memory.pressure", version: 2, files: map[string]*string{"memory.stat": str(kernelStat), "memory.pressure": str("some avg10=x total=1\n")},
			wantErr: []string{"memory.pressure", `"x"`}},
		{name: "memory.pressure without a some line", version: 2, files: map[string]*string{"memory.stat": str(kernelStat), "memory.pressure": str("\n")},
			wantErr: []string{"memory.pressure", `no "some" line`}},
		{name: "missing memory.stat: gone", version: 2, files: map[string]*string{"memory.pressure": str(kernelPressure)},
			wantErr: []string{"failed to read", "memory.stat"}, wantGone: true},
		{name: "cgroup v1", version: 1, files: map[string]*string{}, wantErr: []string{"cgroup v2 only"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := statsFS(t, tc.version, tc.files)
			got, err := f.ReadSignals(rel)
			checkErr(t, err, tc.wantErr, tc.wantGone)
			if err == nil && got != tc.want {
				t.Fatalf("ReadSignals() = %+v; want %+v", got, tc.want)
			}
		})
	}
	t.Run("cgroup gone", func(t *testing.T) {
		f := statsFS(t, 2, map[string]*string{"memory.stat": str(kernelStat)})
		if err := os.RemoveAll(f.MemoryDir(rel)); err != nil {
			t.Fatal(err)
		}
		_, err := f.ReadSignals(rel)
		checkErr(t, err, []string{"memory.stat"}, true)
	})
}

func TestReadMemoryStats(t *testing.T) {
	lru := cgroupfs.MemoryStats{InactiveFile: 134217728, ActiveFile: 134217728, ActiveAnon: 52428800}
	withPSI := lru
	withPSI.PSI, withPSI.SomeAvg10, withPSI.FullAvg10 = true, 12.5, 2.25
	tests := []struct {
		name     string
		version  int
		files    map[string]*string
		want     cgroupfs.MemoryStats
		wantErr  []string
		wantGone bool
	}{
		{name: "Linux 6.1", version: 2, files: map[string]*string{"memory.stat": str(kernelStat), "memory.pressure": str(kernelPressure)},
			want: withPSI},
		{name: "no pressure accounting: PSI unknown, not zero", version: 2, files: map[string]*string{"memory.stat": str(kernelStat)},
			want: lru},
		{name: "keys missing read as 0", version: 2, files: map[string]*string{"memory.stat": str("anon 5\nactive_file 7\n"), "memory.pressure": str(kernelPressure)},
			want: cgroupfs.MemoryStats{ActiveFile: 7, PSI: true, SomeAvg10: 12.5, FullAvg10: 2.25}},
		{name: "malformed memory.stat value", version: 2, files: map[string]*string{"memory.stat": str("inactive_file 3GB\n")},
			wantErr: []string{"memory.stat", "3GB"}},
		{name: "malformed memory.pressure", version: 2, files: map[string]*string{"memory.stat": str(kernelStat), "memory.pressure": str("full avg10=1 total=1\n")},
			wantErr: []string{"memory.pressure", `no "some" line`}},
		{name: "missing memory.stat: gone", version: 2, files: map[string]*string{},
			wantErr: []string{"failed to read", "memory.stat"}, wantGone: true},
		{name: "cgroup v1", version: 1, files: map[string]*string{}, wantErr: []string{"cgroup v2 only"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := statsFS(t, tc.version, tc.files)
			got, err := f.ReadMemoryStats(rel)
			checkErr(t, err, tc.wantErr, tc.wantGone)
			if err == nil && *got != tc.want {
				t.Fatalf("ReadMemoryStats() = %+v; want %+v", *got, tc.want)
			}
		})
	}
}

func TestParsePSI(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    cgroupfs.PSI
		wantErr string
	}{
		{name: "memory", in: kernelPressure, want: cgroupfs.PSI{SomeAvg10: 12.5, FullAvg10: 2.25, SomeTotal: 4567890, FullTotal: 123456}},
		{name: "/proc/pressure/memory of an idle node", in: "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"},
		{name: "some only", in: "some avg10=1.00 avg60=0.00 avg300=0.00 total=10", want: cgroupfs.PSI{SomeAvg10: 1, SomeTotal: 10}},
		{name: "unknown fields ignored", in: "some avg10=1.00 avg1=9 total=10\n", want: cgroupfs.PSI{SomeAvg10: 1, SomeTotal: 10}},
		{name: "bad total", in: "some avg10=1.00 total=-1\n", wantErr: `bad some line`},
		{name: "empty", in: "", wantErr: `no "some" line`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cgroupfs.ParsePSI([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParsePSI() err = %v; want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParsePSI() = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestReclaimFile(t *testing.T) {
	cgroupfs.ResetSwappinessArg()
	f := statsFS(t, 2, map[string]*string{"memory.reclaim": str("")})
	fileOnly, err := f.ReclaimFile(rel, 1<<20)
	if err != nil || !fileOnly {
		t.Fatalf("ReclaimFile() = %v, %v; want true, nil", fileOnly, err)
	}
	if got := readFile(t, filepath.Join(f.MemoryDir(rel), "memory.reclaim")); got != "1048576 swappiness=0" {
		t.Fatalf("memory.reclaim = %q; want %q", got, "1048576 swappiness=0")
	}
	v1 := &cgroupfs.FS{Root: t.TempDir(), Version: 1, PlainFiles: true}
	if _, err := v1.ReclaimFile(rel, 1); err == nil {
		t.Fatal("ReclaimFile on cgroup v1: no error")
	}
}
