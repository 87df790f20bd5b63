package monitor

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
)

// Phase is where a worker is in its life, as its [Worker] sees it.
type Phase uint8

// The phases of a worker. The table in [Worker]'s doc says which event leads from which
// phase to which.
const (
	Idle     Phase = iota // nothing of it runs: not started yet, or waiting (for its pidfile, say)
	Running               // its program runs, or its process is watched: it is checked every interval
	Stopping              // it is being stopped or killed
	Down                  // its run ended; its supervisor has not decided what follows
	Backoff               // it waits to be started again
	GaveUp                // it failed too often: it is not started again
	Finished              // its run ended and its restart policy does not start it again
	Held                  // it was stopped on request (shmmon ctl stop) and stays so until started again: "stopped"
)

var phaseNames = [...]string{"idle", "running", "stopping", "down", "backoff", "gave-up", "finished", "stopped"}

// String returns the phase's name: "idle", "running", "stopping", "down", "backoff",
// "gave-up", "finished" or "stopped".
func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", p)
}

// End says how a run ended.
type End uint8

// The ends of a run.
const (
	EndExit       End = iota + 1 // it ended by itself; how (its status) is told apart
	EndHung                      // it was killed as hung (an abnormal verdict)
	EndTrigger                   // it was killed because it asked to be (WATCHDOG=trigger)
	EndMainExit                  // its main process (MAINPID=) ended, and it was stopped
	EndRestart                   // it was stopped to be started again at once (a restart request)
	EndStop                      // it was stopped because its supervision stopped
	EndNotStarted                // it could not be started
	EndLimit                     // it was stopped because it went over a resource limit (a failure)
	EndHold                      // it was stopped on request, to stay stopped until started again
)

// endWords are the ends as the log lines' reason attribute names them.
var endWords = [...]string{EndExit: "exit", EndHung: "kill", EndTrigger: "trigger", EndMainExit: "main-exit",
	EndRestart: "restart", EndStop: "stop", EndNotStarted: "start-failed", EndLimit: "limit", EndHold: "stop-request"}

// String returns the end as the logs name it: "exit", "kill", "trigger", "main-exit",
// "restart", "stop", "start-failed", "limit" or "stop-request".
func (e End) String() string {
	if int(e) < len(endWords) && endWords[e] != "" {
		return endWords[e]
	}
	return fmt.Sprintf("end(%d)", e)
}

// Killed reports whether the run ended in a kill of a hung worker (a hang, or a trigger).
func (e End) Killed() bool { return e == EndHung || e == EndTrigger }

// Exit is how a run ended, as its owner tells the [Worker].
type Exit struct {
	End End
	// Status says how the process ended ("exit 0", "signal killed"), when its owner knows;
	// "" for a watched process.
	Status string
	// Failed says whether the run counts as a failure, for the restart policy and the
	// backoff: a kill, the end of a main process, a start that failed, or a status that is
	// not a success.
	Failed  bool
	Sigkill bool          // the kill or stop needed SIGKILL
	Took    time.Duration // how long the kill or stop took
	Ran     time.Duration // how long the run lasted
}

// Start says what began a run (see [Worker.Start]).
type Start uint8

// The starts of a run.
const (
	StartWatch   Start = iota + 1 // a process started elsewhere is watched
	StartNew                      // the program was started (the first time)
	StartAgain                    // the program was started again
	StartAdopted                  // the program a previous monitor started was adopted
)

// Books is what a [Worker] counts and remembers of its worker, as [Worker.Books] returns it.
type Books struct {
	Phase Phase
	Pid   int64 // the process of the running (or stopping) run; 0 when none
	// Starts counts the runs of a supervised program (adoptions included), Restarts those
	// after the first, Kills the kills of a hung worker.
	Starts, Restarts, Kills uint64
	// LastExit says how the last run ended ("exit 0", "signal killed", "exited" for a
	// watched process, "killed" when its status is unknown); "" before the first end.
	LastExit   string
	LastExitAt time.Time
	Since      time.Time // when the current run began (valid while Checking)
	Abnormal   bool      // the worker was judged hung: a kill may take kill_after and more
	// Ready is true once the current run is ready, until it ends: its program said READY=1
	// (notify), its heartbeat advanced for the first time (a first beat, a first record
	// update), or — a worker without a hang verdict (heartbeat "none") — it was started.
	Ready bool

	// What a worker with resource limits used at its last limit check ([Worker.CheckLimits]):
	// resident memory in bytes, and CPU in cores (1.5 = 150%) over the last stalls intervals
	// (CPUKnown false until two measures of the run); Measured is when, zero before the first
	// measure of the run.
	Memory   int64
	CPU      float64
	CPUKnown bool
	Measured time.Time
	// LimitKills counts the runs stopped for going over a limit, OOMKills the processes the
	// kernel's OOM killer killed in the worker's cgroup.
	LimitKills, OOMKills uint64
	// Cgroup is the cgroup of the current run ("/shmmon/db", see package cgroup); "" when it
	// has none: its process group is all there is.
	Cgroup string

	// BackoffUntil is when a worker in [Backoff] is started again; the zero time otherwise.
	BackoffUntil time.Time
}

// Checking reports whether the worker's loop checks its heartbeat now: a run is under way
// (running, or being stopped) and judged.
func (b Books) Checking() bool { return b.Phase == Running || b.Phase == Stopping }

// Worker is one worker as its monitor owns it: its published object (the status record only
// the Worker writes), the check rules that judge its sequence, where it is in its life
// ([Phase]), and what happened to it ([Books]). Every change of its phase goes through one
// method, announce, which writes the record, counts, logs one line and tells the observer
// ([Options.OnEvent]: hooks, metrics):
//
//	event                      from                         to        record    observer
//	Start (watch)              idle, down, backoff, held    running   waiting   -
//	Start (new, again, adopt)  idle, down, backoff, held    running   waiting   start, restart
//	Check: stall, abnormal     running                      running   stalled…  stall, abnormal
//	Trigger                    running                      running   abnormal  abnormal
//	Kill, Stop                 running                      stopping  -         -
//	CheckLimits: over a limit  running                      running   -         limit
//	OOM                        running, stopping            (same)    -         oom
//	End (a kill)               running, stopping            down      killed    kill
//	End (a limit)              running, stopping            down      killed    -
//	End (otherwise)            running, stopping, idle      down      exited    exit
//	Wait (backoff)             down                         backoff   -         -
//	GiveUp                     down, idle                   gave-up   -         give-up
//	Finish                     down                         finished  -         -
//	Hold                       down, idle, backoff          held      -         -
//
// Its methods are for the worker's owner, the one goroutine at a time that supervises or
// watches it, and are not safe for concurrent use, except [Worker.Beat], [Worker.Pid],
// [Worker.Books] and [Worker.Name], which any goroutine may call.
type Worker struct {
	// The fields every check reads come first, next to the Heartbeat's own (see Heartbeat):
	// at thousands of workers a check costs what it touches in memory.
	judged     bool // false: no hang verdict (heartbeat "none"): never checked
	prev       shmobj.State
	supervised bool // a supervised program (its lines and events), not a watched process
	h          Heartbeat
	log        *slog.Logger
	lim        *limiter // nil without limits
	breach     *Breach  // the limit the current run went over; nil when none

	mu    sync.Mutex // guards books
	books Books
}

// WorkerOptions are the options of [OpenWorker] beyond the object's.
type WorkerOptions struct {
	// Supervised says the Worker's runs are a program its owner starts (rather than a process
	// started elsewhere, watched): it gets start and restart events and the supervisor's log
	// lines.
	Supervised bool
	// Adopt takes over an existing object instead of replacing it (see [shmobj.Adopt]).
	Adopt bool
	// Kind is how the worker's beats arrive, recorded in the object; 0 is shm.
	Kind shmobj.Kind
	// Books are the counts to go on from (Starts, Restarts, Kills, LastExit, LastExitAt):
	// those of the worker's previous Worker, when its monitor replaced it (a new
	// configuration, a watched worker's next process).
	Books Books
	// Logger receives the worker's lines; nil means slog.Default().
	Logger *slog.Logger
}

// OpenWorker publishes (or, with Adopt, adopts) the object name for a worker judged by opts,
// at now. An invalid opts, an object another running shmmon watches ([ErrWatched]) and an
// object that cannot be published are errors; with Adopt, the [shmobj.Adoption] says whether
// the object was adopted, what its record held then, or why it was not.
func OpenWorker(name string, opts Options, wo WorkerOptions, now time.Time) (*Worker, shmobj.Adoption, error) {
	w := &Worker{log: wo.Logger, supervised: wo.Supervised, judged: true,
		books: Books{Starts: wo.Books.Starts, Restarts: wo.Books.Restarts, Kills: wo.Books.Kills,
			LastExit: wo.Books.LastExit, LastExitAt: wo.Books.LastExitAt,
			LimitKills: wo.Books.LimitKills, OOMKills: wo.Books.OOMKills}}
	a, err := w.h.open(name, opts, wo.Adopt, now)
	if err != nil {
		return nil, a, err
	}
	if opts.Limits.Any() {
		w.lim = newLimiter(opts.Limits, w.h.chk.Config().Stalls)
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	w.h.seg.SetKind(wo.Kind)
	w.prev = w.h.chk.State()
	return w, a, nil
}

// Name returns the worker's object name.
func (w *Worker) Name() string { return w.h.name }

// Pid returns the process of the current run (the watched one, or the program's, or its
// main process), 0 when no run is under way. Any goroutine may call it.
func (w *Worker) Pid() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.books.Checking() {
		return 0
	}
	return w.books.Pid
}

// Books returns what the Worker counts. Any goroutine may call it.
func (w *Worker) Books() Books {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.books
}

// Interval returns the check interval now in force.
func (w *Worker) Interval() time.Duration { return w.h.chk.cfg.Interval }

// Judged reports whether the worker has a hang verdict (it is checked).
func (w *Worker) Judged() bool { return w.judged }

// Unjudge turns the worker's hang verdict off (heartbeat "none"): it is not checked, and its
// record says running while a run lasts. Call it before the first [Worker.Start].
func (w *Worker) Unjudge() { w.judged = false }

// ResetWorker starts the object's worker half over (sequence 0, no pid), as before a new
// program starts: the last program's count must not stand in for the new one's first beat.
func (w *Worker) ResetWorker() { w.h.seg.ResetWorker(0) }

// Republish publishes the object anew at now, as when what an adopted object's record said
// is not to be trusted: the rules start over, and the old object's sequence no longer counts.
func (w *Worker) Republish(now time.Time) error { return w.h.republish(now) }

// Heartbeat returns the worker's heartbeat: its object and check rules, for a benchmark or a
// test of the checks. Its record is the Worker's to write.
func (w *Worker) Heartbeat() *Heartbeat { return &w.h }

// announce moves the worker to phase to and records it in the books with what update does.
func (w *Worker) announce(to Phase, update func(*Books)) {
	w.mu.Lock()
	w.books.Phase = to
	w.books.BackoffUntil = time.Time{}
	if update != nil {
		update(&w.books)
	}
	w.mu.Unlock()
}

// emit tells the observer about an event of the worker at now.
func (w *Worker) emit(kind EventKind, now time.Time, detail string) {
	w.h.opts.emit(Event{Kind: kind, Worker: w.h.name, Pid: w.h.pid(), Seq: w.h.chk.Last(),
		Stalls: w.h.chk.Stalls(), Time: now, Detail: detail})
}

// Start begins a run at now: the process pid (0 = unknown) was started, found or adopted, as
// how says. The rules start over (a new grace, no stalls); the record names pid; a supervised
// start is logged with command and counted, and emits [EventStart] ([EventRestart] for
// [StartAgain], which the record counts as a restart).
func (w *Worker) Start(pid int64, how Start, command string, now time.Time) {
	h := &w.h
	restart := how == StartAgain
	if restart {
		h.seg.AddRestart()
	}
	h.newRun(pid, now)
	if !w.judged {
		h.seg.SetState(shmobj.StateRunning)
	}
	w.prev = h.chk.State()
	w.breach = nil
	if w.lim != nil {
		w.lim.reset()
	}
	w.announce(Running, func(b *Books) {
		b.Pid, b.Since, b.Abnormal, b.Ready = pid, now, false, false
		b.Memory, b.CPU, b.CPUKnown, b.Measured = 0, 0, false, time.Time{}
		if w.supervised {
			b.Starts++
			if restart {
				b.Restarts++
			}
		}
	})
	if !w.supervised {
		return
	}
	if how == StartAdopted {
		w.log.Info("adopted", "worker", h.name, "pid", pid, "event", "adopt", "command", command)
	} else {
		w.log.Info("started", "worker", h.name, "pid", pid, "event", "start", "command", command)
	}
	if restart {
		w.emit(EventRestart, now, "")
	} else {
		w.emit(EventStart, now, "")
	}
	if !w.judged {
		w.ready(now)
	}
}

// ready marks the current run ready (see [Books.Ready]) and emits [EventReady], once a run.
func (w *Worker) ready(now time.Time) {
	w.mu.Lock()
	was := w.books.Ready
	w.books.Ready = w.books.Checking()
	is := w.books.Ready
	w.mu.Unlock()
	if !was && is {
		w.emit(EventReady, now, "")
	}
}

// Check is one check of the worker at now (see [Heartbeat.Check] and the package doc): it
// verifies the object, judges the sequence, writes the record, and logs and emits the
// worker's change of state ([EventStall], [EventAbnormal]). A worker without a hang verdict
// is not checked (OK).
func (w *Worker) Check(now time.Time) Result {
	if !w.judged {
		return OK
	}
	r := w.h.step(now, w.log)
	if st := w.h.chk.State(); st != w.prev {
		w.logState(w.prev, r, now)
		switch st {
		case shmobj.StateOK:
			w.ready(now) // once a run: the first progress
		case shmobj.StateStalled:
			w.emit(EventStall, now, "")
		case shmobj.StateAbnormal:
			w.mu.Lock()
			w.books.Abnormal = true
			w.mu.Unlock()
			w.emit(EventAbnormal, now, "")
		}
		w.prev = st
	}
	return r
}

// logState writes the line of a change of state.
func (w *Worker) logState(from shmobj.State, r Result, now time.Time) {
	c := &w.h.chk
	st := c.State()
	attrs := []any{"worker", w.h.name, "pid", w.h.pid(), "seq", c.Last(),
		"stalls", fmt.Sprintf("%d/%d", c.Stalls(), c.Config().Stalls), "state", st, "from", from, "verdict", int(r)}
	switch st {
	case shmobj.StateOK, shmobj.StateWaiting:
		w.log.Info("state change", attrs...)
	case shmobj.StateStalled:
		w.log.Warn("state change", append(attrs, "stalled_for", c.StalledFor(now).Round(time.Millisecond))...)
	default:
		w.log.Error("state change", append(attrs, "stalled_for", c.StalledFor(now).Round(time.Millisecond))...)
	}
}

// Trigger makes the worker abnormal now, as its WATCHDOG=trigger asks: the state is recorded
// and logged, and an [EventAbnormal] is emitted; its owner kills it next.
func (w *Worker) Trigger(now time.Time) {
	w.h.chk.Trigger()
	w.h.seg.SetState(shmobj.StateAbnormal)
	if w.prev != shmobj.StateAbnormal {
		w.logState(w.prev, Abnormal, now)
		w.mu.Lock()
		w.books.Abnormal = true
		w.mu.Unlock()
		w.emit(EventAbnormal, now, "trigger")
		w.prev = shmobj.StateAbnormal
	}
}

// Terminate runs the kill escalation on p for the end why (a hang or a trigger: a kill;
// otherwise a stop), logging each step; group signals p's whole process group. It moves the
// worker to [Stopping]; [Worker.End] tells how the run ended. A supervised worker's kill is
// announced first ("killing hung worker").
func (w *Worker) Terminate(ctx context.Context, p *proc.Process, why End, opts proc.TerminateOptions, now time.Time) (proc.Termination, error) {
	c := &w.h.chk
	if w.supervised && why.Killed() {
		msg := "killing hung worker"
		if why == EndTrigger {
			msg = "killing worker: its watchdog trigger"
		}
		w.log.Warn(msg, "worker", w.h.name, "pid", p.Pid(), "event", why.String(),
			"seq", c.Last(), "stalled_for", c.StalledFor(now).Round(time.Millisecond))
	}
	w.announce(Stopping, nil)
	opts.Log = w.KillSteps(why, now)
	return p.Terminate(ctx, opts)
}

// KillSteps returns the logger of a kill escalation's steps (see proc.TerminateOptions.Log)
// for the end why, at now: one line per step with the worker, the step, the reason, and,
// for a kill, the last sequence and how long it stood still.
func (w *Worker) KillSteps(why End, now time.Time, more ...any) func(step string, attrs ...any) {
	base := []any{"worker", w.h.name}
	tail := more
	if why.Killed() {
		c := &w.h.chk
		tail = append([]any{"seq", c.Last(), "stalled_for", c.StalledFor(now).Round(time.Millisecond)}, more...)
	}
	return func(step string, attrs ...any) {
		line := append(append(append(append([]any{}, base...), "event", step, "reason", why.String()), tail...), attrs...)
		w.log.Warn("kill step", line...)
	}
}

// End ends the run as x says, at now: the record's state becomes killed or exited, a kill is
// counted, the end is logged and the observer gets [EventKill] or [EventExit] (a stop or a
// restart request, which are the owner's doing, get none; nor does the end of a run over a
// limit, [EndLimit], whose [EventLimit] came with the verdict: it is counted in LimitKills).
func (w *Worker) End(x Exit, now time.Time) {
	h := &w.h
	pid := h.pid()
	killed := x.End.Killed()
	limited := x.End == EndLimit
	switch {
	case killed:
		h.seg.AddKill()
		h.seg.SetState(shmobj.StateKilled)
	case limited:
		h.seg.SetState(shmobj.StateKilled)
	default:
		h.seg.SetState(shmobj.StateExited)
	}
	w.prev = h.chk.State()
	switch {
	case !w.supervised && limited:
		w.log.Warn("state change", "worker", h.name, "pid", pid, "state", shmobj.StateKilled,
			"event", "killed", "reason", x.End.String(), "sigkill", x.Sigkill, "took", x.Took.Round(time.Millisecond))
	case !w.supervised && killed:
		w.log.Warn("state change", "worker", h.name, "seq", h.chk.Last(), "stalled_for",
			h.chk.StalledFor(now).Round(time.Millisecond), "pid", pid, "state", shmobj.StateKilled,
			"event", "killed", "sigkill", x.Sigkill, "took", x.Took.Round(time.Millisecond))
	case !w.supervised:
		w.log.Info("state change", "worker", h.name, "pid", pid, "seq", h.chk.Last(),
			"state", shmobj.StateExited, "event", "exited")
	case x.End == EndNotStarted:
		// the owner logged why, with the error
	case x.End == EndExit:
		lvl := slog.LevelInfo
		if x.Failed {
			lvl = slog.LevelWarn
		}
		w.log.Log(context.Background(), lvl, "worker ended", "worker", h.name, "pid", pid, "event", "exit",
			"status", x.Status, "ran", x.Ran.Round(time.Millisecond))
	default:
		w.log.Info("worker ended", "worker", h.name, "pid", pid, "event", "exit", "reason", x.End.String(),
			"status", x.Status, "sigkill", x.Sigkill)
	}
	// What the observer hears, and the books' last exit: how it ended.
	kind, detail := EventExit, ""
	switch {
	case killed:
		kind, detail = EventKill, x.Status
	case limited:
		// The observer heard of it at the verdict (EventLimit); the books say how it ended.
		kind, detail = "", "over the limit"
		if w.breach != nil {
			detail = "over the " + string(w.breach.Resource) + " limit"
		}
		if x.Status != "" {
			detail += ": " + x.Status
		}
	case !w.supervised:
		detail = "exited"
	case x.End == EndMainExit:
		detail = fmt.Sprintf("main process %d ended", pid)
	case x.End == EndExit:
		detail = x.Status
	default:
		kind = ""
	}
	w.announce(Down, func(b *Books) {
		b.Abnormal, b.Ready, b.Cgroup = false, false, ""
		if killed {
			b.Kills++
		}
		if limited {
			b.LimitKills++
		}
		if kind != "" || limited {
			b.LastExit, b.LastExitAt = cmp.Or(detail, "killed"), now
		}
	})
	if kind != "" {
		w.emit(kind, now, detail)
	}
}

// Limited reports whether the worker has resource limits, which [Worker.CheckLimits] judges.
func (w *Worker) Limited() bool { return w.lim != nil }

// CheckLimits measures the worker's processes with meter at now, as its owner does once per
// check interval next to [Worker.Check], and judges the measure against its limits (see
// [Limits]; a worker with a heartbeat is judged from its first beat on, as the startup
// grace covers its start): the books keep it, and when the worker went over a limit — memory over its
// limit at stalls checks in a row, CPU over its limit on average over the last stalls
// intervals — the breach is logged (event=limit, with the resource, its value and limit),
// the observer gets [EventLimit], and CheckLimits returns it with true: the owner stops the
// worker ([Worker.Terminate] and [Worker.End] with [EndLimit]). A worker without limits is
// not measured (meter is not called); a measure that fails (the process just ended) is
// skipped.
func (w *Worker) CheckLimits(now time.Time, meter Meter) (Breach, bool) {
	if w.lim == nil {
		return Breach{}, false
	}
	u, err := meter()
	if err != nil {
		w.log.Debug("cannot measure the worker", "worker", w.h.name, "err", err)
		return Breach{}, false
	}
	var cpu float64
	var known bool
	var b *Breach
	if w.judged && !w.h.chk.Beaten() {
		// A worker that has not beaten yet is starting up (a burst of CPU, its heap being
		// built), which its startup grace bounds: it is judged from its first beat on.
		w.lim.reset()
	} else {
		cpu, known, b = w.lim.judge(u, now)
	}
	w.mu.Lock()
	w.books.Memory, w.books.CPU, w.books.CPUKnown, w.books.Measured = u.Memory, cpu, known, now
	w.mu.Unlock()
	if w.lim.over == 1 {
		w.log.Warn("over its memory limit", "worker", w.h.name, "pid", w.h.pid(), "event", "over-limit",
			"resource", ResourceMemory, "value", u.Memory, "limit", w.lim.lim.MemoryMax,
			"checks", fmt.Sprintf("1/%d", w.lim.window))
	}
	if b == nil {
		return Breach{}, false
	}
	w.breach = b
	value, limit := any(b.Value), any(b.Limit)
	if b.Resource == ResourceMemory {
		value, limit = int64(b.Value), int64(b.Limit)
	}
	w.log.Error("over its limit: stopping it", "worker", w.h.name, "pid", w.h.pid(), "event", "limit",
		"resource", b.Resource, "value", value, "limit", limit, "breach", b.String())
	w.emit(EventLimit, now, b.String())
	return *b, true
}

// OOM tells that the kernel's OOM killer killed n processes of the worker's cgroup (its
// memory.events), at now: it is logged (event=oom), counted, and the observer gets
// [EventOOM]. The run goes on unless its program was among them.
func (w *Worker) OOM(n uint64, cgroup string, now time.Time) {
	w.log.Error("the kernel's OOM killer killed a process of the worker", "worker", w.h.name, "pid", w.h.pid(),
		"event", "oom", "kills", n, "cgroup", cgroup)
	w.mu.Lock()
	w.books.OOMKills += n
	w.mu.Unlock()
	w.emit(EventOOM, now, fmt.Sprintf("%d process(es) killed by the kernel's OOM killer in %s", n, cgroup))
}

// SetCgroup records the cgroup of the current run (see [Books.Cgroup]); its owner calls it
// after [Worker.Start].
func (w *Worker) SetCgroup(path string) {
	w.mu.Lock()
	w.books.Cgroup = path
	w.mu.Unlock()
}

// Wait tells that the worker waits delay before it is started again, after failures failed
// runs in a row: its books say until when ([Books.BackoffUntil]).
func (w *Worker) Wait(delay time.Duration, failures int) {
	w.log.Info("restarting", "worker", w.h.name, "event", "restart-wait", "in", delay, "failures", failures)
	until := time.Now().Add(delay)
	w.announce(Backoff, func(b *Books) { b.BackoffUntil = until })
}

// GiveUp tells that the worker is not started again: it started starts times within window,
// more than limit. The observer gets [EventGiveUp].
func (w *Worker) GiveUp(starts int, window time.Duration, limit int, now time.Time) {
	w.log.Error("giving up", "worker", w.h.name, "event", "give-up", "starts", starts,
		"window", window, "limit", limit)
	w.announce(GaveUp, nil)
	w.emit(EventGiveUp, now, fmt.Sprintf("%d starts within %v", starts, window))
}

// Finish tells that the worker's run ended and its restart policy does not start it again.
func (w *Worker) Finish() { w.announce(Finished, nil) }

// Hold tells that the worker was stopped on request (shmmon ctl stop) and is not started
// again until asked to: the phase is [Held]. Its owner logs the request. After
// [Worker.Close] only the books change (a watched worker's closed watch).
func (w *Worker) Hold() { w.announce(Held, func(b *Books) { b.Pid = 0 }) }

// Idle tells that nothing of the worker runs, as when a watched worker waits for its pidfile.
func (w *Worker) Idle() { w.announce(Idle, func(b *Books) { b.Pid = 0 }) }

// Beat is one heartbeat from a source outside the object (the notify socket, the TCP feed, a
// process-table record): the sequence advances, and the record says the beats arrive as
// kind. Any goroutine may call it; after Close it does nothing.
func (w *Worker) Beat(kind shmobj.Kind) { w.h.beat(kind) }

// Ready ends the startup grace at now and makes the run ready (READY=1; see [Checker.Ready]
// and [Books.Ready]).
func (w *Worker) Ready(now time.Time) {
	w.h.chk.Ready(now)
	w.ready(now)
}

// Extend makes the current wait last at least until now+d (see [Checker.Extend]).
func (w *Worker) Extend(now time.Time, d time.Duration) bool { return w.h.chk.Extend(now, d) }

// Suspend stops judging for at most the grace (STOPPING=1; see [Checker.Suspend]).
func (w *Worker) Suspend(now time.Time) { w.h.chk.Suspend(now) }

// Grace returns the startup grace in force.
func (w *Worker) Grace() time.Duration { return w.h.chk.cfg.Grace }

// SetInterval changes the check interval to d from now on (WATCHDOG_USEC=; see
// [Checker.SetInterval]), in the checker and the record. The owner's ticker must follow.
func (w *Worker) SetInterval(d time.Duration, now time.Time) error { return w.h.setInterval(d, now) }

// SetStatus keeps the worker's status text (STATUS=) in its object. Any goroutine may call
// it; after Close it does nothing.
func (w *Worker) SetStatus(text string) { w.h.setStatus(text) }

// SetMain makes pid the watched process of the run (MAINPID=) in the record, without
// starting the rules over. The run's process ([Worker.Pid]) stays the one it started with:
// the root of its tree.
func (w *Worker) SetMain(pid int64) { w.h.setWatchedPid(pid) }

// Close unmaps the object and, with remove, removes it (see [Heartbeat.Close]). A beat of a
// source after it does nothing.
func (w *Worker) Close(remove bool) error { return w.h.Close(remove) }
