//go:build faults

package faults

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
)

// startRun starts `shmmon run` on name with the case parameters, the restart policy, and the
// test binary as the program, in the worker environment plus env.
func (c *tcase) startRun(name, restart string, env ...string) *testkit.Process {
	c.t.Helper()
	return c.start("shmmon run", workerEnv(env...), testkit.Shmmon(c.t), "run", "--name", name,
		"--interval", interval.String(), "--stalls", strconv.Itoa(stalls), "--kill-after", killAfter.String(),
		"--restart", restart, "--backoff", "10ms", "--backoff-max", "50ms", "--start-limit", "1000",
		"--", testkit.Executable(c.t))
}

// awaitKill follows a hung worker pid of the object name until it is gone, and returns the
// time from its last beat (the last change of the sequence the test saw, polled every 2 ms)
// to its end. ok is false when it is still running after bound+loadSlack from its last beat.
func awaitKill(name string, pid int, bound time.Duration) (took time.Duration, ok bool) {
	var last uint64
	lastChange := time.Now()
	for {
		if !proc.Alive(pid) {
			return time.Since(lastChange), true
		}
		if snap, err := shmobj.Read(name); err == nil && snap.Seq != last && snap.WorkerPid == int64(pid) {
			last, lastChange = snap.Seq, time.Now()
		}
		if time.Since(lastChange) > bound+loadSlack {
			return time.Since(lastChange), false
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// hangCase runs trials hangs of a worker under `shmmon run`: hang makes the worker pid hang
// (or nil when the worker hangs by itself, after beating for a while), and every hang must end
// in a kill within the bound and a restarted worker that beats.
func hangCase(t *testing.T, caseName, expected string, trials int, hang func(pid int), env ...string) {
	c := newCase(t, caseName, expected)
	name := c.object(0)
	run := c.startRun(name, "always", env...)
	pid := testkit.WaitBeating(t, startTimeout, name, 0)
	hung := map[int]bool{}
	var worst time.Duration
	for range trials {
		if hang != nil {
			if err := syscall.Kill(pid, 0); err != nil {
				t.Fatalf("worker %d: %v", pid, err)
			}
			hang(pid)
		}
		hung[pid] = true
		took, ok := awaitKill(name, pid, killBound)
		c.row.Trials++
		worst = max(worst, took)
		if !ok {
			c.row.MissedHangs++
			c.row.observe("worker %d not killed %v after its last beat", pid, took.Round(time.Millisecond))
			t.Fatalf("hung worker %d still running %v after its last beat (bound %v)", pid, took, killBound)
		}
		pid = testkit.WaitBeating(t, startTimeout, name, pid)
	}
	run.Terminate(t, startTimeout)
	ks := kills(&run.Stderr)
	for _, k := range ks {
		if !hung[k.pid] {
			c.row.FalseKills++
			t.Errorf("killed pid %d, which was not hung", k.pid)
		}
	}
	starts := len(testkit.LinesWith(run.Stderr.Lines(), "msg=started"))
	c.row.observe("%d of %d killed, worst %v after the last beat (bound %v); %d restarts",
		len(ks), trials, worst.Round(time.Millisecond), killBound, starts-1)
	if len(ks) != trials {
		t.Errorf("%d kills logged, want %d", len(ks), trials)
	}
	if starts != trials+1 {
		t.Errorf("%d starts logged, want %d (the first and one per hang)", starts, trials+1)
	}
	// The starvation rule must never hide a real hang.
	if excused := testkit.LinesWith(run.Stderr.Lines(), "event=starved"); len(excused) > 0 {
		c.row.observe("%d stalls excused as starvation", len(excused))
		t.Errorf("a hung worker's stalls were excused as starvation:\n%s", strings.Join(excused, "\n"))
	}
}

func TestHungSigstop(t *testing.T) {
	hangCase(t, "worker hung by SIGSTOP (run)", "killed ≤ (stalls+1)×interval + kill-after, restarted", 5,
		func(pid int) { syscall.Kill(pid, syscall.SIGSTOP) })
}

func TestHungBusyLoop(t *testing.T) {
	hangCase(t, "worker busy-looping without beating (run)", "killed ≤ (stalls+1)×interval + kill-after, restarted", 3,
		nil, envFor+"=600", envThen+"=spin")
}

func TestHungBlockedRead(t *testing.T) {
	hangCase(t, "worker blocked in read(2) on a silent pipe (run)", "killed ≤ (stalls+1)×interval + kill-after, restarted", 3,
		nil, envFor+"=600", envThen+"=block")
}

// TestExits ends the worker by itself or by a signal, under restart policies: each end is
// reported as an exit with its status, never as a stall or a hang, and restarted per policy.
func TestExits(t *testing.T) {
	cases := []struct {
		name     string
		restart  string
		then     string // FAULTS_THEN, or "" when the test SIGKILLs the worker
		status   string // in the "worker ended" line
		restarts bool
	}{
		{"exit 0, restart on-failure", "on-failure", "exit:0", "status=\"exit 0\"", false},
		{"exit 0, restart always", "always", "exit:0", "status=\"exit 0\"", true},
		{"exit 3, restart on-failure", "on-failure", "exit:3", "status=\"exit 3\"", true},
		{"killed by SIGKILL, restart on-failure", "on-failure", "", "status=\"signal killed\"", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := "reported as exited, not restarted"
			if tc.restarts {
				want = "reported as exited, restarted"
			}
			c := newCase(t, "worker "+tc.name, want)
			name := c.object(0)
			var env []string
			if tc.then != "" {
				env = []string{envFor + "=400", envThen + "=" + tc.then}
			}
			run := c.startRun(name, tc.restart, env...)
			trials := 3
			if !tc.restarts {
				trials = 1
			}
			pid := 0
			for i := range trials {
				pid = testkit.WaitBeating(t, startTimeout, name, pid)
				if tc.then == "" {
					syscall.Kill(pid, syscall.SIGKILL)
				}
				testkit.WaitFor(t, startTimeout, fmt.Sprintf("exit %d to be logged", i+1), func() bool {
					return len(testkit.LinesWith(run.Stderr.Lines(), `msg="worker ended"`)) > i
				})
				c.row.Trials++
			}
			if tc.restarts {
				testkit.WaitBeating(t, startTimeout, name, pid)
				run.Signal(t, syscall.SIGTERM)
			}
			st := run.Wait(t, startTimeout)
			ended := testkit.LinesWith(run.Stderr.Lines(), `msg="worker ended"`)
			reported := len(testkit.LinesWith(ended, tc.status))
			starts := len(testkit.LinesWith(run.Stderr.Lines(), "msg=started"))
			judged := len(testkit.LinesWith(run.Stderr.Lines(), "state=abnormal")) + len(kills(&run.Stderr))
			c.row.FalseKills = len(kills(&run.Stderr))
			c.row.observe("%d of %d reported with %s; %d restarts; %d hang verdicts; run exit %d",
				reported, trials, strings.TrimPrefix(tc.status, "status="), starts-1, judged, st.ExitCode())
			if reported < trials {
				t.Errorf("%d exits reported with %s, want %d:\n%s", reported, tc.status, trials, strings.Join(ended, "\n"))
			}
			if judged != 0 {
				t.Errorf("an exit was judged as a hang")
			}
			switch {
			case tc.restarts && starts < trials+1:
				t.Errorf("%d starts, want at least %d", starts, trials+1)
			case !tc.restarts && (starts != 1 || st.ExitCode() != 0):
				t.Errorf("%d starts and run exit %d, want 1 start and exit 0", starts, st.ExitCode())
			}
		})
	}
}
