package fleet

import (
	"slices"
	"strings"
	"time"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
)

// LateFloor is the least time a checking worker loop may go without a check before
// [WorkerStatus.Late] reports it (see [WorkerStatus.Deadline]).
const LateFloor = time.Second

// books is the fleet's record of one worker. f.bmu guards it.
type books struct {
	w                       *config.Worker // the current configuration: hooks are read from it
	starts, restarts, kills uint64
	lastExit                string
	lastExitAt              time.Time
	checking                bool      // the loop checks the heartbeat: a program runs, or a process is watched
	root                    int       // the pid of the program started or the process watched; 0 = none now
	since                   time.Time // when the loop began checking
	abnormal                bool      // judged hung; the kill that follows may take kill_after and more
}

// WorkerStatus is one worker as [Fleet.Status] reports it: its status record as read from
// its object now, and the fleet's own books.
type WorkerStatus struct {
	Worker   config.Worker   // the worker's configuration
	Snapshot shmobj.Snapshot // its object, read now; the zero Snapshot when Err is set
	Err      error           // the object could not be read (not published yet, or gone)

	// Counts of the monitor's events since this fleet started the worker; a restart for a
	// configuration change keeps them.
	Starts   uint64 // the program was started or adopted (restarts included)
	Restarts uint64 // the program was started again
	Kills    uint64 // the worker was killed as hung
	// LastExit says how the last run ended ("exit 0", "exit 1", "signal killed", "exited"
	// for a watched process whose status is not known); "" before the first end.
	LastExit   string
	LastExitAt time.Time

	// Checking is true while the worker's loop checks its heartbeat: a supervised program
	// is running, or a watched process is watched. It is false while the loop legitimately
	// does not check: waiting to restart a program (backoff, a periodic job between runs),
	// after giving up on it, or waiting for a watched worker's pidfile to name a process.
	Checking bool
	// LastCheck is the time of the loop's last check (the status record's, which every
	// check writes), or of the start of the run when it has not checked yet.
	LastCheck time.Time
	// Deadline is when a checking loop that did not check again is late: LastCheck plus
	// the larger of 3 intervals and [LateFloor], plus kill_after and [proc.KillWait] while a
	// hung worker is being killed.
	Deadline time.Time
}

// Late reports whether the worker's loop is checking but missed its deadline at now: the
// monitor of this worker is stuck or starved.
func (s WorkerStatus) Late(now time.Time) bool { return s.Checking && now.After(s.Deadline) }

// Status returns every configured worker, sorted by name. It reads each worker's object and
// takes only the fleet's short bookkeeping lock, so it answers while a reload waits for
// workers to stop.
func (f *Fleet) Status() []WorkerStatus {
	f.bmu.Lock()
	out := make([]WorkerStatus, 0, len(f.books))
	for _, b := range f.books {
		allow := max(3*b.w.Interval, LateFloor)
		if b.abnormal {
			allow += b.w.KillAfter + proc.KillWait
		}
		out = append(out, WorkerStatus{Worker: *b.w, Starts: b.starts, Restarts: b.restarts, Kills: b.kills,
			LastExit: b.lastExit, LastExitAt: b.lastExitAt, Checking: b.checking, LastCheck: b.since,
			Deadline: b.since.Add(allow)})
	}
	f.bmu.Unlock()
	slices.SortFunc(out, func(a, b WorkerStatus) int { return strings.Compare(a.Worker.Name, b.Worker.Name) })
	for i := range out {
		s := &out[i]
		s.Snapshot, s.Err = shmobj.Read(s.Worker.Name)
		if s.Err != nil {
			s.Snapshot = shmobj.Snapshot{}
			continue
		}
		// Every check writes its time into the record: the deadline moves with it.
		if at := time.Unix(0, s.Snapshot.Record.LastCheck); s.Snapshot.HasRecord && at.After(s.LastCheck) {
			s.Deadline = s.Deadline.Add(at.Sub(s.LastCheck))
			s.LastCheck = at
		}
	}
	return out
}

// ObserveChecks makes fn receive every check of every worker's loop, with how long it took
// (see [monitor.Options.OnCheck]); call it before [Fleet.Apply]. fn runs on the worker's
// monitor goroutine and must not block.
func (f *Fleet) ObserveChecks(fn func(worker string, took time.Duration)) {
	f.bmu.Lock()
	defer f.bmu.Unlock()
	f.onCheck = fn
}

// keepBooks keeps the books of the workers in want (updating their configuration, starting
// books for new ones) and drops the others.
func (f *Fleet) keepBooks(want map[string]*config.Worker) {
	f.bmu.Lock()
	defer f.bmu.Unlock()
	for name := range f.books {
		if _, ok := want[name]; !ok {
			delete(f.books, name)
		}
	}
	for name, w := range want {
		if b, ok := f.books[name]; ok {
			b.w = w
		} else {
			f.books[name] = &books{w: w}
		}
	}
}

// setChecking records that the loop of worker name begins checking the process pid (the
// root of the worker's tree), or with pid 0 stops checking.
func (f *Fleet) setChecking(name string, pid int) {
	f.bmu.Lock()
	defer f.bmu.Unlock()
	if b := f.books[name]; b != nil {
		b.checking, b.abnormal, b.root = pid != 0, false, pid
		if pid != 0 {
			b.since = time.Now()
		}
	}
}

// observe returns opts with the fleet's callbacks for worker name: its books, its hooks and
// the check observer.
func (f *Fleet) observe(name string, opts monitor.Options) monitor.Options {
	opts.OnEvent = func(e monitor.Event) { f.event(name, e) }
	// The observer is set before any worker starts: a check takes no lock, and without an
	// observer there is no per-check callback at all.
	f.bmu.Lock()
	fn := f.onCheck
	f.bmu.Unlock()
	if fn != nil {
		opts.OnCheck = func(_ time.Time, took time.Duration) { fn(name, took) }
	}
	return opts
}

// event books e and runs the worker's hook for it, if any, in the background.
func (f *Fleet) event(name string, e monitor.Event) {
	f.bmu.Lock()
	b := f.books[name]
	if b == nil {
		f.bmu.Unlock()
		return
	}
	var command string
	switch e.Kind {
	case monitor.EventStart, monitor.EventRestart:
		b.starts++
		// The pid of the program the supervisor has just started (or adopted), which it
		// recorded before the event: not one read from the object, which others may write.
		b.checking, b.abnormal, b.since, b.root = true, false, e.Time, int(e.Pid)
		if e.Kind == monitor.EventRestart {
			b.restarts++
			command = b.w.OnRestart
		}
	case monitor.EventStall:
		command = b.w.OnStall
	case monitor.EventAbnormal:
		b.abnormal = true
		command = b.w.OnAbnormal
	case monitor.EventKill, monitor.EventExit:
		if e.Kind == monitor.EventKill {
			b.kills++
			command = b.w.OnKill
		}
		b.checking, b.abnormal, b.root = false, false, 0
		b.lastExit, b.lastExitAt = e.Detail, e.Time
		if b.lastExit == "" {
			b.lastExit = "killed"
		}
	case monitor.EventGiveUp:
		b.checking, b.root = false, 0
		command = b.w.OnGiveUp
	}
	timeout := b.w.HookTimeout
	f.bmu.Unlock()
	f.hooks.Run(command, timeout, e)
}
