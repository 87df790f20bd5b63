//go:build faults

package faults

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
)

// starvedTrials is how many times the starved worker is starved; starveFor how long each time:
// 20 intervals, several stall periods, well within the default starved_max (10s).
const (
	starvedTrials = 20
	starveFor     = 20 * interval
)

// The cases below keep every core busy, so they do not run in parallel with the others
// (t.Parallel): the busy loops would starve the other cases' monitors and workers too.

// TestStarvedNotHung: a healthy worker under SCHED_IDLE (chrt -i 0), supervised by `shmmon
// run` with the default starved_max, is starved again and again by busy loops on every core:
// it waits for a CPU for many intervals at a time, and is never killed; event=starved is
// logged.
func TestStarvedNotHung(t *testing.T) {
	c := newCase(t, "starved, not hung: SCHED_IDLE worker under busy loops on every core (run)",
		"0 kills; event=starved logged")
	name := c.object(0)
	run := c.start("shmmon run", workerEnv(), testkit.Shmmon(t), "run", "--name", name,
		"--interval", interval.String(), "--stalls", strconv.Itoa(stalls), "--kill-after", killAfter.String(),
		"--", "chrt", "-i", "0", testkit.Executable(t))
	pid := testkit.WaitBeating(t, startTimeout, name, 0)
	starvedIn := 0 // trials with an event=starved line
	for range starvedTrials {
		before := len(testkit.LinesWith(run.Stderr.Lines(), "event=starved "))
		stop := testkit.Load(t, 3)
		time.Sleep(starveFor)
		stop()
		c.row.Trials++
		if len(testkit.LinesWith(run.Stderr.Lines(), "event=starved ")) > before {
			starvedIn++
		}
		if ks := kills(&run.Stderr); len(ks) > 0 {
			c.row.FalseKills = len(ks)
			t.Fatalf("a starved worker was killed as hung: %+v", ks)
		}
		testkit.WaitBeating(t, startTimeout, name, 0) // it catches up once the loops are gone
	}
	run.Terminate(t, startTimeout)
	abnormal := len(testkit.LinesWith(run.Stderr.Lines(), "state=abnormal"))
	starts := len(testkit.LinesWith(run.Stderr.Lines(), "msg=started"))
	c.row.observe("%d kills, %d abnormal verdicts, %d restarts of worker %d; event=starved in %d of %d trials",
		len(kills(&run.Stderr)), abnormal, starts-1, pid, starvedIn, starvedTrials)
	if abnormal > 0 || starts != 1 {
		t.Errorf("%d abnormal verdicts, %d starts; want none and 1", abnormal, starts)
	}
	// Starved for 20 intervals on a 2-core machine with 3 busy loops per core, the worker
	// misses checks in a row nearly every time: a case that saw none would test nothing.
	if starvedIn < starvedTrials/2 {
		t.Errorf("event=starved in %d of %d trials; want at least half (the worker was not starved)", starvedIn, starvedTrials)
	}
}

// TestHungUnderLoad: the same busy loops, with a worker at the default priority that hangs for
// real — SIGSTOPped, deadlocked on a mutex, busy-looping without beating, blocked in read(2):
// the starvation rule must never hide a hang, so each is killed within the usual bound and
// restarted (hangCase fails a case whose stalls were excused). Five hangs each keep the
// serial part of the suite short; the hang cases without load run 20 each.
func TestHungUnderLoad(t *testing.T) {
	const expected = hangExpected + "; never excused as starved"
	for _, v := range []struct {
		name string
		hang func(pid int)
		env  []string
	}{
		{"SIGSTOPped", func(pid int) { syscall.Kill(pid, syscall.SIGSTOP) }, nil},
		{"deadlocked", nil, []string{envFor + "=600", envThen + "=deadlock"}},
		{"busy-looping without beating", nil, []string{envFor + "=600", envThen + "=spin"}},
		{"blocked in read(2)", nil, []string{envFor + "=600", envThen + "=block"}},
	} {
		t.Run(strings.ReplaceAll(v.name, " ", "_"), func(t *testing.T) {
			testkit.Load(t, 2)
			hangCase(t, "worker "+v.name+" under busy loops on every core (run)", expected, 5, v.hang, testBinary(t, v.env...))
		})
	}
}
