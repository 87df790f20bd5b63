//go:build faults

package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/cgroup"
	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
)

// runArgs are the arguments of `shmmon run` on name for the limit cases: the case parameters,
// a quick restart, more.
func runArgs(name string, more ...string) []string {
	return append([]string{"run", "--name", name, "--interval", interval.String(), "--stalls", strconv.Itoa(stalls),
		"--kill-after", killAfter.String(), "--restart", "always", "--backoff", "10ms", "--backoff-max", "50ms",
		"--start-limit", "1000"}, more...)
}

// gone waits up to bound for the process held by p to end.
func gone(p *proc.Process, bound time.Duration) bool { return p.WaitExit(context.Background(), bound) }

// TestMemoryLimit runs 20 runs of a Python worker that keeps beating while its memory grows
// (200 MB/s) past --memory-max 64MiB under `shmmon run`: every run must be stopped for it
// (event=limit resource=memory, never as hung) within the time to grow there plus stalls
// checks, and restarted; a steady worker beside it, under the same limit, is never stopped.
func TestMemoryLimit(t *testing.T) {
	const (
		trials = 20
		limit  = 64 << 20
		grow   = 200_000_000 // bytes per second
	)
	bound := time.Duration(limit*float64(time.Second)/grow) + (stalls+1)*interval + killAfter
	c := newCase(t, "worker growing past memory_max, beating (run, cgroup where there is one)",
		fmt.Sprintf("each run stopped ≤ growth + (stalls+1)×interval + kill-after (%v), event=limit, restarted; a steady one beside it untouched",
			bound.Round(time.Millisecond)))
	hog := testkit.Hog(t)
	growing, steady := c.object(0), c.object(1)
	g := c.start("shmmon run (growing)", []string{"HOG_GROW=" + strconv.Itoa(grow)}, testkit.Shmmon(t),
		runArgs(growing, "--memory-max", "64MiB", "--", "python3", hog)...)
	s := c.start("shmmon run (steady)", nil, testkit.Shmmon(t), runArgs(steady, "--memory-max", "64MiB", "--", "python3", hog)...)
	steadyPid := testkit.WaitBeating(t, startTimeout, steady, 0)

	var worst time.Duration
	pid := 0
	for range trials {
		pid = testkit.WaitBeating(t, startTimeout, growing, pid)
		began := time.Now()
		p, err := proc.Open(pid)
		if err != nil {
			t.Fatal(err)
		}
		ok := gone(p, bound+loadSlack)
		p.Close()
		took := time.Since(began)
		c.row.Trials++
		worst = max(worst, took)
		if !ok {
			c.row.MissedHangs++
			c.row.observe("run %d still running %v after it beat (bound %v)", pid, took.Round(time.Millisecond), bound)
			t.Fatalf("the growing worker %d still runs %v after its first check (bound %v)", pid, took, bound)
		}
	}
	g.Signal(t, syscall.SIGTERM)
	s.Signal(t, syscall.SIGTERM)
	for _, r := range []*testkit.Process{g, s} {
		if st := r.Wait(t, startTimeout); st.ExitCode() != 0 {
			t.Errorf("%s ended with %v after SIGTERM, want exit 0", r.Label, st)
		}
	}
	limits := len(testkit.LinesWith(g.Stderr.Lines(), "event=limit resource=memory"))
	if limits < trials || len(kills(&g.Stderr)) > 0 {
		t.Errorf("%d limit stops and %d hang kills logged, want at least %d and none", limits, len(kills(&g.Stderr)), trials)
	}
	steadyStops := len(testkit.LinesWith(s.Stderr.Lines(), "event=limit")) + len(kills(&s.Stderr)) +
		len(testkit.LinesWith(s.Stderr.Lines(), "msg=started")) - 1
	if steadyStops > 0 {
		c.row.FalseKills += steadyStops
		t.Errorf("the steady worker %d was stopped or restarted %d times:\n%s", steadyPid, steadyStops, s.Stderr.String())
	}
	c.row.observe("%d of %d runs stopped at the limit, worst %v after their first beat (bound %v); steady worker untouched: %v",
		limits, trials, worst.Round(time.Millisecond), bound.Round(time.Millisecond), steadyStops == 0)
}

// TestTreeKill runs 20 hung workers under `shmmon run`, each a shell that started `setsid
// sleep 1000` (out of the worker's process group, which a kill of the group misses), beat for
// a while and then hung: each must be killed as hung, and its sleep with it (the run's
// cgroup is killed), within the hang's bound.
func TestTreeKill(t *testing.T) {
	const trials = 20
	m, err := cgroup.Open()
	testkit.Require(t, err == nil, fmt.Sprintf("cgroups are not available: %v", err))
	m.Close()
	const beats = 10
	bound := beats*30*time.Millisecond + killBound
	c := newCase(t, "hung worker whose setsid sleep left its group (run, cgroup)",
		fmt.Sprintf("killed as hung with its sleep ≤ beats + (stalls+1)×interval + kill-after (%v), restarted", bound.Round(time.Millisecond)))
	name := c.object(0)
	pids := filepath.Join(t.TempDir(), "sleeps")
	shmmon := testkit.Shmmon(t)
	script := fmt.Sprintf(`setsid sleep 1000 & echo $! >> %s; i=0; while [ $i -lt %d ]; do %s beat --name "$SHMMON_NAME"; sleep 0.02; i=$((i+1)); done; exec sleep 1000`,
		pids, beats, shmmon)
	run := c.start("shmmon run", nil, shmmon, runArgs(name, "--grace", "5s", "--", "sh", "-c", script)...)

	var worst time.Duration
	for i := range trials {
		var line string
		testkit.WaitFor(t, startTimeout, "the setsid sleep of run "+strconv.Itoa(i+1), func() bool {
			b, _ := os.ReadFile(pids)
			lines := strings.Fields(string(b))
			if len(lines) > i {
				line = lines[i]
			}
			return len(lines) > i
		})
		began := time.Now()
		pid, _ := strconv.Atoi(line)
		p, err := proc.Open(pid)
		if err != nil {
			t.Fatalf("the sleep %q of run %d: %v", line, i+1, err)
		}
		ok := gone(p, bound+loadSlack)
		p.Close()
		took := time.Since(began)
		c.row.Trials++
		worst = max(worst, took)
		if !ok {
			c.row.MissedHangs++
			c.row.observe("the sleep %d of run %d outlived its worker (%v)", pid, i+1, took.Round(time.Millisecond))
			t.Fatalf("the setsid sleep %d still runs %v after it started (bound %v)", pid, took, bound)
		}
	}
	run.Signal(t, syscall.SIGTERM)
	if st := run.Wait(t, startTimeout); st.ExitCode() != 0 {
		t.Errorf("shmmon run ended with %v after SIGTERM, want exit 0", st)
	}
	if n := len(kills(&run.Stderr)); n < trials {
		t.Errorf("%d hang kills logged, want at least %d", n, trials)
	}
	b, _ := os.ReadFile(pids)
	left := 0
	for _, f := range strings.Fields(string(b)) {
		if pid, _ := strconv.Atoi(f); proc.Alive(pid) {
			left++
		}
	}
	if left > 0 {
		c.row.MissedHangs += left
		t.Errorf("%d setsid sleeps still run after shmmon run stopped", left)
	}
	c.row.observe("%d of %d sleeps gone with their hung worker, worst %v after the sleep started (bound %v); %d left after the stop",
		c.row.Trials-c.row.MissedHangs, trials, worst.Round(time.Millisecond), bound.Round(time.Millisecond), left)
}
