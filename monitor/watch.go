package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shmmon/shmmon/proc"
)

// Outcome tells why [Watch.Run] returned.
type Outcome int

// The outcomes of [Watch.Run].
const (
	Stopped   Outcome = iota // the context was cancelled
	Exited                   // the watched process ended by itself
	Killed                   // the watched process was hung and was killed
	OverLimit                // the watched process went over a resource limit and was killed
)

// String returns "stopped", "exited", "killed" or "over-limit".
func (o Outcome) String() string {
	switch o {
	case Stopped:
		return "stopped"
	case Exited:
		return "exited"
	case Killed:
		return "killed"
	case OverLimit:
		return "over-limit"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Watch is the watch loop of one object, the engine of `shmmon watch`. Set its fields, then
// call [Watch.Run] once.
type Watch struct {
	Name    string  // object name
	Options Options // object and check parameters

	// Process, when not nil, is the watched worker: it is killed when the verdict is
	// [Abnormal], or when its tree goes over Options.Limits (proc.TreeUsage, measured once per
	// check), and Run returns when it exits. Without it, Run only reports, and measures
	// nothing.
	Process *proc.Process
	// Signal is the first signal of the kill escalation; 0 means SIGTERM.
	Signal syscall.Signal
	// KillAfter is how long to wait after Signal before SIGKILL; 0 means proc.DefaultKillAfter.
	KillAfter time.Duration
	// DumpSignal, when not zero, is sent to a hung process before Signal, and DumpWait (0:
	// proc.DefaultDumpWait) waited for it to end by itself (see proc.TerminateOptions.Dump).
	DumpSignal syscall.Signal
	DumpWait   time.Duration
	// Keep leaves the object in place when Run returns; by default it is removed.
	Keep bool
	// Adopt takes over an existing object of the right size instead of replacing it (see
	// [shmobj.Adopt]), so a restarted monitor keeps the worker's sequence.
	Adopt bool
	// Logger receives one line per state change and per kill step; nil means slog.Default().
	Logger *slog.Logger
	// Books are the counts the watch's worker goes on from (see [WorkerOptions.Books]).
	Books Books

	mw atomic.Pointer[Worker] // the worker, once started
}

// Worker returns the watch's worker once [Watch.Start] published the object, else nil; after
// the watch ended, the closed worker, whose books stay readable. Any goroutine may call it.
func (w *Watch) Worker() *Worker { return w.mw.Load() }

// Run publishes the object and checks it every interval until ctx is done ([Stopped]), the
// watched process exits by itself ([Exited]) or is killed after an [Abnormal] verdict
// ([Killed]) or for going over a limit ([OverLimit]). An object deleted, truncated, replaced or chmodded under it is logged and re-published
// (its workers follow), and its rules start over. Run returns an error only when the object
// cannot be published at the start, or the kill failed. Unless Keep is set, the object is
// removed when Run returns. Run is [Watch.Start] and a wait for its end.
func (w *Watch) Run(ctx context.Context) (Outcome, error) {
	type result struct {
		out Outcome
		err error
	}
	ended := make(chan result, 1)
	stop, err := w.Start(func(out Outcome, err error) { ended <- result{out, err} })
	if err != nil {
		return Stopped, err
	}
	defer context.AfterFunc(ctx, stop)()
	r := <-ended
	return r.out, r.err
}

// Start is [Watch.Run] without the wait: it publishes the object, starts the checks and
// returns stop, holding no goroutine while the watch lasts. Calling stop is what cancelling
// Run's context is: the watch ends [Stopped], or a kill under way is cut short; once the
// watch has ended, stop does nothing. The checks of every Watch of one
// interval run on one goroutine shared by them, on a grid of slots (a tenth of the interval,
// at most 50ms), so a check may come up to a slot after its interval. The end — stop, the
// process's exit (seen at once, not at the next check), or an [Abnormal] verdict, whose kill
// runs then — is handled on a goroutine of its own (never inside Start or stop), which calls
// done once with what Run would return. When the object cannot be published, Start returns
// the error and never calls done.
func (w *Watch) Start(done func(Outcome, error)) (stop func(), err error) {
	log := w.Logger
	if log == nil {
		log = slog.Default()
	}
	opts := w.Options
	opts.Config = opts.WithDefaults()
	if w.Process != nil {
		opts.WatchedPid = int64(w.Process.Pid())
	}
	mw, a, err := OpenWorker(w.Name, opts, WorkerOptions{Adopt: w.Adopt, Logger: log, Books: w.Books}, time.Now())
	if err != nil {
		return nil, err
	}
	w.mw.Store(mw)
	if a.Refused != nil {
		log.Warn("not adopting the object; published a new one", "worker", w.Name, "event", "adopt-refused", "why", a.Refused)
	}
	log.Info("watching", "worker", w.Name, "pid", opts.WatchedPid, "size", mw.h.seg.Size(),
		"interval", opts.Interval, "stalls", opts.Stalls, "grace", opts.Grace)
	mw.Start(opts.WatchedPid, StartWatch, "", time.Now())
	r := &watchRun{p: w.Process, term: proc.TerminateOptions{Signal: w.Signal, KillAfter: w.KillAfter,
		Dump: w.DumpSignal, DumpWait: w.DumpWait}, keep: w.Keep,
		mw: mw, done: done}
	if p := w.Process; p != nil && mw.Limited() {
		r.meter = func() (proc.Usage, error) { return proc.TreeUsage(p.Pid()) }
	}
	r.mu.Lock() // finish waits for the fields below
	defer r.mu.Unlock()
	r.checks = pace(opts.Interval, r.check, opts.OnCheck)
	if w.Process != nil {
		r.stopExit = w.Process.AfterExit(func() { r.end(endExit) })
	}
	return r.stop, nil
}

// A watchRun is one started [Watch]: its worker, checked on the pacer, and what ends it. It
// copies what it needs of the Watch rather than hold it: a fleet keeps thousands of runs.
type watchRun struct {
	p     *proc.Process // nil: nothing to kill
	term  proc.TerminateOptions
	keep  bool
	mw    *Worker
	done  func(Outcome, error)
	meter Meter // the process's tree, for its limits; nil without limits or a process

	mu       sync.Mutex // held by Start until checks and stopExit are set; guards the rest
	checks   *paced
	stopExit func() bool // nil without a process
	stopping bool        // stop was called
	stopKill func()      // cancels the kill under way; nil when none runs

	ended    atomic.Int32 // the endWhy that won, or 0 while the watch goes on
	abnormal time.Time    // when the check that judged the worker abnormal began
}

// endWhy says what ended a watch.
type endWhy int32

const (
	endStop  endWhy = iota + 1 // stop was called
	endExit                    // the process exited
	endKill                    // the worker was judged abnormal: kill it
	endLimit                   // the worker went over a limit: kill it
)

// check is one check, on the pacer's goroutine; true ends the checks.
func (r *watchRun) check(now time.Time) bool {
	if r.ended.Load() != 0 {
		return true
	}
	why := endKill
	if r.mw.Check(now) != Abnormal || r.p == nil {
		if r.meter == nil {
			return false
		}
		if _, over := r.mw.CheckLimits(now, r.meter); !over {
			return false
		}
		why = endLimit
	}
	r.abnormal = now // read by finish only if this check's end wins
	r.end(why)
	return true
}

// end ends the watch for why, unless something else ended it first, on a goroutine of its
// own.
func (r *watchRun) end(why endWhy) bool {
	if !r.ended.CompareAndSwap(0, int32(why)) {
		return false
	}
	go r.finish(why)
	return true
}

// stop ends the watch, or cuts short the kill under way.
func (r *watchRun) stop() {
	if r.end(endStop) {
		return
	}
	r.mu.Lock()
	r.stopping = true
	cancel := r.stopKill
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// finish stops the checks, handles the end and reports it to done.
func (r *watchRun) finish(why endWhy) {
	r.mu.Lock() // waits for Start to have set them
	checks, stopExit := r.checks, r.stopExit
	r.mu.Unlock()
	checks.stop() // no check runs after it: mw and abnormal are this goroutine's now
	if stopExit != nil {
		stopExit()
	}
	mw := r.mw
	out, err := Stopped, error(nil)
	switch why {
	case endExit:
		mw.End(Exit{End: EndExit}, time.Now())
		out = Exited
	case endKill, endLimit:
		ctx, cancel := context.WithCancel(context.Background())
		r.mu.Lock()
		r.stopKill = cancel
		if r.stopping {
			cancel()
		}
		r.mu.Unlock()
		if why == endKill {
			out, err = r.kill(ctx, EndHung)
		} else {
			out, err = r.kill(ctx, EndLimit)
		}
		cancel()
	default:
		mw.log.Info("stopped", "worker", mw.Name())
	}
	if cerr := mw.Close(!r.keep); cerr != nil {
		mw.log.Error("closing object", "worker", mw.Name(), "err", cerr)
	}
	r.done(out, err)
}

// kill runs the escalation on the hung worker, or the one over a limit (why), and records how
// it ended.
func (r *watchRun) kill(ctx context.Context, why End) (Outcome, error) {
	mw := r.mw
	term, err := mw.Terminate(ctx, r.p, why, r.term, r.abnormal)
	if !term.Signalled && term.Exited {
		// It ended by itself between the verdict and the signal.
		mw.End(Exit{End: EndExit}, time.Now())
		return Exited, nil
	}
	if err != nil {
		return Stopped, fmt.Errorf("monitor: killing pid %d: %w", r.p.Pid(), err)
	}
	mw.End(Exit{End: why, Sigkill: term.Killed, Took: term.Took}, time.Now())
	if why == EndLimit {
		return OverLimit, nil
	}
	return Killed, nil
}
