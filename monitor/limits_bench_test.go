package monitor

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/cgroup"
	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
)

// BenchmarkCheckLimits is the cost, per worker and per check interval, of a worker with a
// resource limit: [Worker.CheckLimits] with the measure its owner gives it. "tree" measures a
// worker without a cgroup, the test binary asleep (one Go process of several threads,
// proc.TreeUsage: its threads' children lists and its /proc/PID/stat); "cgroup" one in a
// cgroup without the memory controller (cgroup.procs, the member's stat, cpu.stat); "judge"
// is the judgement alone. A worker without limits pays nothing: its owner never measures it.
func BenchmarkCheckLimits(b *testing.B) {
	name := testkit.Name(b, "bench-limits")
	w, _, err := OpenWorker(name, Options{Limits: Limits{MemoryMax: 1 << 40, CPUMax: 100_000}}, WorkerOptions{}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Close(true) })
	// cpu-ns/op is the CPU time of this process (user and system) per check: on a machine
	// busy with other work, ns/op counts the waits for a core too.
	run := func(b *testing.B, meter Meter) {
		now := time.Now()
		b.ReportAllocs()
		before := cpuTime()
		for b.Loop() {
			now = now.Add(time.Second)
			if _, over := w.CheckLimits(now, meter); over {
				b.Fatal("over the limit")
			}
		}
		b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
	}
	b.Run("judge", func(b *testing.B) {
		run(b, func() (proc.Usage, error) { return proc.Usage{Memory: 1 << 20, CPU: time.Second}, nil })
	})
	sleeper := func(b *testing.B, cmd *exec.Cmd) {
		b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		time.Sleep(100 * time.Millisecond) // its runtime's threads started
	}
	b.Run("tree", func(b *testing.B) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "SHMMON_TEST_MODE=sleep")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		sleeper(b, cmd)
		pid := cmd.Process.Pid
		run(b, func() (proc.Usage, error) { return proc.TreeUsage(pid) })
	})
	b.Run("cgroup", func(b *testing.B) {
		m, err := cgroup.Open()
		if err != nil {
			b.Skip(err)
		}
		b.Cleanup(func() { m.Close() })
		g, _, err := m.Create(name)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { g.Remove() })
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "SHMMON_TEST_MODE=sleep")
		g.Prepare(cmd, &proc.ChildOptions{})
		if cmd.SysProcAttr == nil || !cmd.SysProcAttr.UseCgroupFD {
			b.Skip("no clone3 here")
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		sleeper(b, cmd)
		b.Cleanup(func() { cmd.Process.Signal(syscall.SIGKILL) })
		run(b, g.Usage)
	})
}

// cpuTime is the CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
