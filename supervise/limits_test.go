package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/cgroup"
	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/proc"
)

// superviseCommand starts a supervisor of argv with opts filled in (the check rules of the
// limit tests, a log), stopped when the test ends.
func superviseCommand(t *testing.T, argv []string, opts Options) *running {
	t.Helper()
	name := objectName(t)
	opts.Command = argv
	opts.Stdout = io.Discard
	if opts.Monitor.Config == (monitor.Config{}) {
		opts.Monitor.Config = monitor.Config{Interval: 100 * time.Millisecond, Stalls: 3, Grace: 5 * time.Second}
	}
	if opts.KillAfter == 0 {
		opts.KillAfter = 500 * time.Millisecond
	}
	return start(t, name, opts)
}

// cgroups returns the Manager of the test's cgroups, closed when the test ends; nil where
// cgroups are not available.
func cgroups(t *testing.T) *cgroup.Manager {
	m, err := cgroup.Open()
	if err != nil {
		t.Logf("without cgroups: %v", err)
		return nil
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// limitCases are the two ways a supervised worker is measured: its process tree, and its
// cgroup where this host gives it one.
func limitCases(t *testing.T) []struct {
	name string
	m    *cgroup.Manager
} {
	cases := []struct {
		name string
		m    *cgroup.Manager
	}{{"tree", nil}}
	if m := cgroups(t); m != nil {
		cases = append(cases, struct {
			name string
			m    *cgroup.Manager
		}{"cgroup", m})
	}
	return cases
}

// TestMemoryLimitRestarts: a Python worker that keeps beating while it allocates past
// memory_max is stopped (event=limit resource=memory), as a failure, and restarted; a steady
// worker under the same limits (and a CPU limit) is never touched.
func TestMemoryLimitRestarts(t *testing.T) {
	hog := testkit.Hog(t)
	for _, c := range limitCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Run("growing", func(t *testing.T) {
				r := superviseCommand(t, []string{"python3", hog}, Options{Cgroups: c.m,
					Env:     []string{"HOG_GROW=100000000"},
					Monitor: monitor.Options{Limits: monitor.Limits{MemoryMax: 64 << 20}}})
				first := r.beatingPid(t, 0)
				second := r.beatingPid(t, first)
				if second == first {
					t.Fatal("not restarted")
				}
				lines := r.logs.Lines()
				if l := testkit.LinesWith(lines, "event=limit resource=memory"); len(l) == 0 {
					t.Fatalf("no event=limit resource=memory:\n%s", r.logs)
				}
				if l := testkit.LinesWith(lines, "restart-wait", "failures=1"); len(l) == 0 {
					t.Errorf("the limit's stop was not counted as a failure:\n%s", r.logs)
				}
				if b := r.s.Worker().Books(); b.LimitKills == 0 || b.Kills != 0 || !strings.HasPrefix(b.LastExit, "over the memory limit") {
					t.Errorf("books %+v", b)
				}
			})
			t.Run("steady", func(t *testing.T) {
				r := superviseCommand(t, []string{"python3", hog}, Options{Cgroups: c.m,
					Monitor: monitor.Options{Limits: monitor.Limits{MemoryMax: 64 << 20, CPUMax: 500}}})
				pid := r.beatingPid(t, 0)
				time.Sleep(2 * time.Second)
				b := r.s.Worker().Books()
				if b.Starts != 1 || b.Pid != pid || b.LimitKills != 0 || b.Measured.IsZero() || b.Memory <= 0 || !b.CPUKnown {
					t.Errorf("the steady worker: books %+v (pid %d)", b, pid)
				}
				if l := testkit.LinesWith(r.logs.Lines(), "event=limit"); len(l) > 0 {
					t.Errorf("a limit event for the steady worker: %q", l)
				}
			})
		})
	}
}

// TestCPULimitRestarts: a worker that keeps a core busy while it beats goes over cpu_max on
// average over stalls intervals and is restarted.
func TestCPULimitRestarts(t *testing.T) {
	hog := testkit.Hog(t)
	for _, c := range limitCases(t) {
		t.Run(c.name, func(t *testing.T) {
			// A busy core, on a machine busy with other tests, still uses far more than 20%.
			r := superviseCommand(t, []string{"python3", hog}, Options{Cgroups: c.m, Env: []string{"HOG_BUSY=1"},
				Monitor: monitor.Options{Limits: monitor.Limits{CPUMax: 200}}})
			first := r.beatingPid(t, 0)
			if second := r.beatingPid(t, first); second == first {
				t.Fatal("not restarted")
			}
			if l := testkit.LinesWith(r.logs.Lines(), "event=limit resource=cpu"); len(l) == 0 {
				t.Fatalf("no event=limit resource=cpu:\n%s", r.logs)
			}
		})
	}
}

// TestRlimits: the program starts with its resource limits in place, as /proc/PID/limits
// shows, in its cgroup or not.
func TestRlimits(t *testing.T) {
	for _, c := range limitCases(t) {
		t.Run(c.name, func(t *testing.T) {
			r := superviseCommand(t, []string{"sleep", "1000"}, Options{Cgroups: c.m, Heartbeat: "none",
				Rlimits: []proc.Rlimit{{Resource: proc.Nofile, Limit: proc.Limit{Soft: 256, Hard: 512}},
					{Resource: proc.Core, Limit: proc.Limit{Soft: 0, Hard: 0}},
					{Resource: proc.Nproc, Limit: proc.Limit{Soft: 5000, Hard: 6000}}}})
			var pid int
			testkit.WaitFor(t, 10*time.Second, "the program to run", func() bool {
				if w := r.s.Worker(); w != nil {
					pid = int(w.Pid())
				}
				args, err := proc.Cmdline(pid)
				return pid > 0 && err == nil && slices.Equal(args, []string{"sleep", "1000"})
			})
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range [][]string{
				{"Max open files", "256", "512"}, {"Max core file size", "0", "0"}, {"Max processes", "5000", "6000"},
			} {
				if l := testkit.LinesWith(strings.Split(string(b), "\n"), want[0]); len(l) != 1 || !slices.Equal(strings.Fields(l[0][25:])[:2], want[1:]) {
					t.Errorf("%s: %q, want %q", want[0], l, want[1:])
				}
			}
		})
	}
}

// TestCgroupEndsSetsid: with cgroups, a hung worker whose shell started `setsid sleep 1000`
// (out of the worker's process group) is killed as hung and the sleep is gone too; the run's
// cgroup is in the books while it runs and removed after.
func TestCgroupEndsSetsid(t *testing.T) {
	m := cgroups(t)
	testkit.Require(t, m != nil, "cgroups are not available")
	file := filepath.Join(t.TempDir(), "sleep.pid")
	r := superviseCommand(t, []string{"sh", "-c", "setsid sleep 1000 & echo $! > " + file + "; exec sleep 1000"},
		Options{Cgroups: m, Restart: Never,
			Monitor: monitor.Options{Config: monitor.Config{Interval: 50 * time.Millisecond, Stalls: 3, Grace: 500 * time.Millisecond}}})
	var sleeper *proc.Process
	testkit.WaitFor(t, 10*time.Second, "the setsid sleep", func() bool {
		b, err := os.ReadFile(file)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid == 0 {
			return false
		}
		sleeper, err = proc.Open(pid)
		return err == nil
	})
	t.Cleanup(func() { sleeper.Signal(syscall.SIGKILL); sleeper.Close() }) // should the test fail
	want := m.Path() + "/" + r.name
	if b := r.s.Worker().Books(); b.Cgroup != want {
		t.Errorf("books' cgroup %q, want %q", b.Cgroup, want)
	}
	r.wait(t, 15*time.Second)
	if r.out != Hung {
		t.Errorf("Run = %v, %v; want hung", r.out, r.err)
	}
	if !sleeper.WaitExit(context.Background(), 5*time.Second) {
		t.Errorf("the setsid sleep %d outlived its hung worker", sleeper.Pid())
	}
	if _, err := os.Stat(filepath.Join(mountOf(t), want)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the worker's cgroup %s is still there: %v", want, err)
	}
	if b := r.s.Worker().Books(); b.Cgroup != "" {
		t.Errorf("books' cgroup %q after the run, want none", b.Cgroup)
	}
}

// mountOf returns the mount point of the cgroup v2 hierarchy.
func mountOf(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 8 && slices.Contains(f, "cgroup2") {
			return f[4]
		}
	}
	t.Fatal("no cgroup2 mount")
	return ""
}

// TestOOM: with the memory controller, memory.max stops a worker that allocates past
// memory_max faster than the monitor's checks: the kernel kills it, which is reported as
// event=oom and its status "signal killed (oom)", not a crash of unknown cause. Only where the
// memory controller is enabled (see testkit.RequireController).
func TestOOM(t *testing.T) {
	m := cgroups(t)
	testkit.Require(t, m != nil, "cgroups are not available")
	testkit.RequireController(t, m.Controllers(), "memory")
	r := superviseCommand(t, []string{"python3", testkit.Hog(t)}, Options{Cgroups: m, Restart: Never,
		Env: []string{"HOG_GROW=2000000000"}, Monitor: monitor.Options{Limits: monitor.Limits{MemoryMax: 64 << 20},
			// Judged so seldom that the kernel acts first.
			Config: monitor.Config{Interval: 10 * time.Second, Stalls: 3}}})
	r.wait(t, 30*time.Second)
	lines := r.logs.Lines()
	if len(testkit.LinesWith(lines, "event=oom")) == 0 || len(testkit.LinesWith(lines, "event=exit", `status="signal killed (oom)"`)) == 0 {
		t.Errorf("no event=oom or no OOM status:\n%s", r.logs)
	}
	if b := r.s.Worker().Books(); b.OOMKills == 0 || b.LimitKills != 0 {
		t.Errorf("books %+v, want OOM kills and no limit kill", b)
	}
}

// TestPidsMaxUnenforced: pids_max without the pids controller is said once, not silently
// dropped.
func TestPidsMaxUnenforced(t *testing.T) {
	m := cgroups(t)
	if m != nil && slices.Contains(m.Controllers(), "pids") {
		t.Skip("the pids controller is enabled here: pids_max is enforced")
	}
	r := superviseCommand(t, []string{"sleep", "1000"}, Options{Cgroups: m, Heartbeat: "none", PidsMax: 10})
	testkit.WaitFor(t, 10*time.Second, "the warning", func() bool {
		return len(testkit.LinesWith(r.logs.Lines(), "event=limit-unenforced", "pids_max=10")) == 1
	})
	r.s.Restart()
	testkit.WaitFor(t, 10*time.Second, "the restart", func() bool { w := r.s.Worker(); return w != nil && w.Books().Starts == 2 })
	if l := testkit.LinesWith(r.logs.Lines(), "event=limit-unenforced"); len(l) != 1 {
		t.Errorf("warned %d times, want once: %q", len(l), l)
	}
}
