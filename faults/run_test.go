//go:build faults

package faults

import (
	"fmt"
	"os/exec"
	"path/filepath"
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
	return c.runProgram(name, restart, testBinary(c.t, env...))
}

// runProgram starts `shmmon run` on name with the case parameters and the restart policy,
// running p.
func (c *tcase) runProgram(name, restart string, p program) *testkit.Process {
	c.t.Helper()
	return c.start("shmmon run", p.env, testkit.Shmmon(c.t), append([]string{"run", "--name", name,
		"--interval", interval.String(), "--stalls", strconv.Itoa(stalls), "--kill-after", killAfter.String(),
		"--restart", restart, "--backoff", "10ms", "--backoff-max", "50ms", "--start-limit", "1000",
		"--"}, p.argv...)...)
}

// program is a worker program: its argv and the environment it needs.
type program struct {
	label string // in the case's name
	argv  []string
	env   []string
}

// testBinary is the suite's test binary as a beating worker, with env added.
func testBinary(t testing.TB, env ...string) program {
	return program{label: "worker", argv: []string{testkit.Executable(t)}, env: workerEnv(env...)}
}

// cWorker is compat/bin/c_worker: a worker written with clients/c/shmmon.h, beating every
// 20 ms through shmmon_beat (SHMMON_NAME); built with make when missing.
func cWorker(t testing.TB) program {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("make", "-s", "-C", root, "compat/bin/c_worker").CombinedOutput(); err != nil {
		t.Fatalf("make compat/bin/c_worker: %v\n%s", err, out)
	}
	return program{label: "C worker", argv: []string{filepath.Join(root, "compat", "bin", "c_worker")}}
}

// pythonWorker is compat/python/py_worker.py: a worker written with the Python package
// clients/python, beating every 20 ms through shmmon.beat() (SHMMON_NAME).
func pythonWorker(t testing.TB) program {
	t.Helper()
	py, err := exec.LookPath("python3")
	testkit.Require(t, err == nil, "the Python worker needs python3")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return program{label: "Python worker", argv: []string{py, filepath.Join(root, "compat", "python", "py_worker.py")},
		env: []string{"PYTHONPATH=" + filepath.Join(root, "clients", "python"), "PYTHONDONTWRITEBYTECODE=1"}}
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
func hangCase(t *testing.T, caseName, expected string, trials int, hang func(pid int), p program) {
	c := newCase(t, caseName, expected)
	c.row.Bound = killBound
	name := c.object(0)
	run := c.runProgram(name, "always", p)
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
		c.row.Worst = worst
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
}

// hangTrials is the number of hangs of each hang case.
const hangTrials = 20

// hangExpected is the expected column of the hang cases.
const hangExpected = "killed ≤ (stalls+1)×interval + kill-after, restarted"

// sigstop hangs pid by stopping it.
func sigstop(pid int) { syscall.Kill(pid, syscall.SIGSTOP) }

// TestHungSigstop hangs a worker by SIGSTOP: the Go test binary, and the C and Python
// clients' workers, each under `shmmon run`.
func TestHungSigstop(t *testing.T) {
	t.Parallel()
	for _, p := range []func(testing.TB) program{
		func(t testing.TB) program { return testBinary(t) }, cWorker, pythonWorker,
	} {
		prog := p(t)
		t.Run(prog.label, func(t *testing.T) {
			t.Parallel()
			hangCase(t, prog.label+" hung by SIGSTOP (run)", hangExpected, hangTrials, sigstop, prog)
		})
	}
}

func TestHungBusyLoop(t *testing.T) {
	t.Parallel()
	hangCase(t, "worker busy-looping without beating (run)", hangExpected, hangTrials,
		nil, testBinary(t, envFor+"=600", envThen+"=spin"))
}

func TestHungBlockedRead(t *testing.T) {
	t.Parallel()
	hangCase(t, "worker blocked in read(2) on a silent pipe (run)", hangExpected, hangTrials,
		nil, testBinary(t, envFor+"=600", envThen+"=block"))
}

// TestExits ends the worker by itself or by a signal, under restart policies: each end is
// reported as an exit with its status, never as a stall or a hang, and restarted per policy.
func TestExits(t *testing.T) {
	t.Parallel()
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
			t.Parallel()
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
			// A restarting case ends its worker 20 times under one run; the other, which
			// ends the run with its worker, runs 20 times.
			const trials = 20
			runs, ends := 1, trials
			if !tc.restarts {
				runs, ends = trials, 1
			}
			var reported, starts, judged int
			for range runs {
				run := c.startRun(name, tc.restart, env...)
				pid := 0
				for i := range ends {
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
				n := len(testkit.LinesWith(ended, tc.status))
				reported += min(n, ends)
				started := len(testkit.LinesWith(run.Stderr.Lines(), "msg=started"))
				starts += started
				judged += len(testkit.LinesWith(run.Stderr.Lines(), "state=abnormal")) + len(kills(&run.Stderr))
				c.row.FalseKills += len(kills(&run.Stderr))
				if n < ends {
					t.Errorf("%d exits reported with %s, want %d:\n%s", n, tc.status, ends, strings.Join(ended, "\n"))
				}
				switch {
				case tc.restarts && started < ends+1:
					t.Errorf("%d starts, want at least %d", started, ends+1)
				case !tc.restarts && started != 1:
					t.Errorf("%d starts, want 1", started)
				}
				if st.ExitCode() != 0 {
					t.Errorf("shmmon run ended with %v, want exit 0", st)
				}
			}
			exits := "shmmon run exit 0"
			if runs > 1 {
				exits = fmt.Sprintf("%d runs of shmmon run, each exit 0", runs)
			}
			c.row.observe("%d of %d reported with %s; %d restarts; %d hang verdicts; %s",
				reported, trials, strings.TrimPrefix(tc.status, "status="), starts-runs, judged, exits)
			if judged != 0 {
				t.Errorf("an exit was judged as a hang")
			}
		})
	}
}
