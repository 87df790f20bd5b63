package security

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/badactor"
	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/shmobj"
)

// The attacks on `shmmon watch` that no scenario of package badactor makes: a watch by another
// user on a root process, and an object whose record names a live root shmmon as its monitor.

// TestWatchPidNotPermitted: `shmmon watch --pid` of a process the caller may not signal (a root
// process, for another user) is refused at once with a usage error, rather than accepted and
// failing when the kill comes; the process is not touched and no object is published.
func TestWatchPidNotPermitted(t *testing.T) {
	u := testkit.NewUser(t)
	v := badactor.StartVictim(t)
	name := testkit.Name(t, "ba-cli")
	t.Cleanup(func() { shmobj.Remove(name) })
	// Refused at once means before watching: exit 2 with the reason, and no object published
	// (a watch that started would publish it, and fail only at the kill, with exit 1). No
	// clock is read: on a loaded machine a start alone can take seconds.
	cmd := u.Command(testkit.Shmmon(t), "watch", "--name", name, "--pid", strconv.Itoa(v.Pid()), "--interval", "100ms")
	p := testkit.Start(t, "shmmon watch as "+u.Name, cmd)
	st := p.Wait(t, 5*time.Second)
	if st.ExitCode() != 2 {
		t.Errorf("watch --pid of a root process, as %s: %v; want exit 2 at once", u, st)
	}
	if msg := p.Stderr.String(); !strings.Contains(msg, "may not signal") || strings.Count(msg, "\n") != 1 {
		t.Errorf("want one line saying the user may not signal it, got %q", msg)
	}
	if hit, what := v.Hit(); hit {
		t.Errorf("the root process was touched: %s", what)
	}
	if _, err := os.Stat(shmobj.Path(name)); err == nil {
		t.Errorf("%s was published by a refused watch", shmobj.Path(name))
	}
}

// TestForgedMonitorPid is path 8 (objects): an object whose record names a live root shmmon
// as its monitor, when that shmmon does not map it, is stale: a new monitor takes it over
// instead of refusing it as watched.
func TestForgedMonitorPid(t *testing.T) {
	u := testkit.NewUser(t)
	bin := testkit.Shmmon(t)
	watched := testkit.Name(t, "sec-watched")
	forged := testkit.Name(t, "sec-forged")
	for _, n := range []string{watched, forged} {
		t.Cleanup(func() { shmobj.Remove(n) })
	}
	first := testkit.Start(t, "shmmon watch", exec.Command(bin, "watch", "--name", watched))
	testkit.WaitLine(t, &first.Stderr, 10*time.Second, "msg=watching")

	if out, err := badactor.As(t, u, "obj-monitor", forged, strconv.Itoa(first.Pid())).CombinedOutput(); err != nil {
		t.Fatalf("forging %s as %s: %v\n%s", forged, u, err, out)
	}
	second := testkit.Start(t, "second shmmon watch", exec.Command(bin, "watch", "--name", forged))
	testkit.WaitFor(t, 10*time.Second, "the second watch to start or end", func() bool {
		return !second.Running() || len(testkit.LinesWith(second.Stderr.Lines(), "msg=watching")) > 0
	})
	if !second.Running() {
		t.Fatalf("shmmon watch --name %s ended (%v: %q); want it to take over the object whose record names pid %d, "+
			"which does not map it", forged, second.Cmd.ProcessState, strings.TrimSpace(second.Stderr.String()), first.Pid())
	}
	snap, err := shmobj.Read(forged)
	if err != nil || snap.Record.MonitorPid != int64(second.Pid()) {
		t.Errorf("object %s: %+v, %v; want it published by the second watch (pid %d)", forged, snap.Record, err, second.Pid())
	}
	for _, p := range []*testkit.Process{second, first} {
		if !badactor.StopPromptly(t, p) {
			t.Errorf("%s did not end within %v of SIGTERM", p.Label, badactor.HangBound)
		}
	}
	if strings.Contains(first.Stderr.String(), "re-published") {
		t.Errorf("the first watch was disturbed:\n%s", first.Stderr.String())
	}
}
