//go:build faults

package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/badactor"
	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
)

// serveFleet starts serve on n beating workers of the test binary and returns it with the
// workers' pids by object name.
func (c *tcase) serveFleet(n int) (serve *testkit.Process, path string, pids map[string]int) {
	c.t.Helper()
	path = filepath.Join(c.t.TempDir(), "shmmon.toml")
	var ws []testkit.Worker
	for i := range n {
		ws = append(ws, testkit.Worker{Name: c.object(i), Command: []string{testkit.Executable(c.t)}})
	}
	writeConfig(c.t, path, smallDefaults, ws)
	serve = c.startServe(path)
	pids = map[string]int{}
	for _, w := range ws {
		pids[w.Name] = testkit.WaitBeating(c.t, startTimeout, w.Name, 0)
	}
	return serve, path, pids
}

// checkUntouched counts the workers whose pid changed or that are not beating in state ok.
func checkUntouched(t *testing.T, pids map[string]int) (killed int) {
	t.Helper()
	for name, pid := range pids {
		if now := testkit.WaitBeating(t, startTimeout, name, 0); now != pid || !proc.Alive(pid) {
			t.Errorf("%s: worker pid %d, was %d: a healthy worker was killed", name, now, pid)
			killed++
		}
	}
	return killed
}

// TestMonitorKilled SIGKILLs serve while its workers beat, and starts it again: the new serve
// adopts them; none is killed or started twice.
func TestMonitorKilled(t *testing.T) {
	t.Parallel()
	const trials = 20
	c := newCase(t, "monitor (serve) SIGKILLed and restarted", "workers adopted, none killed")
	serve, path, pids := c.serveFleet(4)
	var logs []*testkit.Process
	for range trials {
		serve.Signal(t, syscall.SIGKILL)
		serve.Wait(t, startTimeout)
		time.Sleep(3 * interval) // the workers beat on, with no monitor
		serve = c.startServe(path)
		logs = append(logs, serve)
		testkit.WaitFor(t, startTimeout, "the workers to be adopted", func() bool {
			return len(testkit.LinesWith(serve.Stderr.Lines(), "event=adopt")) == len(pids)
		})
		time.Sleep(10 * interval)
		c.row.FalseKills += checkUntouched(t, pids)
		c.row.Trials++
	}
	var ks, starts int
	for _, s := range logs {
		ks += len(kills(&s.Stderr))
		starts += len(testkit.LinesWith(s.Stderr.Lines(), "msg=started"))
	}
	c.row.FalseKills += ks
	c.row.observe("%d restarts of serve × %d workers: all adopted, %d kills, %d new starts", trials, len(pids), ks, starts)
	if ks+starts != 0 {
		t.Errorf("%d kills and %d starts after the restarts, want none", ks, starts)
	}
}

// TestMonitorStopped stops serve (SIGSTOP) for 5 intervals and continues it: its late checks
// judge nothing, so no worker is killed.
func TestMonitorStopped(t *testing.T) {
	t.Parallel()
	const trials = 20
	c := newCase(t, "monitor (serve) SIGSTOPped 5 intervals, continued", "no worker killed (late-tick guard)")
	serve, _, pids := c.serveFleet(4)
	for range trials {
		serve.Signal(t, syscall.SIGSTOP)
		time.Sleep(5 * interval)
		serve.Signal(t, syscall.SIGCONT)
		time.Sleep(10 * interval)
		c.row.FalseKills += checkUntouched(t, pids)
		c.row.Trials++
	}
	ks := len(kills(&serve.Stderr))
	abnormal := len(testkit.LinesWith(serve.Stderr.Lines(), "state=abnormal"))
	c.row.FalseKills += ks
	c.row.observe("%d stops × %d workers: %d kills, %d abnormal verdicts", trials, len(pids), ks, abnormal)
	if ks+abnormal != 0 {
		t.Errorf("%d kills and %d abnormal verdicts after the monitor was stopped, want none", ks, abnormal)
	}
}

// impostorAt starts an impostor (a process that only happens to hold a pid a monitor once
// watched: a victim of package badactor, which records the signals it gets in sigFile) with
// the pid of the exited and reaped process pid, by setting the kernel's last allocated pid
// just below it. Other processes on the machine may take the pid first: it tries again, up to
// 50 times, and fails the test when it cannot. A pid taken for good (by a new thread of
// another process, the monitor's own say: Go starts threads as it needs them) cannot be
// given: it returns nil, and the caller makes its trial again.
func (c *tcase) impostorAt(pid int, sigFile string) *testkit.Process {
	c.t.Helper()
	for range 50 {
		cmd := badactor.Self(c.t, "victim", sigFile) // made first: nothing may take the pid meanwhile
		cmd.Env = append(cmd.Env, envTag+"="+c.tag)
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			c.t.Fatalf("cannot choose the next pid (root needed): %v", err)
		}
		p := testkit.Start(c.t, "impostor", cmd)
		if p.Pid() == pid {
			testkit.WaitLine(c.t, &p.Stdout, startTimeout, "ready")
			return p
		}
		p.Kill()
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			c.t.Logf("pid %d was taken by another task (/proc/%d/status: %s); the trial is made again", pid, pid, procStatusName(pid))
			return nil
		}
	}
	c.t.Fatalf("could not start a process with pid %d", pid)
	return nil
}

// procStatusName is the Name and Tgid lines of /proc/PID/status, for a message.
func procStatusName(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Name:") || strings.HasPrefix(l, "Tgid:") {
			out = append(out, strings.Join(strings.Fields(l), " "))
		}
	}
	return strings.Join(out, ", ")
}

// TestPidReused lets a watched worker die and gives its pid to an impostor that never beats:
// neither `watch --pid` (a pidfd) nor serve with a pidfile (the file predates the impostor)
// signals it.
func TestPidReused(t *testing.T) {
	for _, mode := range []string{"watch --pid", "serve pidfile"} {
		t.Run(mode, func(t *testing.T) {
			c := newCase(t, "watched pid exited and reused ("+mode+")", "the new process is never signalled")
			const trials = 20
			var signalled []string
			redone := 0
			for i := 0; c.row.Trials < trials; i++ {
				old, imp, got := pidReusedTrial(t, c, mode, i)
				if imp == nil {
					if redone++; redone > trials {
						t.Fatalf("%d trials could not give the pid to an impostor", redone)
					}
					continue
				}
				c.row.Trials++
				if !imp.Running() || len(got) > 0 {
					c.row.FalseKills++
					signalled = append(signalled, fmt.Sprintf("pid %d: %q", old, got))
					t.Errorf("the impostor with the reused pid %d was signalled: alive %v, signals %q", old, imp.Running(), got)
				}
				imp.Kill()
			}
			c.row.observe("%d of %d impostors never signalled%s%s", trials-len(signalled), trials,
				map[bool]string{true: "", false: ": " + strings.Join(signalled, ", ")}[len(signalled) == 0],
				map[bool]string{true: "", false: fmt.Sprintf(" (%d trials made again: the pid went to another task first)", redone)}[redone == 0])
		})
	}
}

// pidReusedTrial is one trial of TestPidReused: the worker i dies while hung, its pid goes
// to an impostor, and the monitor (watch --pid, or serve with a pidfile) runs on for 10
// intervals. It returns the reused pid, the impostor, and the signals it got; the impostor is
// nil when the pid went to another task first (see impostorAt).
func pidReusedTrial(t *testing.T, c *tcase, mode string, i int) (old int, imp *testkit.Process, got []byte) {
	name := c.object(i)
	w := c.start("worker", workerEnv("SHMMON_NAME="+name), testkit.Executable(t))
	var mon *testkit.Process
	if mode == "watch --pid" {
		mon = c.start("shmmon watch", nil, testkit.Shmmon(t), "watch", "--name", name, "--pid", strconv.Itoa(w.Pid()),
			"--interval", interval.String(), "--stalls", strconv.Itoa(stalls), "--kill-after", killAfter.String())
	} else {
		dir := t.TempDir()
		pidfile := filepath.Join(dir, "worker.pid")
		if err := os.WriteFile(pidfile, []byte(strconv.Itoa(w.Pid())), 0o600); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "shmmon.toml")
		os.WriteFile(path, []byte(fmt.Sprintf("[defaults]\n%s\n\n[[worker]]\nname = %q\npidfile = %q\n",
			smallDefaults, name, pidfile)), 0o600)
		mon = c.startServe(path)
	}
	testkit.WaitBeating(t, startTimeout, name, 0)
	// Hang the worker until the monitor counts stalls, then let it die there.
	w.Signal(t, syscall.SIGSTOP)
	testkit.WaitFor(t, startTimeout, "a stall", func() bool {
		snap, err := shmobj.Read(name)
		return err == nil && snap.Record.Stalls >= 1
	})
	old = w.Pid()
	w.Signal(t, syscall.SIGKILL)
	w.Wait(t, startTimeout) // reaped: the pid is free
	sigFile := filepath.Join(t.TempDir(), "signals")
	imp = c.impostorAt(old, sigFile)
	time.Sleep(10 * interval) // over 3 times the stall threshold
	got, _ = os.ReadFile(sigFile)
	if mode == "watch --pid" {
		if st := mon.Wait(t, startTimeout); st.ExitCode() != 0 {
			t.Errorf("watch ended with %v, want exit 0 (the watched process ended)", st)
		}
	} else {
		mon.Terminate(t, startTimeout)
		// Taken for the file's process, the impostor would be killed once the stalls carried
		// over reach the threshold, or after the grace, perhaps after the trial's window.
		watching := fmt.Sprintf("msg=watching worker=%s pid=%d ", name, old)
		if n := mon.Stdout.Count(watching) + mon.Stderr.Count(watching); n != 1 {
			t.Errorf("serve watched pid %d %d times, want once: the second is the impostor, taken for the pidfile's process", old, n)
		}
	}
	return old, imp, got
}
