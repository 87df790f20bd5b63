package monitor

import (
	"fmt"
	"os"
	"strconv"
	"strings"
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
		h, err := publish(fmt.Sprintf("shmmon-bench-%d-%d", os.Getpid(), i), Options{}, start)
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
		h.seg.Beat()
		now := time.Now()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			h.Check(now)
		}
	})
	b.Run("progress", func(b *testing.B) {
		h := benchHeartbeats(b, 1)[0]
		seg := h.seg
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
// read once per scan, then every object is checked. Each mapping is one memory map area of
// the process, so 100,000 objects need vm.max_map_count above its default of 65530.
func BenchmarkScan(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			needMaps(b, n)
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

// needMaps fails the benchmark, naming the setting, when the kernel would refuse n more
// mappings (vm.max_map_count; `make bench` raises it when run as root).
func needMaps(b *testing.B, n int) {
	b.Helper()
	data, err := os.ReadFile("/proc/sys/vm/max_map_count")
	if err != nil {
		b.Fatal(err)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		b.Fatal(err)
	}
	if limit < n+10000 {
		b.Fatalf("vm.max_map_count is %d: mapping %d objects needs about %d (sysctl -w vm.max_map_count=262144)", limit, n, n+10000)
	}
}

// BenchmarkPublish10k is what a monitor does at start for 10,000 workers: publish 10,000
// fresh objects (monitor.Publish: owner check, temporary name, size, record, rename).
func BenchmarkPublish10k(b *testing.B) {
	const n = 10000
	start := time.Now()
	var hs []*Heartbeat
	b.Cleanup(func() {
		for _, h := range hs {
			h.Close(true)
		}
	})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		hs = make([]*Heartbeat, 0, n)
		for j := range n {
			h, err := publish(fmt.Sprintf("shmmon-bench-%d-pub-%d", os.Getpid(), j), Options{}, start)
			if err != nil {
				b.Fatal(err)
			}
			hs = append(hs, h)
		}
		b.StopTimer()
		for _, h := range hs {
			h.Close(true)
		}
		hs = nil
		b.StartTimer()
	}
}
