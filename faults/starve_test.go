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

// TestStarvedNotHung: a healthy worker supervised by `shmmon run` with the default
// starved_max is starved again and again: under SCHED_IDLE (chrt -a -i -p 0) next to busy
// loops on every core it waits for a CPU for many intervals at a time, and is never killed;
// event=starved is logged. Between the trials it is back at the default priority, so that it
// catches up however busy the machine is with other work.
func TestStarvedNotHung(t *testing.T) {
	c := newCase(t, "starved, not hung: SCHED_IDLE worker under busy loops on every core (run)",
		"0 kills; event=starved logged")
	name := c.object(0)
	run := c.start("shmmon run", workerEnv(), testkit.Shmmon(t), "run", "--name", name,
		"--interval", interval.String(), "--stalls", strconv.Itoa(stalls), "--kill-after", killAfter.String(),
		"--", testkit.Executable(t))
	pid := testkit.WaitBeating(t, startTimeout, name, 0)
	starvedIn := 0 // trials with an event=starved line
	for range starvedTrials {
		before := len(testkit.LinesWith(run.Stderr.Lines(), "event=starved "))
		testkit.SchedIdle(t, pid, true)
		stop := testkit.Load(t, 3)
		time.Sleep(starveFor)
		stop()
		testkit.SchedIdle(t, pid, false)
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
// restarted (hangCase fails a case whose stalls were excused). One busy loop per core: a busy
// loop without beating that gets under a twentieth of a core is starved by the rule's own
// terms, and is caught by starved_max only, so the load must leave it a share on a machine
// busy with other work too. A worker that hangs by itself does so after a second of beats,
// which leaves the case time to end before its last restart hangs again. Each runs 20 hangs, as
// the hang cases without load do.
func TestHungUnderLoad(t *testing.T) {
	const expected = hangExpected + "; never excused as starved"
	for _, v := range []struct {
		name string
		hang func(pid int)
		env  []string
	}{
		{"SIGSTOPped", func(pid int) { syscall.Kill(pid, syscall.SIGSTOP) }, nil},
		{"deadlocked", nil, []string{envFor + "=1000", envThen + "=deadlock"}},
		{"busy-looping without beating", nil, []string{envFor + "=1000", envThen + "=spin"}},
		{"blocked in read(2)", nil, []string{envFor + "=1000", envThen + "=block"}},
	} {
		t.Run(strings.ReplaceAll(v.name, " ", "_"), func(t *testing.T) {
			testkit.Load(t, 1)
			hangCase(t, "worker "+v.name+" under busy loops on every core (run)", expected, hangTrials, v.hang, testBinary(t, v.env...))
		})
	}
}
