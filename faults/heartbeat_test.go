//go:build faults

package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/proctab"
)

// TestHeartbeatNone runs a program without a heartbeat (`run --heartbeat none`) that exits
// after 300 ms, 20 times over: it never beats, for many times the stall threshold in all, and
// must be started again after each exit and never judged.
func TestHeartbeatNone(t *testing.T) {
	t.Parallel()
	const trials = 20
	c := newCase(t, `program without a heartbeat exiting every 300 ms (run --heartbeat none)`,
		"restarted after each exit, never judged nor killed")
	name := c.object(0)
	run := c.start("shmmon run", nil, testkit.Shmmon(t), "run", "--name", name, "--heartbeat", "none",
		"--interval", interval.String(), "--stalls", strconv.Itoa(stalls), "--kill-after", killAfter.String(),
		"--restart", "always", "--backoff", "10ms", "--backoff-max", "50ms", "--start-limit", "1000",
		"--", "/bin/sh", "-c", "sleep 0.3")
	testkit.WaitFor(t, time.Minute, fmt.Sprintf("%d exits", trials), func() bool {
		return len(testkit.LinesWith(run.Stderr.Lines(), `msg="worker ended"`)) >= trials
	})
	run.Signal(t, syscall.SIGTERM)
	st := run.Wait(t, startTimeout)
	log := run.Stderr.Lines()
	c.row.Trials = trials
	judged := len(testkit.LinesWith(log, "state=stalled")) + len(testkit.LinesWith(log, "state=abnormal"))
	c.row.FalseKills = len(kills(&run.Stderr))
	starts := len(testkit.LinesWith(log, "msg=started"))
	c.row.observe("%d exits, %d starts, %d stall or hang verdicts, %d kills; run exit %d",
		len(testkit.LinesWith(log, `msg="worker ended"`)), starts, judged, c.row.FalseKills, st.ExitCode())
	if judged+c.row.FalseKills != 0 {
		t.Errorf("a program without a heartbeat was judged %d times and killed %d times", judged, c.row.FalseKills)
	}
	if starts < trials {
		t.Errorf("%d starts, want at least %d", starts, trials)
	}
	if st.ExitCode() != 0 {
		t.Errorf("shmmon run ended with %v, want exit 0", st)
	}
}

// TestHeartbeatProctab runs the C++ process-table client (the original framework's kind of
// client: a record with a timeout of 1 s, updated every 100 ms) as a serve worker of
// heartbeat "proctab", with the table's sweep of [proctab] (which clears the records of the
// killed programs, and leaves the supervised program to its supervisor), and freezes it
// (SIGSTOP) 20 times: each time its record times out, it is killed as hung within the bound
// and restarted, and the new program registers a new record.
func TestHeartbeatProctab(t *testing.T) {
	t.Parallel()
	const (
		trials = 20
		slots  = 16
		// The record's timeout, and its atime's resolution (whole seconds).
		timeout = time.Second
	)
	bound := 2*timeout + killBound
	c := newCase(t, `C++ process-table client frozen by SIGSTOP (serve, heartbeat "proctab")`,
		fmt.Sprintf("killed ≤ record timeout + its 1 s resolution + (stalls+1)×interval + kill-after (%v), restarted, a new record", bound))
	c.row.Bound = bound
	client := proctabClient(t)
	key := 0x7c000000 | (os.Getpid()&0xffff)<<8
	opts := proctab.Options{Key: key, SemKey: key, Slots: slots}
	t.Cleanup(func() {
		if tab, err := proctab.Attach(opts); err == nil {
			tab.Remove()
			tab.Close()
		}
	})
	k := fmt.Sprintf("%#x", key)
	name := c.object(0)
	path := filepath.Join(t.TempDir(), "shmmon.toml")
	testkit.WriteConfig(t, path, "[defaults]\n"+smallDefaults+"\n", []testkit.Worker{{Name: name,
		Command: []string{client, "--key", k, "--sem-key", k, "--slots", strconv.Itoa(slots), "svc", "1", "100"},
		Extra:   "heartbeat = \"proctab\"\ngrace = \"5s\"\nstart_limit = 1000\n"}},
		fmt.Sprintf("\n[proctab]\nkey = %d\nsem_key = %d\nslots = %d\nevery = \"200ms\"\n", key, key, slots))
	serve := c.startServe(path)

	var worst time.Duration
	pid := 0
	for range trials {
		pid = testkit.WaitBeating(t, startTimeout, name, pid)
		testkit.WaitFor(t, startTimeout, "the program's record", func() bool { return hasRecord(opts, pid) })
		p, err := proc.Open(pid)
		if err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		syscall.Kill(pid, syscall.SIGSTOP)
		ok := gone(p, bound+loadSlack)
		p.Close()
		took := time.Since(stopped)
		c.row.Trials++
		worst = max(worst, took)
		c.row.Worst = worst
		if !ok {
			c.row.MissedHangs++
			c.row.observe("client %d still running %v after SIGSTOP (bound %v)", pid, took.Round(time.Millisecond), bound)
			t.Fatalf("the frozen client %d still runs %v after SIGSTOP (bound %v)", pid, took, bound)
		}
	}
	pid = testkit.WaitBeating(t, startTimeout, name, pid)
	testkit.WaitFor(t, startTimeout, "the last program's record", func() bool { return hasRecord(opts, pid) })
	serve.Signal(t, syscall.SIGTERM)
	if st := serve.Wait(t, startTimeout); st.ExitCode() != 0 {
		t.Errorf("shmmon serve ended with %v after SIGTERM, want exit 0", st)
	}
	ks := len(kills(&serve.Stderr))
	if ks != trials {
		t.Errorf("%d hang kills logged, want %d", ks, trials)
	}
	if l := testkit.LinesWith(serve.Stderr.Lines(), "heartbeat timed out: killing"); len(l) > 0 {
		t.Errorf("the sweep killed the supervised program: %s", l[0])
	}
	c.row.observe("%d of %d frozen clients killed, worst %v after SIGSTOP (bound %v); %d kills logged; each restarted with a new record",
		c.row.Trials-c.row.MissedHangs, trials, worst.Round(time.Millisecond), bound, ks)
}

// hasRecord reports whether the table of opts holds a record of pid.
func hasRecord(opts proctab.Options, pid int) bool {
	tab, err := proctab.Attach(opts)
	if err != nil {
		return false
	}
	defer tab.Close()
	recs, _ := tab.List()
	for _, r := range recs {
		if r.Pid == pid {
			return true
		}
	}
	return false
}

// proctabClient returns the path of compat/bin/proctab_client (the C++ client of the process
// table), built with make when missing.
func proctabClient(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("make", "-s", "-C", root, "compat/bin/proctab_client").CombinedOutput(); err != nil {
		t.Fatalf("make compat/bin/proctab_client: %v\n%s", err, out)
	}
	return filepath.Join(root, "compat", "bin", "proctab_client")
}
