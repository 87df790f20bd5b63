package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"syscall"
	"time"

	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
)

// Outcome tells why [Watch.Run] returned.
type Outcome int

// The outcomes of [Watch.Run].
const (
	Stopped Outcome = iota // the context was cancelled
	Exited                 // the watched process ended by itself
	Killed                 // the watched process was hung and was killed
)

// String returns "stopped", "exited" or "killed".
func (o Outcome) String() string {
	switch o {
	case Stopped:
		return "stopped"
	case Exited:
		return "exited"
	case Killed:
		return "killed"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Watch is the watch loop of one object, the engine of `shmmon watch`. Set its fields, then
// call [Watch.Run] once.
type Watch struct {
	Name    string  // object name
	Options Options // object and check parameters

	// Process, when not nil, is the watched worker: it is killed when the verdict is
	// [Abnormal], and Run returns when it exits. Without it, Run only reports.
	Process *proc.Process
	// Signal is the first signal of the kill escalation; 0 means SIGTERM.
	Signal syscall.Signal
	// KillAfter is how long to wait after Signal before SIGKILL; 0 means proc.DefaultKillAfter.
	KillAfter time.Duration
	// Keep leaves the object in place when Run returns; by default it is removed.
	Keep bool
	// Adopt takes over an existing object of the right size instead of replacing it (see
	// [Adopt]), so a restarted monitor keeps the worker's sequence.
	Adopt bool
	// Logger receives one line per state change and per kill step; nil means slog.Default().
	Logger *slog.Logger
}

// Run publishes the object and checks it every interval until ctx is done ([Stopped]), the
// watched process exits by itself ([Exited]) or is killed after an [Abnormal] verdict
// ([Killed]). An object deleted, truncated, replaced or chmodded under it is logged and re-published
// (its workers follow), and its rules start over. Run returns an error only when the object
// cannot be published at the start, or the kill failed. Unless Keep is set, the object is
// removed when Run returns. The checks of every Watch of one interval run on one goroutine
// shared by them, on a grid of slots (a tenth of the interval, at most 50ms), so a check may
// come up to a slot after its interval; the kill runs on Run's own goroutine.
func (w *Watch) Run(ctx context.Context) (Outcome, error) {
	log := w.Logger
	if log == nil {
		log = slog.Default()
	}
	opts := w.Options
	opts.Config = opts.WithDefaults()
	if w.Process != nil {
		opts.WatchedPid = int64(w.Process.Pid())
	}
	var h *Heartbeat
	var err error
	if w.Adopt {
		h, _, err = Adopt(w.Name, opts, time.Now())
	} else {
		h, err = Publish(w.Name, opts, time.Now())
	}
	if err != nil {
		return Stopped, err
	}
	defer func() {
		if err := h.Close(!w.Keep); err != nil {
			log.Error("closing object", "worker", w.Name, "err", err)
		}
	}()
	log.Info("watching", "worker", w.Name, "pid", opts.WatchedPid, "size", h.Segment().Size(),
		"interval", opts.Interval, "stalls", opts.Stalls, "grace", opts.Grace)

	var done <-chan struct{} // never ready without a process
	if w.Process != nil {
		done = w.Process.Done()
	}
	// The checks run on the pacer of the interval; this goroutine waits for their verdict.
	var exited bool
	var abnormal time.Time       // when the check that judged the worker abnormal began
	ended := make(chan struct{}) // closed by the check that ends the watch
	checks := pace(opts.Interval, func(now time.Time) bool {
		if isClosed(done) {
			exited = true
		} else if r := h.Step(now, log); r == Abnormal && w.Process != nil {
			abnormal = now
		} else {
			return false
		}
		close(ended)
		return true
	})
	select {
	case <-ctx.Done():
	case <-ended:
	}
	checks.stop() // no check runs after it: h, exited and abnormal are this goroutine's again
	switch {
	case exited:
		h.Segment().SetState(shmobj.StateExited)
		log.Info("state change", "worker", w.Name, "pid", w.Process.Pid(), "seq", h.Checker().Last(),
			"state", shmobj.StateExited, "event", "exited")
		h.Emit(EventExit, time.Now(), "exited")
		return Exited, nil
	case !abnormal.IsZero():
		return w.kill(ctx, h, log, abnormal)
	}
	log.Info("stopped", "worker", w.Name)
	return Stopped, nil
}

// isClosed reports, without a system call, whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// kill runs the escalation on the hung worker and records it.
func (w *Watch) kill(ctx context.Context, h *Heartbeat, log *slog.Logger, now time.Time) (Outcome, error) {
	c := h.Checker()
	base := []any{"worker", w.Name, "seq", c.Last(), "stalled_for", c.StalledFor(now).Round(time.Millisecond)}
	term, err := w.Process.Terminate(ctx, proc.TerminateOptions{
		Signal:    w.Signal,
		KillAfter: w.KillAfter,
		Log: func(step string, attrs ...any) {
			log.Warn("kill step", append(append(base, "event", step), attrs...)...)
		},
	})
	if !term.Signalled && term.Exited {
		// It ended by itself between the verdict and the signal.
		h.Segment().SetState(shmobj.StateExited)
		h.Emit(EventExit, time.Now(), "exited")
		return Exited, nil
	}
	if err != nil {
		return Stopped, fmt.Errorf("monitor: killing pid %d: %w", w.Process.Pid(), err)
	}
	h.Segment().AddKill()
	h.Segment().SetState(shmobj.StateKilled)
	log.Warn("state change", append(base, "pid", w.Process.Pid(), "state", shmobj.StateKilled,
		"event", "killed", "sigkill", term.Killed, "took", term.Took.Round(time.Millisecond))...)
	h.Emit(EventKill, time.Now(), "")
	return Killed, nil
}
