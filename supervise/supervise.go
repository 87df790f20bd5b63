// Package supervise runs one worker program under a heartbeat monitor and keeps it running:
// it owns the program's process (started through proc.StartChild, or adopted) and the restart
// policy; the worker's state, record, counts, log lines and events are its monitor.Worker's,
// which the supervisor tells what happened.
//
// A [Supervisor] publishes the worker's object, makes the sources of its kind of heartbeat
// (Options.Heartbeat, see package source: the object itself with the notify socket and the
// TCP watchdog's feeds, "proctab", or "none"), then starts the program in a process group of
// its own with SHMMON_NAME (the object) and SHMMON_INTERVAL (the check interval, e.g. "1s")
// in its environment, and what its sources add (the notify protocol's handshake), so the
// first beat is never lost; before every start the sequence goes back to 0, so each run gets
// the startup grace. It checks the heartbeat every interval (see package monitor; a worker of
// heartbeat "none" is not checked) and, when the verdict is abnormal, signals the whole group
// (Signal, then SIGKILL after KillAfter). Whenever the program ends — by itself, by a crash,
// or killed as hung — what is left of its group is killed and the program is reaped, so no
// zombie and no orphan of the group stays behind. Then the restart policy decides:
//
//   - [Always] starts it again, [OnFailure] only when it failed (non-zero exit, a signal, or
//     hung), [Never] not at all.
//   - The first restart after a healthy run is immediate; a program that keeps failing waits
//     Backoff, then twice as long each time up to BackoffMax. Running BackoffReset without
//     failing counts as healthy again.
//   - More than StartLimit starts within StartWindow means the program cannot run: the
//     supervisor gives up ([GaveUp]).
//
// With Every set, the program is a periodic job instead (the original framework's
// scheduler): run it, wait for it to end, wait Every, run it again; the heartbeat rules apply
// while it runs and the start limit does not apply.
//
// Resources: the program starts with its Rlimits in place (see proc.ChildOptions). With
// Cgroups, each run has a cgroup of its own (package cgroup): the program starts in it, and
// whenever the run ends everything left in it is killed (cgroup.kill), processes that left
// the program's group with setsid too, before the cgroup is removed; with the controllers
// enabled, Monitor.Limits.MemoryMax sets memory.max and PidsMax pids.max, and the kernel's
// OOM kills there are reported (event=oom; the run's status "signal killed (oom)"). With
// Monitor.Limits, next to each check of the heartbeat the run's processes are measured (its
// cgroup, or the program's process tree) and judged (see monitor.Worker.CheckLimits): a run
// over a limit is stopped as a hung one is, and counts as a failure for the restart policy
// and the backoff.
//
// An operator (shmmon ctl, through package fleet) acts on a running supervisor with
// [Supervisor.Ask]: stop the program and hold it stopped, start it (now, out of a backoff or
// a hold), restart it; such a start is no failure and is not counted against the start
// limit. [Supervisor.Signal] signals the program's group through the child it holds. With
// Options.Log, the program's stdout and stderr are pipes of its log process (package
// worklog), which goes on reading them should shmmon die.
//
// Where things go: a new kind of heartbeat is a file of package source; a new thing that
// happens to a worker is an event of monitor.Worker; a new way for a run to end (a limit,
// say) is a monitor.End that runOnce returns through stop, next to the check of the
// heartbeat.
package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shmmon/shmmon/cgroup"
	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/notify"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/proctab"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/source"
	"github.com/shmmon/shmmon/worker"
	"github.com/shmmon/shmmon/worklog"
)

// EnvInterval is the environment variable that tells a supervised program the check
// interval, in Go's duration syntax ("1s", "250ms"): it should beat at least twice as often.
const EnvInterval = "SHMMON_INTERVAL"

// Options describe the program and how it is supervised. Zero durations and counts mean the
// defaults.
type Options struct {
	Command []string // program and arguments; required
	Env     []string // extra environment, "KEY=VALUE", on top of shmmon's own
	Dir     string   // working directory; "" = shmmon's
	// Credential runs the program as another user (shmmon must be root); nil = shmmon's.
	Credential *syscall.Credential
	Stdout     io.Writer // the program's output; nil = os.Stdout
	Stderr     io.Writer // nil = os.Stderr
	// Log, when its Path is set, is the program's log file instead of Stdout and Stderr (see
	// package worklog: a log process reads the program's pipes and writes the file, and goes
	// on reading them should shmmon die). A log that cannot be opened is logged
	// (event=log-error) and the program writes to Stdout and Stderr.
	Log worklog.Options

	Monitor   monitor.Options // the object and the check rules
	Signal    syscall.Signal  // first signal to a hung program's group; 0 = SIGTERM
	KillAfter time.Duration   // then SIGKILL after this; 0 = proc.DefaultKillAfter

	// Heartbeat is the kind of heartbeat (see package source): "shm" (the default, ""),
	// "proctab" or "none".
	Heartbeat string
	// TCP is the TCP watchdog whose feeds of the program's name beat it (heartbeat "shm");
	// nil when none runs.
	TCP *source.TCP
	// Proctab is the System V process table of heartbeat "proctab".
	Proctab *proctab.Options
	// Books are the counts the supervision goes on from (see monitor.WorkerOptions.Books):
	// those of the worker's previous supervision, when a new configuration replaced it.
	Books monitor.Books

	// Rlimits are the resource limits the program starts with (see proc.ChildOptions).
	Rlimits []proc.Rlimit
	// Cgroups, when set, gives each run of the program a cgroup of its own (see package
	// cgroup): the program starts in it, the end of a run kills everything in it, and with
	// the controllers enabled Monitor.Limits.MemoryMax and PidsMax set memory.max and
	// pids.max. nil: its process group is all there is.
	Cgroups *cgroup.Manager
	// PidsMax is the most processes (and threads) the program's cgroup may hold (pids.max);
	// 0 is no limit. It needs the pids controller; without it, it is logged once and not
	// enforced.
	PidsMax int

	Restart      Policy
	Backoff      time.Duration // delay before the second restart in a row; doubles after
	BackoffMax   time.Duration
	BackoffReset time.Duration // running this long without failing resets the backoff
	StartLimit   int           // more starts than this within StartWindow: give up
	StartWindow  time.Duration
	Every        time.Duration // > 0: a periodic job, run every Every after it ends
	Keep         bool          // leave the object in place when Run returns
	// Adopt takes over what a previous monitor left: an existing object of the right size
	// that this user owns and no one outside Monitor.Mode may write is kept (the sequence
	// with it), and when its record names the process the previous monitor started for it —
	// still alive, leading its own group, running as Credential says, with SHMMON_NAME set
	// to the object, started before the record's last update, and running exactly Command —
	// that process is supervised instead of starting a second one. Anything else is logged
	// (event=adopt-refused) and replaced: a new object, the program started.
	Adopt bool
	// Held makes Run publish the object and wait, held (phase monitor.Held), for a
	// RequestStart or RequestRestart ([Supervisor.Ask]) before it starts the program the first
	// time, as a worker waiting for its dependencies does. A program adopted (Adopt) is not
	// held: it runs already.
	Held bool

	Logger *slog.Logger // nil = slog.Default()
}

// Outcome tells why [Supervisor.Run] returned.
type Outcome int

// The outcomes of Run.
const (
	Stopped  Outcome = iota // the context was cancelled; the program was stopped
	Finished                // the program ended successfully and the policy does not restart it
	Failed                  // the program failed and the policy does not restart it
	Hung                    // the program hung, was killed, and the policy does not restart it
	GaveUp                  // too many starts within the start window
)

// String returns the outcome's name.
func (o Outcome) String() string {
	return [...]string{"stopped", "finished", "failed", "hung", "gave-up"}[o]
}

// Supervisor supervises one program. Create it with [New]; call Run once.
type Supervisor struct {
	name  string
	opts  Options
	log   *slog.Logger
	hup   chan struct{}
	reqs  chan request                   // Ask's requests, taken by Run's loop
	ended chan struct{}                  // closed when Run returns
	w     atomic.Pointer[monitor.Worker] // the worker of Run, once it published the object
	cur   atomic.Pointer[proc.Child]     // the program while a run lasts
	lg    atomic.Pointer[worklog.Log]    // the program's log file, when it has one
}

// Worker returns the worker of the supervision — its books, its current pid — once Run has
// published the object, else nil; after Run returned, the closed worker, whose books stay
// readable. Any goroutine may call it.
func (s *Supervisor) Worker() *monitor.Worker { return s.w.Load() }

// New checks opts and returns a Supervisor for the object name.
func New(name string, opts Options) (*Supervisor, error) {
	if err := shmobj.ValidatePublishName(name); err != nil {
		return nil, err
	}
	if len(opts.Command) == 0 || opts.Command[0] == "" {
		return nil, errors.New("supervise: no command to run")
	}
	if err := opts.Monitor.Validate(); err != nil {
		return nil, err
	}
	opts.Monitor.Config = opts.Monitor.WithDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.WithDefaults()
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Supervisor{name: name, opts: opts, log: log, hup: make(chan struct{}, 1), reqs: make(chan request),
		ended: make(chan struct{})}, nil
}

// Restart asks the running supervisor to stop the program (Signal, then SIGKILL) and start it
// again at once, as on SIGHUP. It does not block; it counts as neither a failure nor a start
// against the limit.
func (s *Supervisor) Restart() {
	select {
	case s.hup <- struct{}{}:
	default:
	}
}

// Request is what an operator asks of a running supervisor (shmmon ctl), through
// [Supervisor.Ask].
type Request int

// The requests.
const (
	// RequestStop stops the program as a stop does (Signal, then SIGKILL after KillAfter) and
	// keeps it stopped (phase monitor.Held) until RequestStart or RequestRestart. A waiting
	// program (backoff, a periodic job between runs) is held at once.
	RequestStop Request = iota + 1
	// RequestStart starts a held or waiting program now, as a start that is not a failure and
	// is not counted against the start limit: the backoff starts over.
	RequestStart
	// RequestRestart stops the program and starts it again at once (a held or waiting one is
	// started), as RequestStart counts it.
	RequestRestart
)

// ErrNotRunning is the error of [Supervisor.Ask] and [Supervisor.Signal] when the
// supervision is over (Run returned, or has not begun), or, for Signal, no program runs.
var ErrNotRunning = errors.New("supervise: not running")

// request is one Ask under way.
type request struct {
	r     Request
	reply chan answer // buffered: the loop never waits for the asker
}

type answer struct {
	changed bool
	err     error
}

// Ask makes the running supervisor do r and waits until it is done: the program stopped
// (held), or a new run started. It reports whether anything changed: false for a stop of a
// program already held, or a start of one that runs. The error is [ErrNotRunning] when Run is
// not running (it ended: the policy gave up or let the program finish), the start's error when
// the program could not be started (it is then started again after its backoff), or ctx's.
func (s *Supervisor) Ask(ctx context.Context, r Request) (changed bool, err error) {
	rq := request{r: r, reply: make(chan answer, 1)}
	select {
	case s.reqs <- rq:
	case <-s.ended:
		return false, ErrNotRunning
	case <-ctx.Done():
		return false, ctx.Err()
	}
	select {
	case a := <-rq.reply:
		return a.changed, a.err
	case <-s.ended:
		return false, ErrNotRunning
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// Signal sends sig to the running program's process group, through the handle that holds the
// program (never a pid read from its object), and returns the program's pid. With no program
// running, or one that has just exited, the error matches [ErrNotRunning].
func (s *Supervisor) Signal(sig syscall.Signal) (int, error) {
	c := s.cur.Load()
	if c == nil {
		return 0, ErrNotRunning
	}
	err := c.SignalGroup(sig)
	if errors.Is(err, os.ErrProcessDone) || errors.Is(err, os.ErrClosed) {
		return c.Pid(), fmt.Errorf("%w: pid %d has exited", ErrNotRunning, c.Pid())
	}
	return c.Pid(), err
}

// LogDropped returns how many bytes of the program's output its log dropped (see package
// worklog); 0 without a log.
func (s *Supervisor) LogDropped() int64 {
	if l := s.lg.Load(); l != nil {
		return l.Dropped()
	}
	return 0
}

// LogErr returns why the program's log file cannot be written now (see package worklog); ""
// while it can, or without a log.
func (s *Supervisor) LogErr() string {
	if l := s.lg.Load(); l != nil {
		return l.Err()
	}
	return ""
}

// supervision is one Run: the worker (its object and state), its sources, and the program.
type supervision struct {
	s    *Supervisor
	w    *monitor.Worker
	srcs []source.Source
	prep []source.Preparer
	poll []source.Poller
	req  source.Requester // nil when no source makes requests
	c    *child           // the running program, for the requests' SetMain
	tick *time.Ticker     // the checks of the running program; nil when not judged nor limited
	told bool             // that pids_max is not enforced was logged
	log  *worklog.Log     // the program's log file; nil when it writes to Stdout and Stderr
	// asked are the requests to answer once the next run has started (a start, a restart),
	// or once the program is held (a stop).
	asked []request
	// startErr is why the last start failed.
	startErr error
}

// answer answers every request asked.
func (sv *supervision) answer(changed bool, err error) {
	for _, rq := range sv.asked {
		rq.reply <- answer{changed, err}
	}
	sv.asked = nil
}

// Run publishes the object and supervises the program until ctx is done (the program is
// stopped, [Stopped]) or the policy ends it ([Finished], [Failed], [Hung], [GaveUp]; GaveUp
// also returns an error saying why). Unless Keep is set, the object is removed when Run
// returns. An error other than for GaveUp means the object could not be published, or the
// heartbeat's sources could not be made.
func (s *Supervisor) Run(ctx context.Context) (Outcome, error) {
	defer close(s.ended)
	w, orphan, err := s.open()
	if err != nil {
		return Stopped, err
	}
	s.w.Store(w)
	defer func() {
		if err := w.Close(!s.opts.Keep); err != nil {
			s.log.Error("closing object", "worker", s.name, "err", err)
		}
	}()
	sv := &supervision{s: s, w: w}
	sv.srcs, err = source.New(s.opts.Heartbeat, w, source.Env{Supervised: true, Interval: s.opts.Monitor.Interval,
		TCP: s.opts.TCP, Proctab: s.opts.Proctab, Logger: s.log})
	if err != nil {
		if orphan != nil {
			orphan.Close()
		}
		return Stopped, err
	}
	defer source.Close(sv.srcs)
	for _, src := range sv.srcs {
		if _, ok := src.(source.Unjudged); ok {
			w.Unjudge()
		}
		if p, ok := src.(source.Preparer); ok {
			sv.prep = append(sv.prep, p)
		}
		if p, ok := src.(source.Poller); ok {
			sv.poll = append(sv.poll, p)
		}
	}
	sv.req, _ = source.Find[source.Requester](sv.srcs)
	if s.opts.Log.Path != "" {
		if sv.log, err = worklog.Open(s.opts.Log, s.name, s.log); err != nil {
			s.log.Error("no log file: the program writes to shmmon's output", "worker", s.name, "event", "log-error",
				"log", s.opts.Log.Path, "err", err)
		} else {
			s.lg.Store(sv.log)
			defer sv.log.Close()
		}
	}
	defer sv.answer(false, ErrNotRunning)
	if s.opts.Held && orphan == nil {
		w.Hold()
		s.log.Info("held: waiting to be started", "worker", s.name, "event", "held-at-start")
		if !sv.awaitStart(ctx) {
			return Stopped, nil
		}
	}
	return sv.run(ctx, orphan)
}

// run is Run's loop of starts.
func (sv *supervision) run(ctx context.Context, orphan *proc.Process) (Outcome, error) {
	s, w := sv.s, sv.w
	var (
		starts    []time.Time // recent starts, for the limit
		failures  int         // failures in a row, for the backoff
		runs      int
		requested bool // this start was asked for with Restart: not counted
	)
	for {
		now := time.Now()
		if s.opts.Every == 0 && !requested {
			starts = recent(append(starts, now), now, s.opts.StartWindow)
			if len(starts) > s.opts.StartLimit {
				w.GiveUp(len(starts), s.opts.StartWindow, s.opts.StartLimit, now)
				return GaveUp, fmt.Errorf("supervise: %s: %d starts within %v (limit %d): giving up",
					s.name, len(starts), s.opts.StartWindow, s.opts.StartLimit)
			}
		}
		how := monitor.StartNew
		if runs > 0 {
			how = monitor.StartAgain
		}
		var c *child
		if orphan != nil {
			c, how, orphan = s.adopt(orphan), monitor.StartAdopted, nil
		} else {
			// A new program starts from sequence 0, whatever writes its beats: the last
			// program's count must not stand in for the new one's first beat, which would
			// take away its startup grace (a slow start would be judged as stalls).
			w.ResetWorker()
			var err error
			if c, err = sv.start(); err != nil {
				s.log.Error("cannot start", "worker", s.name, "event", "start-failed", "command", s.opts.Command[0], "err", err)
				sv.startErr = fmt.Errorf("supervise: %s: cannot start: %w", s.name, err)
			}
		}
		x := monitor.Exit{End: monitor.EndNotStarted, Failed: true}
		if c != nil {
			x = sv.runOnce(ctx, c, how)
		} else {
			w.End(x, time.Now())
			sv.answer(false, sv.startErr)
		}
		runs++
		requested = x.End == monitor.EndRestart
		switch x.End {
		case monitor.EndStop:
			return Stopped, nil
		case monitor.EndRestart:
			failures = 0
			continue
		case monitor.EndHold:
			if !sv.hold(ctx) {
				return Stopped, nil
			}
			failures, starts, requested = 0, nil, true
			continue
		}
		if x.Ran >= s.opts.BackoffReset {
			failures = 0
		}
		var delay time.Duration
		switch {
		case s.opts.Every > 0:
			delay = s.opts.Every
		case s.opts.Restart == Never, s.opts.Restart == OnFailure && !x.Failed:
			w.Finish()
			switch {
			case x.End.Killed():
				return Hung, nil
			case x.Failed:
				return Failed, nil
			}
			return Finished, nil
		case x.Failed:
			failures++
			delay = s.backoff(failures)
		}
		w.Wait(delay, failures)
		switch sv.sleep(ctx, delay) {
		case slept:
		case stopped:
			return Stopped, nil
		case asked:
			failures, starts, requested = 0, nil, true
		case heldThenAsked:
			failures, starts, requested = 0, nil, true
		case heldThenStopped:
			return Stopped, nil
		}
	}
}

// hold keeps the program stopped, after a stop request stopped it: it answers that request,
// then waits for a start or restart request (to answer once the program runs: true) or for
// ctx (false).
func (sv *supervision) hold(ctx context.Context) bool {
	sv.w.Hold()
	sv.answer(true, nil)
	sv.s.log.Info("stopped on request: it stays stopped until started on request", "worker", sv.s.name, "event", "held")
	return sv.awaitStart(ctx)
}

// awaitStart waits, held, for a start or restart request (to answer once the program runs:
// true) or for ctx (false); a stop request changes nothing.
func (sv *supervision) awaitStart(ctx context.Context) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case rq := <-sv.s.reqs:
			if rq.r == RequestStop {
				rq.reply <- answer{false, nil}
				continue
			}
			sv.asked = append(sv.asked, rq)
			return true
		}
	}
}

// backoff returns the delay before the restart that follows the n-th failure in a row: none
// for the first, then Backoff, doubling up to BackoffMax.
func (s *Supervisor) backoff(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	d := s.opts.Backoff
	for i := 2; i < n && d < s.opts.BackoffMax; i++ {
		d *= 2
	}
	return min(d, s.opts.BackoffMax)
}

// How a wait before a start ended (see sleep).
type waited int

const (
	slept           waited = iota // the delay passed, or Restart cut it short
	stopped                       // ctx ended it
	asked                         // a start or restart request cut it short
	heldThenAsked                 // a stop request held the program; then a start request came
	heldThenStopped               // a stop request held the program; then ctx ended
)

// sleep waits d before the next start, unless ctx, Restart or a request cuts it short.
func (sv *supervision) sleep(ctx context.Context, d time.Duration) waited {
	s := sv.s
	if ctx.Err() != nil {
		return stopped
	}
	var expired <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		expired = t.C
	} else {
		c := make(chan time.Time)
		close(c)
		expired = c
	}
	select {
	case <-ctx.Done():
		return stopped
	case <-expired:
	case <-s.hup:
	case rq := <-s.reqs:
		if rq.r != RequestStop {
			sv.asked = append(sv.asked, rq)
			return asked
		}
		sv.asked = append(sv.asked, rq)
		if sv.hold(ctx) {
			return heldThenAsked
		}
		return heldThenStopped
	}
	return slept
}

// recent drops the times older than window before now.
func recent(ts []time.Time, now time.Time, window time.Duration) []time.Time {
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= window {
		i++
	}
	return ts[i:]
}

// open publishes the object, or adopts it with Adopt; it returns the process a previous
// monitor started for the object that this one should adopt (nil for none), held.
func (s *Supervisor) open() (*monitor.Worker, *proc.Process, error) {
	w, a, err := monitor.OpenWorker(s.name, s.opts.Monitor, monitor.WorkerOptions{Supervised: true,
		Adopt: s.opts.Adopt, Kind: source.RecordKind(s.opts.Heartbeat), Logger: s.log, Books: s.opts.Books}, time.Now())
	if err != nil || !s.opts.Adopt {
		return w, nil, err
	}
	if a.Refused != nil {
		s.log.Warn("not adopting the object; published a new one", "worker", s.name, "event", "adopt-refused", "why", a.Refused)
	}
	if !a.Adopted || !a.Prev.HasRecord || a.Prev.Record.WatchedPid == 0 {
		return w, nil, nil
	}
	pid := int(a.Prev.Record.WatchedPid)
	// The pidfd first: the checks then read about the process it holds, not a pid reused
	// meanwhile.
	p, err := proc.Open(pid)
	if err == nil {
		if err = s.previous(p, a.Prev.Record); err != nil {
			p.Close()
		}
	}
	if err != nil {
		s.log.Warn("not adopting the process the object's record names; starting the program", "worker", s.name,
			"pid", pid, "event", "adopt-refused", "why", err)
		if err := w.Republish(time.Now()); err != nil {
			w.Close(false)
			return nil, nil, err
		}
		return w, nil, nil
	}
	if args, err := proc.Cmdline(pid); err == nil && slices.Equal(args, s.opts.Command) {
		return w, p, nil
	}
	// Not the command configured now, but the previous monitor started it for this object:
	// it must go. Left running, it would beat into the object of the program started in its
	// place and hide that program's hangs.
	s.log.Warn("stopping the previous worker: it runs another command", "worker", s.name, "pid", pid, "event", "stop-previous")
	if _, err := p.Terminate(context.Background(), proc.TerminateOptions{Signal: s.opts.Signal, KillAfter: s.opts.KillAfter, Group: true}); err != nil {
		s.log.Error("stopping the previous worker", "worker", s.name, "pid", pid, "err", err)
	}
	p.Close()
	return w, nil, nil
}

// previous returns nil when p, the process the adopted record rec names, is the worker a
// previous monitor started for this object, as far as its configured identity tells: it is
// alive, leads its own process group, runs as the configured user and group (real and
// effective; shmmon's own without a Credential), has SHMMON_NAME=name in its environment,
// and started before the previous monitor's last update of the record. Else it says what
// does not match. The command is the caller's to check: a process that passes all this but
// runs another command is the previous worker of an older config.
func (s *Supervisor) previous(p *proc.Process, rec shmobj.Record) error {
	pid := p.Pid()
	if !proc.LeadsGroup(pid) {
		return fmt.Errorf("pid %d does not lead its process group", pid)
	}
	c, err := p.Credentials()
	if err != nil {
		return err
	}
	type ids struct{ uid, euid, gid, egid uint32 }
	have := ids{c.RealUid, c.Uid, c.RealGid, c.Egid}
	want := ids{uint32(os.Getuid()), uint32(os.Geteuid()), uint32(os.Getgid()), uint32(os.Getegid())}
	if cred := s.opts.Credential; cred != nil {
		want = ids{cred.Uid, cred.Uid, cred.Gid, cred.Gid}
	}
	if have != want {
		return fmt.Errorf("pid %d runs as uid %d/%d gid %d/%d (real/effective), want uid %d/%d gid %d/%d",
			pid, have.uid, have.euid, have.gid, have.egid, want.uid, want.euid, want.gid, want.egid)
	}
	if !proc.HasEnv(pid, worker.EnvName+"="+s.name) {
		return fmt.Errorf("pid %d was not started for this object (no %s=%s in its environment)", pid, worker.EnvName, s.name)
	}
	started, err := proc.StartTime(pid)
	if err != nil {
		return err
	}
	if last := time.Unix(0, rec.LastCheck); rec.LastCheck <= 0 || !started.Before(last) {
		return fmt.Errorf("pid %d started at %s, not before the record's last update (%s)",
			pid, started.Format(time.RFC3339Nano), last.Format(time.RFC3339Nano))
	}
	// Everything above was read from /proc/PID: it was about p only if p is still running
	// (a pid is not reused before its process is reaped).
	if p.Exited() {
		return fmt.Errorf("pid %d is not running", pid)
	}
	return nil
}

// runOnce supervises one run of the program c (started as how) until it ends, and reports
// how.
func (sv *supervision) runOnce(ctx context.Context, c *child, how monitor.Start) monitor.Exit {
	s, w := sv.s, sv.w
	started := time.Now()
	defer c.close()
	sv.c = c
	s.cur.Store(c.Child)
	defer func() { sv.c = nil; s.cur.Store(nil) }()
	w.Start(int64(c.Pid()), how, strings.Join(s.opts.Command, " "), started)
	if c.g != nil {
		w.SetCgroup(c.g.Path())
	}
	sv.answer(true, nil)
	// Each run is judged at the configured interval, whatever the last one asked for.
	w.SetInterval(s.opts.Monitor.Interval, started)
	var tick <-chan time.Time
	if w.Judged() || w.Limited() {
		sv.tick = time.NewTicker(s.opts.Monitor.Interval)
		defer sv.tick.Stop()
		tick = sv.tick.C
	}
	meter := c.meter()
	var reqs <-chan notify.Message
	if sv.req != nil {
		reqs = sv.req.Requests()
	}
	observe := s.opts.Monitor.OnCheck
	for {
		select {
		case <-c.Done():
			now := time.Now()
			st := sv.reaped()
			x := monitor.Exit{End: monitor.EndExit, Status: sv.status(st), Failed: !st.Success(), Ran: now.Sub(started)}
			sv.stopMain(monitor.EndExit, now)
			sv.endCgroup()
			w.End(x, now)
			return x
		case <-ctx.Done():
			return sv.stop(monitor.EndStop)
		case <-s.hup:
			return sv.stop(monitor.EndRestart)
		case rq := <-s.reqs:
			switch rq.r {
			case RequestStart:
				rq.reply <- answer{false, nil} // it runs
				continue
			case RequestStop:
				sv.asked = append(sv.asked, rq)
				return sv.stop(monitor.EndHold)
			}
			sv.asked = append(sv.asked, rq)
			return sv.stop(monitor.EndRestart)
		case m := <-reqs:
			if now := time.Now(); sv.req.Apply(owner{sv}, m, now) {
				w.Trigger(now)
				return sv.stop(monitor.EndTrigger)
			}
		case <-tick:
			if c.main != nil && c.main.Exited() {
				s.log.Warn("main process ended; stopping the program", "worker", s.name, "pid", c.main.Pid(), "event", "main-exit")
				return sv.stop(monitor.EndMainExit)
			}
			now := time.Now()
			if w.Judged() {
				for _, p := range sv.poll {
					p.Poll(now)
				}
				r := w.Check(now)
				if observe != nil {
					observe(now, time.Since(now))
				}
				if r == monitor.Abnormal {
					return sv.stop(monitor.EndHung)
				}
			}
			sv.oom(now)
			if _, over := w.CheckLimits(now, meter); over {
				return sv.stop(monitor.EndLimit)
			}
		}
	}
}

// stop ends the program's group (Signal, then SIGKILL after KillAfter) for why — a kill when
// it hung or asked to be, else a stop — waits until it is reaped, and ends the run.
func (sv *supervision) stop(why monitor.End) monitor.Exit {
	s, w, c := sv.s, sv.w, sv.c
	now := time.Now()
	term, err := w.Terminate(context.Background(), c.Process, why,
		proc.TerminateOptions{Signal: s.opts.Signal, KillAfter: s.opts.KillAfter, Group: true}, now)
	if err != nil {
		s.log.Error("stopping worker", "worker", s.name, "pid", c.Pid(), "err", err)
	}
	sv.stopMain(why, now)
	st := sv.reaped()
	x := monitor.Exit{End: why, Status: sv.status(st), Sigkill: term.Killed, Took: term.Took,
		Ran: time.Since(c.started), Failed: why.Killed() || why == monitor.EndMainExit || why == monitor.EndLimit}
	sv.endCgroup()
	w.End(x, time.Now())
	return x
}

// oom reports the OOM kills in the program's cgroup since the last look (see
// monitor.Worker.OOM).
func (sv *supervision) oom(now time.Time) {
	if g := sv.c.g; g != nil {
		if n := g.OOMKills(); n > 0 {
			sv.c.ooms += n
			sv.w.OOM(n, g.Path(), now)
		}
	}
}

// status says how the reaped program ended: as proc says, and "(oom)" after a SIGKILL when
// the kernel's OOM killer killed in its cgroup during the run.
func (sv *supervision) status(st proc.ExitStatus) string {
	sv.oom(time.Now())
	if sv.c.ooms > 0 && st.String() == "signal killed" {
		return st.String() + " (oom)"
	}
	return st.String()
}

// endCgroup kills what the run left in its cgroup, those that left its process group too,
// and removes the cgroup.
func (sv *supervision) endCgroup() {
	if g := sv.c.g; g != nil {
		if err := g.Remove(); err != nil {
			sv.s.log.Error("removing the worker's cgroup", "worker", sv.s.name, "cgroup", g.Path(), "err", err)
		}
	}
}

// reaped waits until the program has ended and been reaped, and returns how it ended.
func (sv *supervision) reaped() proc.ExitStatus {
	st, err := sv.c.Wait()
	if err != nil {
		sv.s.log.Error("killing what is left of the worker's group", "worker", sv.s.name, "pid", sv.c.Pid(), "err", err)
	}
	return st
}

// stopMain ends the program's main process (MAINPID=) when it outlived the program's group,
// having left it: Signal, then SIGKILL after KillAfter.
func (sv *supervision) stopMain(why monitor.End, now time.Time) {
	s, c := sv.s, sv.c
	if c.main == nil || c.main.Exited() {
		return
	}
	_, err := c.main.Terminate(context.Background(), proc.TerminateOptions{
		Signal:    s.opts.Signal,
		KillAfter: s.opts.KillAfter,
		Log:       sv.w.KillSteps(why, now, "main", true),
	})
	if err != nil {
		s.log.Error("stopping the main process", "worker", s.name, "pid", c.main.Pid(), "err", err)
	}
}

// owner is the supervision as its requesting source (the notify protocol) sees it: every
// method runs on the supervisor's goroutine.
type owner struct{ sv *supervision }

func (o owner) Ready(now time.Time)                        { o.sv.w.Ready(now) }
func (o owner) Extend(now time.Time, d time.Duration) bool { return o.sv.w.Extend(now, d) }
func (o owner) Suspend(now time.Time)                      { o.sv.w.Suspend(now) }
func (o owner) Grace() time.Duration                       { return o.sv.w.Grace() }
func (o owner) SetStatus(text string)                      { o.sv.w.SetStatus(text) }
func (o owner) Beat(kind shmobj.Kind)                      { o.sv.w.Beat(kind) }

// SetInterval changes the check interval, and the ticker with it.
func (o owner) SetInterval(d time.Duration, now time.Time) error {
	if err := o.sv.w.SetInterval(d, now); err != nil {
		return err
	}
	if o.sv.tick != nil {
		o.sv.tick.Reset(d)
	}
	return nil
}

// SetMain makes pid, which the program named with MAINPID=, its watched main process: only
// the program itself or a process of its tree, never an ancestor, init or shmmon.
func (o owner) SetMain(pid int) error {
	c := o.sv.c
	if pid == c.Pid() {
		if c.main != nil {
			c.main.Close()
			c.main = nil
		}
		o.sv.w.SetMain(int64(pid))
		return nil
	}
	// Open first: the tree check then holds for the process the handle names.
	p, err := proc.Open(pid)
	if err == nil && (pid == os.Getpid() || !proc.InTree(pid, c.Pid()) || p.Exited()) {
		p.Close()
		err = errors.New("not a live process of the program's tree")
	}
	if err != nil {
		return err
	}
	if c.main != nil {
		c.main.Close()
	}
	c.main = p
	o.sv.w.SetMain(int64(pid))
	return nil
}

// child is one run of the program.
type child struct {
	*proc.Child
	started time.Time
	main    *proc.Process // the process it named with MAINPID=, when not itself
	g       *cgroup.Group // its cgroup; nil when it has none
	ooms    uint64        // OOM kills in g during the run
}

// meter measures the run's processes: its cgroup, or the program's tree.
func (c *child) meter() monitor.Meter {
	if c.g != nil {
		return c.g.Usage
	}
	pid := c.Pid()
	return func() (proc.Usage, error) { return proc.TreeUsage(pid) }
}

// close releases the handle on the program's main process (the Child releases its own).
func (c *child) close() {
	if c.main != nil {
		c.main.Close()
	}
}

// adopt takes hold of a program a previous monitor started (p holds it). It is not our child:
// its exit is seen through the pidfd, and its parent (init, or a subreaper) reaps it. Its
// cgroup, when it is in the one this worker's runs have, is its run's again.
func (s *Supervisor) adopt(p *proc.Process) *child {
	c := &child{Child: proc.Adopted(p), started: time.Now()}
	if m := s.opts.Cgroups; m != nil {
		if g, ok := m.Find(s.name, p.Pid()); ok {
			c.g = g
		} else {
			cg, _ := cgroup.Of(p.Pid())
			s.log.Info("the adopted program is not in its worker's cgroup; its process group is all there is",
				"worker", s.name, "pid", p.Pid(), "cgroup", cg)
		}
	}
	return c
}

// start starts the program in a process group of its own (see proc.StartChild), with
// SHMMON_NAME and SHMMON_INTERVAL in its environment and what the heartbeat's sources add;
// the systemd handshake meant for shmmon itself is never passed on.
func (sv *supervision) start() (*child, error) {
	s := sv.s
	argv := s.opts.Command
	// Found as exec.Cmd finds it: a missing program is a clear error, not the shell's 127.
	if err := FindProgram(argv[0], s.opts.Dir); err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(append(notify.WithoutHandshake(os.Environ()), s.opts.Env...),
		worker.EnvName+"="+s.name, EnvInterval+"="+s.opts.Monitor.Interval.String())
	for _, p := range sv.prep {
		p.Prepare(cmd)
	}
	cmd.Dir = s.opts.Dir
	cmd.Stdout, cmd.Stderr = s.opts.Stdout, s.opts.Stderr
	if sv.log != nil {
		out, errw, err := sv.log.Pipes()
		if err != nil {
			s.log.Error("cannot pass the program's output to its log file; this run writes to shmmon's output",
				"worker", s.name, "event", "log-error", "log", sv.log.Path(), "err", err)
		} else {
			// The program has its own copies once it started: shmmon keeps none, so the log
			// process sees the end of the output when the program's group is gone.
			defer out.Close()
			defer errw.Close()
			cmd.Stdout, cmd.Stderr = out, errw
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.opts.Credential}
	opts := proc.ChildOptions{Rlimits: s.opts.Rlimits}
	g := sv.cgroup()
	if g != nil {
		g.Prepare(cmd, &opts)
		// Before the reap: what the program left in its cgroup may hold its output open.
		opts.AfterExit = g.Kill
	}
	c, err := proc.StartChildWith(cmd, opts)
	if err != nil {
		if g != nil {
			g.Remove()
		}
		return nil, err
	}
	return &child{Child: c, started: time.Now(), g: g}, nil
}

// cgroup makes the cgroup of the next run, with memory.max and pids.max set where their
// controllers are enabled; nil without cgroups, or when it cannot be made (logged: the run
// has its process group only).
func (sv *supervision) cgroup() *cgroup.Group {
	s := sv.s
	m := s.opts.Cgroups
	if m == nil {
		sv.untold("no cgroup")
		return nil
	}
	g, leftovers, err := m.Create(s.name)
	if leftovers > 0 {
		s.log.Warn("killed what a previous run left in the worker's cgroup", "worker", s.name, "event", "cgroup-leftover",
			"cgroup", m.Path()+"/"+s.name, "killed", leftovers)
	}
	if err != nil {
		s.log.Error("cannot make the worker's cgroup; its process group is all there is", "worker", s.name,
			"event", "cgroup-failed", "err", err)
		sv.untold("no cgroup")
		return nil
	}
	if _, err := g.SetMemoryMax(s.opts.Monitor.Limits.MemoryMax); err != nil {
		s.log.Error("setting memory.max", "worker", s.name, "err", err)
	}
	if ok, err := g.SetPidsMax(s.opts.PidsMax); err != nil {
		s.log.Error("setting pids.max", "worker", s.name, "err", err)
	} else if !ok {
		sv.untold("the pids controller is not enabled for it")
	}
	return g
}

// untold logs, once per supervision, that pids_max is not enforced, and why.
func (sv *supervision) untold(why string) {
	if sv.s.opts.PidsMax > 0 && !sv.told {
		sv.told = true
		sv.s.log.Warn("pids_max is not enforced: "+why, "worker", sv.s.name, "event", "limit-unenforced", "pids_max", sv.s.opts.PidsMax)
	}
}

// FindProgram reports whether the program name (a command's argv[0]) can be started as
// exec.Cmd would find it: a name without a slash in PATH, a relative path from dir. The error
// wraps exec's (errors.Is(err, exec.ErrNotFound), fs.ErrNotExist or fs.ErrPermission).
func FindProgram(name, dir string) error {
	if strings.Contains(name, "/") && dir != "" && !filepath.IsAbs(name) {
		name = filepath.Join(dir, name)
	}
	_, err := exec.LookPath(name)
	return err
}
