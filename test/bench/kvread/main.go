// Command kvread is the protection benchmark's storage-engine workload: a
// go.etcd.io/bbolt store served by random point reads.
//
//	kvread load -db PATH -mib N
//	    writes a store of N MiB (the file's size, to 2000 keys): 8-byte
//	    big-endian keys, 1000-byte values, sequential inserts.
//	kvread serve -db PATH -out DIR [-gets N] [-idle D]
//	    opens the store read-only (bbolt maps it; every read is a page of
//	    the map, MADV_RANDOM: a miss is one 4 KiB read from disk), reads the
//	    whole file once, writes DIR/ready, waits for DIR/go, then every idle
//	    period does one burst of N point reads of random keys in one read
//	    transaction and appends to DIR/lat "burst <ms>" and to DIR/gets
//	    "gets <bound_ns>:<count> ..." (a histogram of the burst's reads,
//	    buckets 2^(1/8) apart) until it is killed.
//
// It runs inside the latency-sensitive container of TestProtectionGuest
// (test/e2e), which parses those files.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

const valueSize = 1000

var bucket = []byte("kv")

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kvread load|serve [flags]")
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "load":
		fs := flag.NewFlagSet("load", flag.ExitOnError)
		db := fs.String("db", "", "store path")
		size := fs.Int("mib", 300, "store size in MiB")
		_ = fs.Parse(args)
		err = load(*db, *size)
	case "serve":
		fs := flag.NewFlagSet("serve", flag.ExitOnError)
		db := fs.String("db", "", "store path")
		out := fs.String("out", "", "directory for ready, lat and gets")
		gets := fs.Int("gets", 40000, "point reads per burst")
		idle := fs.Duration("idle", 3*time.Second, "pause between bursts")
		_ = fs.Parse(args)
		err = serve(*db, *out, *gets, *idle)
	default:
		err = fmt.Errorf("unknown command %q: want load or serve", cmd)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kvread: %v\n", err)
		os.Exit(1)
	}
}

// load writes about mib MiB of keys and values.
func load(path string, mib int) error {
	if path == "" || mib <= 0 {
		return errors.New("load: -db and a positive -mib are required")
	}
	db, err := bolt.Open(path, 0o644, &bolt.Options{NoSync: true, NoFreelistSync: true})
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	val := make([]byte, valueSize)
	// Batches of 2000 keys until the file is mib MiB.
	for next, size := uint64(0), int64(0); size < int64(mib)<<20; {
		err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bucket)
			if err != nil {
				return err
			}
			b.FillPercent = 1
			for end := next + 2000; next < end; next++ {
				for i := 0; i < len(val); i += 8 {
					binary.LittleEndian.PutUint64(val[i:], rng.Uint64())
				}
				if err := b.Put(key(next), val); err != nil {
					return err
				}
			}
			size = tx.Size()
			return nil
		})
		if err != nil {
			return errors.Join(err, db.Close())
		}
	}
	return errors.Join(db.Sync(), db.Close())
}

func key(k uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, k)
}

// serve warms the store, waits for go and runs bursts until killed.
func serve(path, out string, gets int, idle time.Duration) error {
	if path == "" || out == "" || gets <= 0 {
		return errors.New("serve: -db, -out and a positive -gets are required")
	}
	// The whole file through read() first: sequential, with readahead; the
	// map then finds its pages in the page cache.
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, f)
	if err := errors.Join(err, f.Close()); err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o444, &bolt.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	var n uint64
	var sum byte
	// Every leaf once through the map: the pages are mapped as the bursts
	// will find them.
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return fmt.Errorf("%s has no bucket %q: run kvread load first", path, bucket)
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			sum ^= v[len(v)-1]
			n++
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "ready"), fmt.Appendf(nil, "keys %d\n", n), 0o644); err != nil {
		return err
	}
	for {
		if _, err := os.Stat(filepath.Join(out, "go")); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	lat, err := os.OpenFile(filepath.Join(out, "lat"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	hist, err := os.OpenFile(filepath.Join(out, "gets"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	counts := make([]int, len(bounds))
	k := make([]byte, 8)
	for burst := uint64(0); ; burst++ {
		clear(counts)
		rng := rand.New(rand.NewPCG(3, burst))
		start := time.Now()
		err := db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucket)
			for range gets {
				binary.BigEndian.PutUint64(k, rng.Uint64N(n))
				t0 := time.Now()
				v := b.Get(k)
				if v == nil {
					return fmt.Errorf("key %x is missing", k)
				}
				sum ^= v[len(v)-1] // the value's page, not only the leaf header
				counts[bucketOf(time.Since(t0))]++
			}
			return nil
		})
		if err != nil {
			return err
		}
		ms := float64(time.Since(start).Microseconds()) / 1000
		if _, err := fmt.Fprintf(lat, "burst %.1f\n", ms); err != nil {
			return err
		}
		if _, err := hist.WriteString(histLine(counts, sum)); err != nil {
			return err
		}
		time.Sleep(idle)
	}
}

// bounds are the histogram's bucket upper bounds in nanoseconds, 2^(1/8)
// apart from 256 ns to past a minute; the last catches the rest.
var bounds = func() []int64 {
	var b []int64
	for i := 0; ; i++ {
		v := int64(math.Round(256 * math.Pow(2, float64(i)/8)))
		b = append(b, v)
		if v > int64(time.Minute) {
			return append(b, math.MaxInt64)
		}
	}
}()

func bucketOf(d time.Duration) int {
	return sort.Search(len(bounds), func(i int) bool { return bounds[i] >= int64(d) })
}

// histLine is "gets <bound>:<count> ..." over the non-empty buckets. sum is
// the values' bytes read, printed so that the reads cannot be optimised
// away.
func histLine(counts []int, sum byte) string {
	var s strings.Builder
	s.WriteString("gets")
	for i, c := range counts {
		if c > 0 {
			fmt.Fprintf(&s, " %d:%d", bounds[i], c)
		}
	}
	fmt.Fprintf(&s, " sum:%d\n", sum)
	return s.String()
}
