package security

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/badactor"
	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/shmobj"
)

// TestAdoptForeignObjectNamingRoot is path 4: an object another user planted, naming a root
// process that looks like the worker, is not adopted.
func TestAdoptForeignObjectNamingRoot(t *testing.T) {
	s := badactor.ObjectNamingRoot
	badactor.Check(t, s.Name, s.Run(t, 1))
}

// TestAdoptForeignObjectSquatter is path 4: an object another user planted and beats from a
// process that looks like the worker is not adopted, and that process is left alone.
func TestAdoptForeignObjectSquatter(t *testing.T) {
	s := badactor.ObjectSquatter
	badactor.Check(t, s.Name, s.Run(t, 1))
}

// TestPlantedFIFO is path 6: a FIFO at the object's name hangs nothing, and a monitor that
// may not replace it says whose it is.
func TestPlantedFIFO(t *testing.T) {
	s := badactor.PlantedFIFO
	o := s.Run(t, 1)
	badactor.Check(t, s.Name, o)
	if !strings.Contains(o.Detail, "watch as another user: exit status 1") || !strings.Contains(o.Detail, "belongs to uid") {
		t.Errorf("another user's watch did not fail with an error naming the FIFO's owner: %s", o.Detail)
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
