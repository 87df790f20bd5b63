package shmobj

import (
	"sync/atomic"
	"testing"
	"unsafe"
)

// BenchmarkAtomicAddFloor is one atomic add into a mapped page with no fault safety: the
// floor that a fault-safe beat is measured against in BENCHMARKS.md.
func BenchmarkAtomicAddFloor(b *testing.B) {
	seg := benchSegment(b)
	p := (*atomic.Uint64)(unsafe.Pointer(&seg.mem[0]))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p.Add(1)
	}
}

// BenchmarkSegmentBeat is the fault-safe beat of a mapped segment.
func BenchmarkSegmentBeat(b *testing.B) {
	seg := benchSegment(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		seg.Beat()
	}
}

// benchSegment publishes the benchmark's object; it is closed and removed when the benchmark
// ends.
func benchSegment(b *testing.B) *Segment {
	b.Helper()
	seg, err := Publish(testName(b), PublishOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { seg.Close() })
	return seg
}
