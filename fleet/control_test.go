package fleet

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/shmobj"
)

// beatingPid waits until the worker name beats with a pid other than not, and returns it.
func beatingPid(t *testing.T, f *Fleet, name string, not int64) int64 {
	t.Helper()
	var pid int64
	testkit.WaitFor(t, 10*time.Second, name+" beating", func() bool {
		s := status(t, f, name)
		pid = s.Snapshot.Record.WatchedPid
		return s.Phase == monitor.Running && pid != not && s.Snapshot.Seq > 0 && s.Snapshot.Record.State == shmobj.StateOK
	})
	return pid
}

// TestControlActions: a stopped worker stays stopped across a reload that leaves it
// unchanged, and starts on StartWorker; a changed configuration starts it anew; a worker whose
// supervision ended (restart never) is supervised anew by StartWorker, its counts kept.
func TestControlActions(t *testing.T) {
	ctx := context.Background()
	name := objectName(t)
	f, _ := newFleet(t)
	w := testWorker(t, name, "beat", `restart = "never"`)
	f.Apply([]config.Worker{w})
	first := beatingPid(t, f, name, 0)

	if done, err := f.StopWorker(ctx, name); err != nil || !strings.HasPrefix(done, "stopped (pid ") {
		t.Fatalf("StopWorker = %q, %v", done, err)
	}
	if ch := f.Apply([]config.Worker{w}); ch.Unchanged != 1 {
		t.Errorf("reload: %+v", ch)
	}
	time.Sleep(300 * time.Millisecond)
	if s := status(t, f, name); s.Phase != monitor.Held || s.Starts != 1 {
		t.Errorf("after a stop and a reload: %v, %d starts; want held, 1", s.Phase, s.Starts)
	}
	if _, err := f.SignalWorker(name, syscall.SIGHUP); !errors.Is(err, ErrNotRunning) {
		t.Errorf("a signal to a stopped worker: %v, want ErrNotRunning", err)
	}
	if done, err := f.StartWorker(ctx, name); err != nil || !strings.HasPrefix(done, "started (pid ") {
		t.Fatalf("StartWorker = %q, %v", done, err)
	}
	second := beatingPid(t, f, name, first)

	// Its program ends by a signal; restart "never" ends the supervision; a start begins anew.
	if _, err := f.SignalWorker(name, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the supervision to end", func() bool { return status(t, f, name).Phase == monitor.Finished })
	if done, err := f.StartWorker(ctx, name); err != nil || !strings.HasPrefix(done, "started (pid ") {
		t.Fatalf("StartWorker after the supervision ended = %q, %v", done, err)
	}
	third := beatingPid(t, f, name, second)
	if s := status(t, f, name); s.Starts != 3 || s.LastExit != "signal terminated" {
		t.Errorf("books after a new supervision: %d starts, last exit %q; want 3 (kept), signal terminated", s.Starts, s.LastExit)
	}

	// Held, then changed in the file: the new configuration starts it.
	if _, err := f.StopWorker(ctx, name); err != nil {
		t.Fatal(err)
	}
	changed := testWorker(t, name, "beat", `restart = "always"`)
	if ch := f.Apply([]config.Worker{changed}); ch.Restarted != 1 {
		t.Errorf("reload of a changed worker: %+v", ch)
	}
	beatingPid(t, f, name, third)

	if _, err := f.RestartWorker(ctx, "nope"); !errors.Is(err, ErrUnknownWorker) {
		t.Errorf("RestartWorker of an unknown worker: %v", err)
	}
}
