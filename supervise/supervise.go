// Package supervise runs a worker program under a heartbeat monitor and keeps it running.
//
// A [Supervisor] publishes the worker's object, then starts the program in a process group of
// its own with SHMMON_NAME (the object) and SHMMON_INTERVAL (the check interval, e.g. "1s")
// in its environment, so the first beat is never lost; before every start the sequence goes
// back to 0, so each run gets the startup grace. It checks the heartbeat every interval
// (see package monitor) and, when the verdict is abnormal, signals the whole group
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
// With Every set, the program is a periodic job instead (the seeds' procctl): run it, wait for
// it to end, wait Every, run it again; the heartbeat rules apply while it runs and the start
// limit does not apply.
//
// # The notify protocol
//
// A program written for systemd's watchdog runs unchanged. For its Run, the supervisor
// listens on a notify socket of its own (package notify; an abstract address derived from
// the object's name, so a restarted monitor takes over the socket of a program it adopts)
// and starts the program with systemd's handshake: NOTIFY_SOCKET, WATCHDOG_USEC (the check
// interval) and WATCHDOG_PID (the program's own pid: a shell sets it and execs the program in
// its place). The handshake shmmon itself got from systemd is never passed on. Messages are
// taken from the running program, its process group and its descendants only, and applied
// on the supervisor's goroutine:
//
//   - WATCHDOG=1 beats the object (its sequence, kind [shmobj.KindNotify]).
//   - READY=1 ends the startup grace ([monitor.Checker.Ready]); EXTEND_TIMEOUT_USEC=
//     prolongs it, or a shutdown's suspension ([monitor.Checker.Extend]).
//   - STATUS= is kept in the object's status text and logged when it changes.
//   - STOPPING=1 (the first one) suspends the checks for at most the grace period.
//   - WATCHDOG=trigger kills the program at once, as hung ("trigger").
//   - WATCHDOG_USEC= changes the check interval until the next start.
//   - MAINPID= moves the watched pid to a live process of the program's tree (else it is
//     refused and logged). Kills then go to the program's group and to that process; when
//     it exits, the run ends as a failure: the program is stopped ("main-exit") and the
//     restart policy applies.
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
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/notify"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/worker"
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

	Monitor   monitor.Options // the object and the check rules
	Signal    syscall.Signal  // first signal to a hung program's group; 0 = SIGTERM
	KillAfter time.Duration   // then SIGKILL after this; 0 = proc.DefaultKillAfter

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
	name string
	opts Options
	log  *slog.Logger
	hup  chan struct{}
	ntf  *notify.Listener // the programs' notify socket, for Run; nil when it could not be made
	tree atomic.Int64     // the running program's pid (0 = none): notify senders must be in its tree
}

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
	return &Supervisor{name: name, opts: opts, log: log, hup: make(chan struct{}, 1)}, nil
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

// ended is how one run of the program ended.
type ended struct {
	state *os.ProcessState // nil when it could not be started (or was adopted)
	hung  bool             // killed as hung
	hup   bool             // stopped for a Restart
	stop  bool             // stopped because the context was cancelled
	main  bool             // stopped because its main process (MAINPID=) ended
	ran   time.Duration
}

// failed reports whether the run counts as a failure. The end of a main process counts as
// one whatever the program's status: the main process's own is unknown (not our child).
func (e ended) failed() bool { return e.hung || e.main || e.state == nil || !e.state.Success() }

// Run publishes the object and supervises the program until ctx is done (the program is
// stopped, [Stopped]) or the policy ends it ([Finished], [Failed], [Hung], [GaveUp]; GaveUp
// also returns an error saying why). Unless Keep is set, the object is removed when Run
// returns. An error other than for GaveUp means the object could not be published.
func (s *Supervisor) Run(ctx context.Context) (Outcome, error) {
	h, orphan, err := s.publish()
	if err != nil {
		return Stopped, err
	}
	defer func() {
		if err := h.Close(!s.opts.Keep); err != nil {
			s.log.Error("closing object", "worker", s.name, "err", err)
		}
	}()
	s.listen()
	defer func() {
		if s.ntf != nil {
			s.ntf.Close()
		}
	}()
	var (
		starts    []time.Time // recent starts, for the limit
		failures  int         // failures in a row, for the backoff
		restarts  int
		requested bool // this start was asked for with Restart: not counted
	)
	for {
		now := time.Now()
		if s.opts.Every == 0 && !requested {
			starts = recent(append(starts, now), now, s.opts.StartWindow)
			if len(starts) > s.opts.StartLimit {
				err := fmt.Errorf("supervise: %s: %d starts within %v (limit %d): giving up",
					s.name, len(starts), s.opts.StartWindow, s.opts.StartLimit)
				s.log.Error("giving up", "worker", s.name, "event", "give-up", "starts", len(starts),
					"window", s.opts.StartWindow, "limit", s.opts.StartLimit)
				h.Emit(monitor.EventGiveUp, now, fmt.Sprintf("%d starts within %v", len(starts), s.opts.StartWindow))
				return GaveUp, err
			}
		}
		if restarts > 0 {
			h.Segment().AddRestart()
		}
		var c *child
		if orphan != nil {
			if orphan.Exited() { // it ended since it was found: start a new one instead
				s.log.Info("the previous worker is gone; starting a new one", "worker", s.name, "pid", orphan.Pid())
				orphan.Close()
			} else {
				c = s.adopt(orphan)
			}
			orphan = nil
		}
		if c == nil {
			// A new program starts from sequence 0, whatever writes its beats: the last
			// program's count must not stand in for the new one's first beat, which would
			// take away its startup grace (a slow start would be judged as stalls).
			h.Segment().ResetWorker(0)
			c, err = s.start()
		}
		e := s.runOnce(ctx, h, c, err, restarts > 0)
		restarts++
		requested = e.hup
		switch {
		case e.stop:
			return Stopped, nil
		case e.hup:
			failures = 0
			continue
		}
		if e.ran >= s.opts.BackoffReset {
			failures = 0
		}
		var delay time.Duration
		switch {
		case s.opts.Every > 0:
			delay = s.opts.Every
		case s.opts.Restart == Never, s.opts.Restart == OnFailure && !e.failed():
			switch {
			case e.hung:
				return Hung, nil
			case e.failed():
				return Failed, nil
			}
			return Finished, nil
		case e.failed():
			failures++
			delay = s.backoff(failures)
		}
		s.log.Info("restarting", "worker", s.name, "event", "restart-wait", "in", delay, "failures", failures)
		if !s.sleep(ctx, delay) {
			return Stopped, nil
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

// sleep waits d; it reports false when ctx ended it, true when d passed or a Restart cut it
// short.
func (s *Supervisor) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-s.hup:
	}
	return true
}

// recent drops the times older than window before now.
func recent(ts []time.Time, now time.Time, window time.Duration) []time.Time {
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= window {
		i++
	}
	return ts[i:]
}

// publish publishes the object, or adopts it with Adopt; it returns a handle on the program
// left by the previous monitor that this one should adopt (nil for none).
//
// The object and its record may have been written by anyone the object's mode lets in (or
// planted before the monitor started), so neither alone names a process to take over:
// monitor.Adopt adopts only an object it can trust, and the process its record names must
// also be the one the previous monitor started for this object (see [Supervisor.previous]).
// When it is not, the object is published anew (the sequence such a process beats must not
// count) and the program is started; this is logged as event=adopt-refused.
func (s *Supervisor) publish() (*monitor.Heartbeat, *proc.Process, error) {
	if !s.opts.Adopt {
		h, err := monitor.Publish(s.name, s.opts.Monitor, time.Now())
		return h, nil, err
	}
	h, a, err := monitor.Adopt(s.name, s.opts.Monitor, time.Now())
	if err != nil {
		return nil, nil, err
	}
	if a.Refused != nil {
		s.log.Warn("not adopting the object; published a new one", "worker", s.name, "event", "adopt-refused", "why", a.Refused)
	}
	if !a.Adopted || !a.Prev.HasRecord || a.Prev.Record.WatchedPid == 0 {
		return h, nil, nil
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
		if err := h.Republish(time.Now()); err != nil {
			h.Close(false)
			return nil, nil, err
		}
		return h, nil, nil
	}
	if args, err := proc.Cmdline(pid); err == nil && slices.Equal(args, s.opts.Command) {
		return h, p, nil
	}
	// Not the command configured now, but the previous monitor started it for this object:
	// it must go. Left running, it would beat into the object of the program started in its
	// place and hide that program's hangs.
	s.log.Warn("stopping the previous worker: it runs another command", "worker", s.name, "pid", pid, "event", "stop-previous")
	if _, err := p.Terminate(context.Background(), proc.TerminateOptions{Signal: s.opts.Signal, KillAfter: s.opts.KillAfter, Group: true}); err != nil {
		s.log.Error("stopping the previous worker", "worker", s.name, "pid", pid, "err", err)
	}
	p.Close()
	return h, nil, nil
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

// runOnce supervises one run of the program (c, or err when it could not be started; restart
// when it is not the first) until it ends, and reports how.
func (s *Supervisor) runOnce(ctx context.Context, h *monitor.Heartbeat, c *child, err error, restart bool) ended {
	started := time.Now()
	if err != nil {
		s.log.Error("cannot start", "worker", s.name, "event", "start-failed", "command", s.opts.Command[0], "err", err)
		h.Segment().SetState(shmobj.StateExited)
		return ended{}
	}
	defer c.close()
	h.NewWorker(int64(c.pid()), started)
	// Each run is judged at the configured interval, whatever the last one asked for.
	h.SetInterval(s.opts.Monitor.Interval, started)
	s.tree.Store(int64(c.pid()))
	defer s.tree.Store(0)
	if c.cmd == nil {
		s.log.Info("adopted", "worker", s.name, "pid", c.pid(), "event", "adopt", "command", strings.Join(s.opts.Command, " "))
	} else {
		s.log.Info("started", "worker", s.name, "pid", c.pid(), "event", "start", "command", strings.Join(s.opts.Command, " "))
	}
	if restart {
		h.Emit(monitor.EventRestart, started, "")
	} else {
		h.Emit(monitor.EventStart, started, "")
	}

	ticker := time.NewTicker(s.opts.Monitor.Interval)
	defer ticker.Stop()
	var msgs <-chan notify.Message
	if s.ntf != nil {
		msgs = s.ntf.Messages()
	}
	var ns notifyState
	for {
		select {
		case st := <-c.done:
			e := ended{state: st, ran: time.Since(started)}
			s.exited(h, c, e)
			return e
		case <-ctx.Done():
			return s.stop(h, c, ended{stop: true}, "stop")
		case <-s.hup:
			return s.stop(h, c, ended{hup: true}, "restart")
		case m := <-msgs:
			// The listener let it in for the program running then: after a restart, a
			// message of the previous program's may still be on its way.
			if !proc.InTree(m.Pid, c.pid()) {
				s.log.Debug("notify message of a previous program dropped", "worker", s.name, "pid", m.Pid)
				continue
			}
			if now := time.Now(); s.apply(h, c, ticker, &ns, m, now) {
				h.Trigger(now, s.log)
				return s.kill(h, c, "trigger")
			}
		case <-ticker.C:
			if c.main != nil && c.main.Exited() {
				s.log.Warn("main process ended; stopping the program", "worker", s.name, "pid", c.main.Pid(), "event", "main-exit")
				e := s.stop(h, c, ended{main: true}, "main-exit")
				h.Emit(monitor.EventExit, time.Now(), fmt.Sprintf("main process %d ended", c.main.Pid()))
				return e
			}
			if h.Step(time.Now(), s.log) == monitor.Abnormal {
				return s.kill(h, c, "kill")
			}
		}
	}
}

// kill stops a program judged hung (why "kill") or that asked for it with WATCHDOG=trigger
// (why "trigger"), and counts the kill.
func (s *Supervisor) kill(h *monitor.Heartbeat, c *child, why string) ended {
	now := time.Now()
	msg := "killing hung worker"
	if why == "trigger" {
		msg = "killing worker: its watchdog trigger"
	}
	s.log.Warn(msg, "worker", s.name, "pid", c.pid(), "event", why,
		"seq", h.Checker().Last(), "stalled_for", h.Checker().StalledFor(now).Round(time.Millisecond))
	e := s.stop(h, c, ended{hung: true}, why)
	h.Segment().AddKill()
	h.Segment().SetState(shmobj.StateKilled)
	h.Emit(monitor.EventKill, time.Now(), describe(e.state))
	return e
}

// stop ends the program's group (Signal, then SIGKILL) and waits until it is reaped.
func (s *Supervisor) stop(h *monitor.Heartbeat, c *child, e ended, why string) ended {
	term, err := c.proc.Terminate(context.Background(), proc.TerminateOptions{
		Signal:    s.opts.Signal,
		KillAfter: s.opts.KillAfter,
		Group:     true,
		Log: func(step string, attrs ...any) {
			s.log.Warn("kill step", append([]any{"worker", s.name, "event", step, "reason", why}, attrs...)...)
		},
	})
	if err != nil {
		s.log.Error("stopping worker", "worker", s.name, "pid", c.pid(), "err", err)
	}
	s.stopMain(c, why)
	e.state = <-c.done
	e.ran = time.Since(c.started)
	s.log.Info("worker ended", "worker", s.name, "pid", c.pid(), "event", "exit", "reason", why,
		"status", describe(e.state), "sigkill", term.Killed)
	h.Segment().SetState(shmobj.StateExited)
	return e
}

// exited logs a program that ended by itself.
func (s *Supervisor) exited(h *monitor.Heartbeat, c *child, e ended) {
	s.stopMain(c, "exit")
	h.Segment().SetState(shmobj.StateExited)
	lvl := slog.LevelInfo
	if e.failed() {
		lvl = slog.LevelWarn
	}
	s.log.Log(context.Background(), lvl, "worker ended", "worker", s.name, "pid", c.pid(), "event", "exit",
		"status", describe(e.state), "ran", e.ran.Round(time.Millisecond))
	h.Emit(monitor.EventExit, time.Now(), describe(e.state))
}

// describe says how a process ended: "exit 0", "exit 3", "signal killed".
func describe(st *os.ProcessState) string {
	if st == nil {
		return "unknown (not started, or adopted)"
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	return fmt.Sprintf("exit %d", st.ExitCode())
}

// inheritedEnv is shmmon's environment without the systemd handshake meant for shmmon
// itself (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID): a program it supervises must not
// speak to systemd for it.
func inheritedEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return k == "NOTIFY_SOCKET" || k == "WATCHDOG_USEC" || k == "WATCHDOG_PID"
	})
}

// child is one running instance of the program.
type child struct {
	cmd     *exec.Cmd // nil for an adopted program, which is not ours to reap
	proc    *proc.Process
	started time.Time
	done    chan *os.ProcessState // receives once the program is reaped (nil: adopted)
	main    *proc.Process         // the process it named with MAINPID=, when not itself
}

func (c *child) pid() int { return c.proc.Pid() }

// close releases the handles on the program and its main process.
func (c *child) close() {
	c.proc.Close()
	if c.main != nil {
		c.main.Close()
	}
}

// stopMain ends the program's main process (MAINPID=) when it outlived the program's group,
// having left it: Signal, then SIGKILL after KillAfter.
func (s *Supervisor) stopMain(c *child, why string) {
	if c.main == nil || c.main.Exited() {
		return
	}
	_, err := c.main.Terminate(context.Background(), proc.TerminateOptions{
		Signal:    s.opts.Signal,
		KillAfter: s.opts.KillAfter,
		Log: func(step string, attrs ...any) {
			s.log.Warn("kill step", append([]any{"worker", s.name, "event", step, "reason", why, "main", true}, attrs...)...)
		},
	})
	if err != nil {
		s.log.Error("stopping the main process", "worker", s.name, "pid", c.main.Pid(), "err", err)
	}
}

// adopt supervises p, a program a previous monitor started. It is not our child: its exit is
// seen through the pidfd, and its parent (init, or a subreaper) reaps it.
func (s *Supervisor) adopt(p *proc.Process) *child {
	c := &child{proc: p, started: time.Now(), done: make(chan *os.ProcessState, 1)}
	go func() {
		p.WaitExit(context.Background(), 0)
		c.done <- nil
	}()
	return c
}

// execScript starts the program in place of the shell that runs it, with WATCHDOG_PID set
// to the shell's pid ($$), which exec keeps: the program's own pid, which Go cannot know
// before the fork. The program's arguments, argv[0] included, are passed unchanged.
const execScript = `WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"`

// start starts the program in a new process group and takes hold of it through a pidfd.
// With a notify socket the program gets systemd's watchdog handshake: NOTIFY_SOCKET,
// WATCHDOG_USEC (the check interval) and WATCHDOG_PID (its own pid, set by execScript).
func (s *Supervisor) start() (*child, error) {
	argv := s.opts.Command
	// Found as exec.Cmd finds it: a missing program is a clear error, not the shell's 127.
	if err := FindProgram(argv[0], s.opts.Dir); err != nil {
		return nil, err
	}
	env := append(inheritedEnv(), s.opts.Env...)
	env = append(env, worker.EnvName+"="+s.name, EnvInterval+"="+s.opts.Monitor.Interval.String())
	cmd := exec.Command(argv[0], argv[1:]...)
	if s.ntf != nil {
		cmd = exec.Command("/bin/sh", append([]string{"-c", execScript, "shmmon-exec"}, argv...)...)
		env = append(env, "NOTIFY_SOCKET="+s.ntf.Addr(),
			"WATCHDOG_USEC="+strconv.FormatInt(s.opts.Monitor.Interval.Microseconds(), 10))
	}
	cmd.Env = env
	cmd.Dir = s.opts.Dir
	cmd.Stdout, cmd.Stderr = s.opts.Stdout, s.opts.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.opts.Credential}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// The program is our unreaped child: its pid cannot be reused before we wait for it.
	p, err := proc.Open(cmd.Process.Pid)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	c := &child{cmd: cmd, proc: p, started: time.Now(), done: make(chan *os.ProcessState, 1)}
	go func() {
		// Wait for the exit through the pidfd first, without reaping: while the program is
		// a zombie its group id cannot be reused, so what is left of its group can be
		// killed safely. Then reap it.
		p.WaitExit(context.Background(), 0)
		if err := p.KillOrphanedGroup(); err != nil {
			s.log.Error("killing what is left of the worker's group", "worker", s.name, "pid", c.pid(), "err", err)
		}
		cmd.Wait()
		c.done <- cmd.ProcessState
	}()
	return c, nil
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
