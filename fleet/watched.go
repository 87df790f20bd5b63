package fleet

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/pidfile"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/source"
)

// watched runs one watched-only worker: it watches the process the worker names (a fixed
// pid, or the one its pidfile names) with a started [monitor.Watch], and with a pidfile it
// follows a process that ended (or was killed when it hung) with the next one the file
// names, reading the file again every interval until it names a live process. With a fixed
// pid, watching ends with the process. It holds no goroutine: the watch runs on the
// monitor's pacer, the retries on a timer.
type watched struct {
	f    *Fleet
	w    *config.Worker
	log  *slog.Logger
	done chan struct{} // closed once stopped: no watch, no timer left
	srcs []source.Source

	cur  atomic.Pointer[monitor.Worker] // the worker of the current (or last) watch
	proc atomic.Pointer[proc.Process]   // the process the current watch watches; nil between watches

	// Used by one attempt, or the end of one watch, at a time:
	lastErr string       // the last "cannot watch" error logged
	file    pidfile.File // what the pidfile said when the current (or last) watch began
	gone    bool         // the process of file has ended: the file is stale until it changes

	// mu guards the state below. At most one of retry, stopWatch, idle and parked is set;
	// none is while an attempt or the end of a watch is under way, which then looks at
	// stopped and held.
	mu        sync.Mutex
	stopped   bool
	retry     *time.Timer // a pending attempt
	stopWatch func()      // stops the running watch
	idle      bool        // the fixed pid is gone: nothing runs until stop
	// held: a control stop asked that nothing be watched until release; parked once nothing
	// runs any more, when parkedCh is closed.
	held, parked bool
	parkedCh     chan struct{}
}

// start joins the worker's heartbeat sources (the TCP watchdog's feeds of its name) for its
// whole life, and makes the first attempt.
func (x *watched) start() {
	x.srcs, _ = source.New(source.Default, x, source.Env{Interval: x.w.Interval, TCP: x.f.tcp, Logger: x.log})
	x.attempt()
}

// finish releases the sources and closes done: nothing of the worker runs any more.
func (x *watched) finish() {
	source.Close(x.srcs)
	close(x.done)
}

// worker returns the worker of the current or last watch; nil before the first.
func (x *watched) worker() *monitor.Worker { return x.cur.Load() }

// Name, Pid and Beat make x the [source.Worker] of its sources: the worker of the watch under
// way, whichever it is.
func (x *watched) Name() string { return x.w.Name }

func (x *watched) Pid() int64 {
	if mw := x.cur.Load(); mw != nil {
		return mw.Pid()
	}
	return 0
}

func (x *watched) Beat(kind shmobj.Kind) {
	if mw := x.cur.Load(); mw != nil {
		mw.Beat(kind)
	}
}

// stop stops the worker; done closes once nothing of it runs.
func (x *watched) stop() {
	x.mu.Lock()
	x.stopped = true
	closeNow, stopWatch := false, x.stopWatch
	switch {
	case x.retry != nil:
		// A timer that already fired is an attempt under way, which will see stopped.
		closeNow = x.retry.Stop()
		x.retry = nil
	case x.idle, x.parked:
		closeNow = true
	}
	x.mu.Unlock()
	if closeNow {
		x.finish()
	}
	if stopWatch != nil {
		stopWatch() // its end (ended) closes done
	}
}

// attempt takes hold of the worker's process and starts watching it, or tries again after
// an interval.
func (x *watched) attempt() {
	x.mu.Lock()
	x.retry = nil
	stopped := x.stopped
	if x.held && !stopped {
		x.park()
		x.mu.Unlock()
		return
	}
	x.mu.Unlock()
	if stopped {
		x.finish()
		return
	}
	p, err := x.process()
	if err != nil {
		if msg := err.Error(); msg != x.lastErr {
			x.logUnavailable(err)
			x.lastErr = msg
		}
		x.later()
		return
	}
	x.lastErr = ""
	wt := &monitor.Watch{
		Name:       x.w.Name,
		Options:    x.f.observe(x.w.Name, x.w.MonitorOptions()),
		Process:    p,
		Signal:     x.w.Signal,
		KillAfter:  x.w.KillAfter,
		DumpSignal: x.w.DumpSignal,
		DumpWait:   x.w.DumpWait,
		Adopt:      true,
		Logger:     x.log,
		Books:      x.f.carry(x.w.Name), // the last watch's, or the last member's
	}
	// mu is held across Start: the watch's end, which may come at once, waits in ended.
	x.mu.Lock()
	stopWatch, err := wt.Start(func(out monitor.Outcome, err error) { x.ended(p, out, err) })
	if mw := wt.Worker(); mw != nil {
		x.cur.Store(mw)
	}
	if err == nil {
		x.proc.Store(p)
	}
	x.stopWatch = stopWatch
	stopped = x.stopped || x.held // held meanwhile: its end parks
	x.mu.Unlock()
	if err != nil {
		x.ended(p, monitor.Stopped, err)
	} else if stopped {
		stopWatch()
	}
}

// ended takes the end of a watch: it stops, waits for stop (a fixed pid is gone), or
// follows the pidfile.
func (x *watched) ended(p *proc.Process, out monitor.Outcome, err error) {
	x.proc.Store(nil)
	x.gone = x.gone || p.Exited()
	p.Close()
	if err != nil {
		x.log.Error("watching", "worker", x.w.Name, "err", err)
	}
	x.mu.Lock()
	x.stopWatch = nil
	stopped, held := x.stopped, x.held && !x.stopped
	switch {
	case held:
		x.park()
	case !stopped && out != monitor.Stopped && x.w.PidFile == "":
		x.idle = true
	}
	idle := x.idle
	x.mu.Unlock()
	switch {
	case held:
	case stopped || out == monitor.Stopped:
		x.finish()
	case idle:
		x.log.Warn("the watched process is gone; nothing more to watch until the config changes", "worker", x.w.Name, "pid", x.w.Pid)
	default:
		x.attempt()
	}
}

// process takes hold of the process the worker names: its pid, or the one its pidfile names
// once package pidfile trusts the file and the process (and, once the file's last process
// has ended, only after the file changed).
func (x *watched) process() (*proc.Process, error) {
	if x.w.PidFile == "" {
		p, err := proc.Open(x.w.Pid)
		if errors.Is(err, proc.ErrNotExist) {
			return nil, fmt.Errorf("pid %d: no such process", x.w.Pid)
		}
		return p, err
	}
	var (
		p   *proc.Process
		f   pidfile.File
		err error
	)
	if x.gone {
		p, f, err = pidfile.OpenAfter(x.w.PidFile, x.file)
	} else {
		p, f, err = pidfile.Open(x.w.PidFile)
	}
	if err == nil {
		x.file, x.gone = f, false
	}
	return p, err
}

// logUnavailable logs why the worker's process cannot be watched now: a pidfile that breaks a
// trust rule of package pidfile is refused (event pidfile-refused), anything else is
// unavailable for now (event pid-unavailable, a pidfile naming nothing yet, say). Both are
// tried again every interval; nothing is signalled.
func (x *watched) logUnavailable(err error) {
	var pe *pidfile.Error
	if errors.Is(err, pidfile.ErrUntrusted) && errors.As(err, &pe) {
		attrs := []any{"worker", x.w.Name, "event", "pidfile-refused", "pidfile", pe.Path}
		if pe.Owner >= 0 {
			attrs = append(attrs, "owner_uid", pe.Owner)
		}
		if pe.Pid > 0 {
			attrs = append(attrs, "pid", pe.Pid)
		}
		x.log.Error("pidfile refused: not trusted; retrying", append(attrs, "why", pe.Why)...)
		return
	}
	x.log.Warn("cannot watch the worker's process; retrying", "worker", x.w.Name, "event", "pid-unavailable", "err", err)
}

// later makes the next attempt after an interval, unless the worker is stopped.
func (x *watched) later() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.stopped {
		x.finish()
		return
	}
	if x.held {
		x.park()
		return
	}
	x.retry = time.AfterFunc(x.w.Interval, x.attempt)
}

// hold stops watching, leaving the process alone, until release, and returns once nothing of
// the watch runs; false when it was held already (or is stopped).
func (x *watched) hold() bool {
	x.mu.Lock()
	if x.stopped || x.held {
		x.mu.Unlock()
		return false
	}
	x.held = true
	x.parkedCh = make(chan struct{})
	stopWatch := x.stopWatch
	switch {
	case x.retry != nil:
		// A timer that already fired is an attempt under way, which parks.
		if x.retry.Stop() {
			x.retry = nil
			x.park()
		}
	case x.idle:
		x.idle = false
		x.park()
	}
	parked := x.parkedCh
	x.mu.Unlock()
	if stopWatch != nil {
		stopWatch() // its end (ended) parks
	}
	select {
	case <-parked:
	case <-x.done:
	}
	return true
}

// park records that nothing runs while x is held: the books say stopped. x.mu is held.
func (x *watched) park() {
	x.parked = true
	close(x.parkedCh)
	if mw := x.cur.Load(); mw != nil {
		mw.Hold()
	}
}

// release watches again after hold; false when x was not held (or is stopped).
func (x *watched) release() bool {
	x.mu.Lock()
	if x.stopped || !x.parked {
		x.mu.Unlock()
		return false
	}
	x.held, x.parked = false, false
	x.mu.Unlock()
	x.attempt()
	return true
}

// signal sends sig to the watched process (not its group: the process was started elsewhere,
// and its group may hold processes serve knows nothing of), through the watch's handle.
func (x *watched) signal(sig syscall.Signal) (int, error) {
	p := x.proc.Load()
	if p == nil {
		return 0, errNotWatched
	}
	if err := p.Signal(sig); errors.Is(err, os.ErrProcessDone) || errors.Is(err, os.ErrClosed) {
		return p.Pid(), fmt.Errorf("%w: pid %d has exited", errNotWatched, p.Pid())
	} else if err != nil {
		return p.Pid(), err
	}
	return p.Pid(), nil
}
