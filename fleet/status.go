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

// entry is the fleet's view of one configured worker, for Status and the hooks: its current
// configuration, the member that runs it, and the books its last monitor worker left (for the
// next member of its name to go on from). f.bmu guards it.
type entry struct {
	w    *config.Worker // the current configuration: hooks are read from it
	cur  *member        // nil when nothing runs it
	last *monitor.Books // nil until a member of it stopped: kept small while it runs
	// logDropped counts the bytes of output the logs of its last members dropped.
	logDropped int64
	// waiting are the workers its member waits for before it starts (see deps.go); nil when
	// it does not wait.
	waiting []string
}

// logError returns why the log file of e's member cannot be written now, or "".
func (e *entry) logError() string {
	if e.cur != nil && e.cur.sup != nil {
		return e.cur.sup.LogErr()
	}
	return ""
}

// logDroppedNow returns the bytes of output e's worker's logs dropped, its member's included.
func (e *entry) logDroppedNow() int64 {
	n := e.logDropped
	if e.cur != nil && e.cur.sup != nil {
		n += e.cur.sup.LogDropped()
	}
	return n
}

// parked reports whether e's member is held until its dependencies are ready. f.bmu is held
// (the orderer takes bmu, then a member's gmu, too).
func (e *entry) parked() bool {
	if e.cur == nil {
		return false
	}
	e.cur.gmu.Lock()
	defer e.cur.gmu.Unlock()
	return e.cur.gate.parked
}

// books returns the books of e's worker: its monitor worker's, or the last ones it left.
func (e *entry) books() monitor.Books {
	if e.cur != nil {
		if mw := e.cur.worker(); mw != nil {
			return mw.Books()
		}
	}
	if e.last != nil {
		return *e.last
	}
	return monitor.Books{}
}

// WorkerStatus is one worker as [Fleet.Status] reports it: its status record as read from
// its object now, and the fleet's own books.
type WorkerStatus struct {
	Worker   config.Worker   // the worker's configuration
	Snapshot shmobj.Snapshot // its object, read now; the zero Snapshot when Err is set
	Err      error           // the object could not be read (not published yet, or gone)

	// Books are what happened to the worker since this fleet started it: its monitor
	// worker's books (a restart for a configuration change keeps the counts), with what its
	// processes used at its last limit check and its run's cgroup. LastExit is "exited" for a
	// watched process whose status is not known.
	monitor.Books

	// LogDropped counts the bytes of the program's output its log file dropped (see package
	// worklog); 0 without a log. LogError says why the file cannot be written now; "" while
	// it can.
	LogDropped int64
	LogError   string

	// WaitingFor are the workers this one waits for before its program starts (its after and
	// binds_to that are not ready), a dependency that will not be ready without an operator
	// said so: "db (given up)", "db (finished)", "db (stopped)"; empty while it is being
	// started; nil when it does not wait.
	WaitingFor []string
	// Parked is true while the worker's program is held until its dependencies are ready (the
	// fleet starts it then: phase [monitor.Held], as a worker stopped by shmmon ctl, which is
	// not parked).
	Parked bool

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

// DownForGood reports whether nothing will run the worker again until someone acts: its
// supervisor gave up on it, its restart policy does not start it again after a run that
// failed (killed as hung, over a limit, a crash, a non-zero exit), it was stopped with
// shmmon ctl stop, or it is a watched worker of a fixed pid whose process is gone. A worker
// that runs, waits in a backoff or for its dependencies ([WorkerStatus.Parked]), is being
// restarted, or finished a run that succeeded (exit 0) is not down for good. It is the
// answer of /healthz/NAME.
func (s WorkerStatus) DownForGood() bool {
	switch s.Phase {
	case monitor.GaveUp:
		return true
	case monitor.Held:
		return !s.Parked // stopped by ctl, not waiting for its dependencies
	case monitor.Finished:
		return s.LastExit != "exit 0"
	case monitor.Down, monitor.Idle:
		return !s.Worker.Supervised() && s.Worker.Pid != 0 && s.LastExit != ""
	}
	return false
}

// ReadyNow reports whether the worker counts as ready for /readyz: its current run is
// ready ([monitor.Books.Ready]: READY=1, its first beat, or started for heartbeat "none"),
// or it is a periodic job (every), which runs only now and then and never holds readiness
// back.
func (s WorkerStatus) ReadyNow() bool { return s.Ready || s.Worker.Every > 0 }

// Status returns every configured worker, sorted by name. It reads each worker's object and
// takes only the fleet's short bookkeeping lock, so it answers while a reload waits for
// workers to stop.
func (f *Fleet) Status() []WorkerStatus {
	f.bmu.Lock()
	out := make([]WorkerStatus, 0, len(f.entries))
	for _, e := range f.entries {
		b := e.books()
		allow := max(3*e.w.Interval, LateFloor)
		if b.Abnormal || b.Phase == monitor.Stopping {
			allow += e.w.KillAfter + proc.KillWait
		}
		out = append(out, WorkerStatus{Worker: *e.w, Books: b, Checking: b.Checking() && judged(e.w), LastCheck: b.Since,
			Deadline: b.Since.Add(allow), LogDropped: e.logDroppedNow(), LogError: e.logError(), WaitingFor: slices.Clone(e.waiting),
			Parked: e.parked()})
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

// judged reports whether w's loop checks its heartbeat while it runs (not heartbeat "none").
func judged(w *config.Worker) bool { return w.Heartbeat != "none" }

// keepEntries keeps the entries of the workers in want (updating their configuration,
// making entries for new ones) and drops the others.
func (f *Fleet) keepEntries(want map[string]*config.Worker) {
	f.bmu.Lock()
	defer f.bmu.Unlock()
	for name := range f.entries {
		if _, ok := want[name]; !ok {
			delete(f.entries, name)
		}
	}
	for name, w := range want {
		if e, ok := f.entries[name]; ok {
			e.w = w
		} else {
			f.entries[name] = &entry{w: w}
		}
	}
}

// carry returns the books the next worker of name goes on from.
func (f *Fleet) carry(name string) monitor.Books {
	f.bmu.Lock()
	defer f.bmu.Unlock()
	if e := f.entries[name]; e != nil {
		return e.books()
	}
	return monitor.Books{}
}

// track makes m the member that runs the worker of name.
func (f *Fleet) track(name string, m *member) {
	f.bmu.Lock()
	defer f.bmu.Unlock()
	if e := f.entries[name]; e != nil {
		e.cur = m
	}
}

// observe returns opts with the fleet's callbacks for worker name: its hooks and the check
// observer.
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

// event runs the worker's hook for e, if it has one, in the background, and has the orderer
// look at the dependencies, whose readiness e may change.
func (f *Fleet) event(name string, e monitor.Event) {
	f.deps.poke()
	f.bmu.Lock()
	en := f.entries[name]
	if en == nil {
		f.bmu.Unlock()
		return
	}
	w := en.w
	f.bmu.Unlock()
	var command string
	switch e.Kind {
	case monitor.EventRestart:
		command = w.OnRestart
	case monitor.EventStall:
		command = w.OnStall
	case monitor.EventAbnormal:
		command = w.OnAbnormal
	case monitor.EventKill:
		command = w.OnKill
	case monitor.EventGiveUp:
		command = w.OnGiveUp
	case monitor.EventLimit, monitor.EventOOM:
		command = w.OnLimit
	case monitor.EventStarved:
		command = w.OnStarved
	}
	f.hooks.Run(command, w.HookTimeout, e)
}
