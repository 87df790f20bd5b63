package proc

import (
	"os"
	"strconv"
	"syscall"
	"testing"
)

// BenchmarkRead measures the /proc readers on the paths that run often: Alive per row of
// `shmmon ls` and per healthy record of each proctab sweep, StartTime per record of each
// sweep, InTree per notify datagram from outside the root's group (one parent read).
func BenchmarkRead(b *testing.B) {
	leader := startHelper(b, "fork-sleep", nil) // in the test's group, as is its child
	grandchild, err := strconv.Atoi(leader.line(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { syscall.Kill(grandchild, syscall.SIGKILL) })
	for _, bb := range []struct {
		name string
		f    func() bool
	}{
		{"Alive", func() bool { return Alive(os.Getpid()) }},
		{"StartTime", func() bool { _, err := StartTime(os.Getpid()); return err == nil }},
		{"InTree", func() bool { return InTree(grandchild, leader.pid()) }},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !bb.f() {
					b.Fatal("false")
				}
			}
		})
	}
}
