package supervise

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
)

// ask asks r's supervisor for q, failing the test on an error, and reports whether it changed
// anything.
func (r *running) ask(t *testing.T, q Request) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	changed, err := r.s.Ask(ctx, q)
	if err != nil {
		t.Fatalf("Ask(%d): %v", q, err)
	}
	return changed
}

// TestAskStopStartRestart: a stop ends the program and holds it (phase Held) until a start;
// a start or a restart is counted as a start, and answered once the new program runs.
func TestAskStopStartRestart(t *testing.T) {
	r := supervise(t, "beat", Options{})
	first := r.beatingPid(t, 0)
	if !r.ask(t, RequestStop) {
		t.Error("a stop of a running program changed nothing")
	}
	if b := r.books(); b.Phase != monitor.Held || proc.Alive(int(first)) || r.record().Record.State != shmobj.StateExited {
		t.Errorf("after a stop: phase %v, program alive %v, state %v", b.Phase, proc.Alive(int(first)), r.record().Record.State)
	}
	if r.ask(t, RequestStop) {
		t.Error("a stop of a held program changed something")
	}
	if _, err := r.s.Signal(syscall.SIGTERM); !errors.Is(err, ErrNotRunning) {
		t.Errorf("a signal to a held program: %v, want ErrNotRunning", err)
	}
	time.Sleep(300 * time.Millisecond) // 6 intervals: still held
	if b := r.books(); b.Phase != monitor.Held || b.Starts != 1 {
		t.Errorf("a held program: phase %v, %d starts", b.Phase, b.Starts)
	}
	if !r.ask(t, RequestStart) {
		t.Error("a start of a held program changed nothing")
	}
	second := r.beatingPid(t, first)
	if r.ask(t, RequestStart) {
		t.Error("a start of a running program changed something")
	}
	r.ask(t, RequestRestart)
	third := r.beatingPid(t, second)
	if b := r.books(); b.Starts != 3 || b.Restarts != 2 || b.Kills != 0 || b.Pid != third {
		t.Errorf("books %+v: want 3 starts, 2 restarts, no kill, pid %d", b, third)
	}
	pid, err := r.s.Signal(syscall.SIGTERM)
	if err != nil || int64(pid) != third {
		t.Errorf("Signal = %d, %v; want %d", pid, err, third)
	}
	r.beatingPid(t, third)
}

// TestAskInBackoff: a stop holds a program waiting to be restarted; a start starts it at once
// and the backoff starts over.
func TestAskInBackoff(t *testing.T) {
	r := supervise(t, "exit 1", Options{Backoff: time.Minute, BackoffMax: time.Minute, StartLimit: 100})
	// The first restart is immediate (a backoff of 0); the one after it waits the minute.
	waiting := func(b monitor.Books) bool {
		return b.Phase == monitor.Backoff && time.Until(b.BackoffUntil) > time.Second
	}
	testkit.WaitFor(t, 10*time.Second, "the backoff", func() bool { return waiting(r.books()) })
	b := r.books()
	if d := time.Until(b.BackoffUntil); d < 50*time.Second || d > time.Minute {
		t.Errorf("backing off until %v from now, want about a minute", d)
	}
	if !r.ask(t, RequestStop) {
		t.Error("a stop of a program in backoff changed nothing")
	}
	if b := r.books(); b.Phase != monitor.Held || !b.BackoffUntil.IsZero() {
		t.Errorf("after a stop in backoff: %v until %v, want held", b.Phase, b.BackoffUntil)
	}
	starts := r.books().Starts
	r.ask(t, RequestStart)
	// It fails again at once; the backoff started over, so that restart is immediate, and
	// only the one after waits.
	testkit.WaitFor(t, 5*time.Second, "two more starts, then the backoff", func() bool {
		b := r.books()
		return b.Starts >= starts+2 && waiting(b)
	})
	if b := r.books(); b.Starts != starts+2 {
		t.Errorf("%d starts after the start asked for, want 2 (one immediate restart, then the backoff)", b.Starts-starts)
	}
}

// TestAskRestartsNotLimited: restarts asked for are not counted against the start limit.
func TestAskRestartsNotLimited(t *testing.T) {
	r := supervise(t, "beat", Options{StartLimit: 2, StartWindow: time.Minute})
	pid := r.beatingPid(t, 0)
	for range 4 {
		r.ask(t, RequestRestart)
		pid = r.beatingPid(t, pid)
	}
	if b := r.books(); b.Phase != monitor.Running || b.Starts != 5 {
		t.Errorf("after 4 restarts with a limit of 2: %v, %d starts; want running, 5", b.Phase, b.Starts)
	}
}

// TestAskEnded: once Run returned (it gave up), Ask and Signal say so.
func TestAskEnded(t *testing.T) {
	r := supervise(t, "exit 1", Options{StartLimit: 1, Backoff: time.Millisecond, BackoffMax: time.Millisecond})
	r.wait(t, 10*time.Second)
	if r.out != GaveUp {
		t.Fatalf("Run = %v, want gave-up", r.out)
	}
	if _, err := r.s.Ask(context.Background(), RequestStart); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Ask after Run: %v, want ErrNotRunning", err)
	}
	if _, err := r.s.Signal(syscall.SIGHUP); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Signal after Run: %v, want ErrNotRunning", err)
	}
}

// books returns the books of r's worker; the zero Books before Run published the object.
func (r *running) books() monitor.Books {
	if w := r.s.Worker(); w != nil {
		return w.Books()
	}
	return monitor.Books{}
}

// TestHeld: with Held, the object is published and the program not started until a start
// request; a stop request meanwhile changes nothing.
func TestHeld(t *testing.T) {
	r := supervise(t, "beat", Options{Held: true})
	testkit.WaitFor(t, 5*time.Second, "held at start", func() bool { return r.books().Phase == monitor.Held })
	if r.ask(t, RequestStop) {
		t.Error("a stop of a program held at start changed something")
	}
	time.Sleep(300 * time.Millisecond) // 6 intervals: still held, not started
	if b := r.books(); b.Phase != monitor.Held || b.Starts != 0 {
		t.Errorf("held at start: phase %v, %d starts; want held, none", b.Phase, b.Starts)
	}
	if _, err := shmobj.Read(r.name); err != nil {
		t.Errorf("the object of a held worker: %v", err)
	}
	if !r.ask(t, RequestStart) {
		t.Error("a start of a program held at start changed nothing")
	}
	r.beatingPid(t, 0)
	if b := r.books(); b.Starts != 1 || b.Restarts != 0 {
		t.Errorf("books %+v: want the first start", b)
	}
}
