package monitor

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/shmmon/shmmon/shmobj"
)

func benchHeartbeats(b *testing.B, n int) []*Heartbeat {
	b.Helper()
	start := time.Now()
	hs := make([]*Heartbeat, 0, n)
	b.Cleanup(func() {
		for _, h := range hs {
			h.Close(true)
		}
	})
	for i := range n {
		h, err := Publish(fmt.Sprintf("shmmon-bench-%d-%d", os.Getpid(), i), Options{}, start)
		if err != nil {
			b.Fatal(err)
		}
		hs = append(hs, h)
	}
	return hs
}

// BenchmarkCheck is one check of one object: an atomic load, the rules, and the status
// record's stores. "progress" sees a new sequence at every check, as with a healthy worker
// (the benchmark bumps it between checks with a fault-safe Beat, whose cost is measured
// separately and subtracted in BENCHMARKS.md); "stalled" sees the same sequence every time.
func BenchmarkCheck(b *testing.B) {
	b.Run("stalled", func(b *testing.B) {
		h := benchHeartbeats(b, 1)[0]
		h.Segment().Beat()
		now := time.Now()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			h.Check(now)
		}
	})
	b.Run("progress", func(b *testing.B) {
		h := benchHeartbeats(b, 1)[0]
		seg := h.Segment()
		now := time.Now()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			seg.Beat()
			h.Check(now)
		}
	})
}

// BenchmarkScan is one scan of many objects, each mapped once by the monitor: the clock is
// read once per scan, then every object is checked.
func BenchmarkScan(b *testing.B) {
	for _, n := range []int{10000} {
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			hs := benchHeartbeats(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				now := time.Now()
				for _, h := range hs {
					h.Check(now)
				}
			}
		})
	}
}

// BenchmarkPublish is the atomic publication of one fresh object (create under a temporary
// name, size, write the record, rename).
func BenchmarkPublish(b *testing.B) {
	name := fmt.Sprintf("shmmon-bench-%d-publish", os.Getpid())
	defer shmobj.Remove(name)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		seg, err := shmobj.Publish(name, shmobj.PublishOptions{})
		if err != nil {
			b.Fatal(err)
		}
		seg.Close()
	}
}
