//go:build faults

package faults

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
)

// depTrials is how many times TestDependencyChainFault hangs the root of its chain.
const depTrials = 20

// TestDependencyChainFault runs a chain under one serve — root; bound binds_to root; after
// after bound — and hangs the root (SIGSTOP) depTrials times: each time the root alone is
// killed, within the bound, and restarted; bound is stopped and started again only once the
// root beats again; after, which only starts after bound, is never touched. Once serve stops,
// nothing is left running.
func TestDependencyChainFault(t *testing.T) {
	t.Parallel()
	c := newCase(t, fmt.Sprintf("dependency chain root ← binds_to ← after, its root hung (SIGSTOP) %d times", depTrials),
		fmt.Sprintf("root killed ≤ %v and restarted; the bound worker stopped and started after it; the after worker untouched", killBound))
	c.row.Bound = killBound
	root, bound, after := c.object(0), c.object(1), c.object(2)
	exe := []string{testkit.Executable(t)}
	limits := "start_limit = 1000\n" // a kill is a failed start: the trials must not make serve give up
	ws := []testkit.Worker{
		{Name: after, Command: exe, Extra: fmt.Sprintf("after = [%q]\n", bound)},
		{Name: bound, Command: exe, Extra: fmt.Sprintf("binds_to = [%q]\n", root) + limits},
		{Name: root, Command: exe, Extra: limits},
	}
	path := filepath.Join(t.TempDir(), "shmmon.toml")
	writeConfig(t, path, smallDefaults, ws)
	serve := c.startServe(path)
	rootPid := testkit.WaitBeating(t, startTimeout, root, 0)
	boundPid := testkit.WaitBeating(t, startTimeout, bound, 0)
	afterPid := testkit.WaitBeating(t, startTimeout, after, 0)
	rootPids := map[int]bool{rootPid: true}

	// startsOf returns the indexes of the start lines of name in the log.
	startsOf := func(lines []string, name string) []int {
		var out []int
		for i, l := range lines {
			if strings.Contains(l, "event=start ") && strings.Contains(l, "worker="+name+" ") {
				out = append(out, i)
			}
		}
		return out
	}
	var worst time.Duration
	for trial := range depTrials {
		stopped := time.Now()
		if err := syscall.Kill(rootPid, syscall.SIGSTOP); err != nil {
			t.Fatalf("trial %d: SIGSTOP to the root %d: %v", trial, rootPid, err)
		}
		testkit.WaitFor(t, killBound+2*loadSlack, fmt.Sprintf("trial %d: the hung root killed", trial), func() bool {
			return !proc.Alive(rootPid) || sigkilled(rootPid)
		})
		took := time.Since(stopped)
		worst = max(worst, took)
		c.row.Worst = worst
		if took > killBound+loadSlack {
			c.row.MissedHangs++
			t.Errorf("trial %d: the root killed %v after SIGSTOP, bound %v", trial, took, killBound)
		}
		rootPid = testkit.WaitBeating(t, startTimeout, root, rootPid)
		rootPids[rootPid] = true
		boundPid = testkit.WaitBeating(t, startTimeout, bound, boundPid)
		lines := serve.Stderr.Lines()
		rs, bs := startsOf(lines, root), startsOf(lines, bound)
		if len(rs) != trial+2 || len(bs) != trial+2 || bs[len(bs)-1] < rs[len(rs)-1] {
			t.Errorf("trial %d: %d starts of the root, %d of the bound worker (want %d each), the bound one's last before the root's: %v",
				trial, len(rs), len(bs), trial+2, bs[len(bs)-1] < rs[len(rs)-1])
		}
		c.row.Trials++
	}
	if snap, err := shmobj.Read(after); err != nil || int(snap.Record.WatchedPid) != afterPid || !proc.Alive(afterPid) {
		t.Errorf("the after worker: pid %d (was %d), %v; want it untouched", snap.Record.WatchedPid, afterPid, err)
	}
	for _, k := range kills(&serve.Stderr) {
		if !rootPids[k.pid] || k.worker != root {
			c.row.FalseKills++
			t.Errorf("serve killed %s pid %d, which was not hung", k.worker, k.pid)
		}
	}
	depStops := len(testkit.LinesWith(serve.Stderr.Lines(), "event=dependency-stop", "worker="+bound+" "))
	if depStops != depTrials {
		t.Errorf("%d dependency-stop lines for the bound worker, want %d", depStops, depTrials)
	}
	serve.Terminate(t, 30*time.Second)
	if left := tagged(c.tag); len(left) > 0 {
		t.Errorf("%d processes left after serve stopped: %v", len(left), left)
	}
	c.row.observe("%d hangs of the root: each killed (worst %v from SIGSTOP to SIGKILL) and restarted; the bound worker stopped %d times and started after the root each time; the after worker kept pid %d; %d kills in all",
		c.row.Trials, worst.Round(time.Millisecond), depStops, afterPid, len(kills(&serve.Stderr)))
}
