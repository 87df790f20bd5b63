package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/shmmon/shmmon/notify"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
)

// Notify is the notify-protocol source of a supervised worker (part of heartbeat "shm"): a
// Unix datagram socket of its own, for the whole time the worker is supervised, and
// systemd's watchdog handshake for each start of the program, so that a program written for
// systemd's watchdog runs unchanged:
//
//   - NOTIFY_SOCKET is the socket: an abstract address derived from the worker's name, the
//     same for every monitor of the object, so a restarted serve binds the address its
//     adopted programs already hold (only one live monitor has an object: see
//     monitor.ErrWatched); a random one when that is taken.
//   - WATCHDOG_USEC is the check interval; WATCHDOG_PID is the program's own pid, set by a
//     shell that then execs the program in its place (Go cannot know the pid before the
//     fork), so /proc/PID/cmdline stays exactly the configured command.
//
// Messages are taken from the running program, its process group and its descendants only
// (systemd's NotifyAccess=all for the program's tree); [Notify.Apply] gives them their
// meaning, on the owner's goroutine:
//
//   - WATCHDOG=1 beats the object (kind notify).
//   - READY=1 ends the startup grace; EXTEND_TIMEOUT_USEC= prolongs it, or a shutdown's
//     suspension.
//   - STATUS= is kept in the object's status text and logged when it changes.
//   - STOPPING=1 (the first one of a run) suspends the checks for at most the grace.
//   - WATCHDOG=trigger asks to be killed at once, as hung.
//   - WATCHDOG_USEC= changes the check interval until the next start.
//   - MAINPID= names the program's main process (the owner checks it is of the tree).
type Notify struct {
	w    Worker
	l    *notify.Listener
	log  *slog.Logger
	usec string // WATCHDOG_USEC

	mu      sync.Mutex
	allowed map[int]int64 // sender pid -> the run (its root pid) it was let in for

	// The owner's goroutine owns these: what one run's messages said.
	run      int64
	status   string // the last STATUS= logged
	ready    bool   // READY=1 was logged
	stopping bool   // STOPPING=1 suspended the checks
	warned   bool   // an invalid line was logged at warning level; the next ones are debug
}

// notifyAddr is the abstract address of the notify socket of the object name: the hash keeps
// it under the 107 bytes allowed.
func NotifyAddr(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "@shmmon-notify/" + hex.EncodeToString(sum[:16])
}

// listen opens w's notify socket at the object's address, or at a random one when that is
// taken.
func listen(w Worker, env Env) (*Notify, error) {
	n := &Notify{w: w, log: env.Logger, usec: strconv.FormatInt(env.Interval.Microseconds(), 10),
		allowed: map[int]int64{}}
	opts := notify.Options{Addr: NotifyAddr(w.Name()), Allow: n.allow, Logger: env.Logger.With("worker", w.Name())}
	l, err := notify.Listen(opts)
	if errors.Is(err, syscall.EADDRINUSE) {
		env.Logger.Warn("notify address taken; using a random one (an adopted program's notify messages are lost)",
			"worker", w.Name(), "addr", opts.Addr)
		opts.Addr = ""
		l, err = notify.Listen(opts)
	}
	if err != nil {
		return nil, err
	}
	n.l = l
	return n, nil
}

// Kind is notify.
func (n *Notify) Kind() shmobj.Kind { return shmobj.KindNotify }

// Close closes the socket.
func (n *Notify) Close() error { return n.l.Close() }

// execScript starts the program in place of the shell that runs it, with WATCHDOG_PID set
// to the shell's pid ($$), which exec keeps: the program's own pid. The program's arguments,
// argv[0] included, are passed unchanged.
const execScript = `WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"`

// Prepare gives the program systemd's handshake: NOTIFY_SOCKET, WATCHDOG_USEC, and
// WATCHDOG_PID through a shell that execs the program.
func (n *Notify) Prepare(cmd *exec.Cmd) {
	// The shell execs the argv as configured (cmd.Args), found as exec.Cmd would find it:
	// the program's command line stays exactly that, which adoption compares.
	argv := append([]string{"/bin/sh", "-c", execScript, "shmmon-exec"}, cmd.Args...)
	cmd.Path, cmd.Args, cmd.Err = "/bin/sh", argv, nil
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+n.l.Addr(), "WATCHDOG_USEC="+n.usec)
}

// allow is the socket's sender check, on its receiving goroutine: the running program, its
// group and its descendants may speak. It remembers which run let each sender in, so the
// owner need not walk /proc again for a message (see Apply).
func (n *Notify) allow(pid int) bool {
	root := n.w.Pid()
	if root <= 0 || !proc.InTree(pid, int(root)) {
		return false
	}
	n.mu.Lock()
	if len(n.allowed) > 64 {
		clear(n.allowed)
	}
	n.allowed[pid] = root
	n.mu.Unlock()
	return true
}

// Requests returns the messages of the program's tree.
func (n *Notify) Requests() <-chan notify.Message { return n.l.Messages() }

// logAt logs one line about the message of sender pid.
func (n *Notify) logAt(lvl slog.Level, pid int, msg string, attrs ...any) {
	n.log.Log(context.Background(), lvl, msg, append([]any{"worker", n.w.Name(), "pid", pid}, attrs...)...)
}

// Apply applies one message of the program's (see [Notify]) to o at now and reports whether
// the program asked to be killed (WATCHDOG=trigger). A message the socket let in for a
// previous run of the program (one still on its way after a restart) is dropped.
func (n *Notify) Apply(o Owner, m notify.Message, now time.Time) bool {
	root := n.w.Pid()
	n.mu.Lock()
	run, ok := n.allowed[m.Pid]
	n.mu.Unlock()
	if !ok || run != root || root == 0 {
		n.log.Debug("notify message of a previous program dropped", "worker", n.w.Name(), "pid", m.Pid)
		return false
	}
	if root != n.run {
		n.run, n.status, n.ready, n.stopping, n.warned = root, "", false, false, false
	}
	for _, line := range m.Invalid {
		lvl := slog.LevelDebug
		if !n.warned {
			lvl, n.warned = slog.LevelWarn, true
		}
		n.logAt(lvl, m.Pid, "notify: invalid value ignored", "event", "notify-invalid", "line", line)
	}
	if m.HasStatus {
		o.SetStatus(m.Status)
		if m.Status != n.status {
			n.logAt(slog.LevelInfo, m.Pid, "status", "event", "status", "status", m.Status)
			n.status = m.Status
		}
	}
	if m.MainPid != 0 {
		if err := o.SetMain(m.MainPid); err != nil {
			n.logAt(slog.LevelWarn, m.Pid, "notify: MAINPID refused", "event", "mainpid-refused", "mainpid", m.MainPid, "err", err)
		} else if m.MainPid != int(root) {
			n.logAt(slog.LevelInfo, m.Pid, "main process", "event", "mainpid", "mainpid", m.MainPid)
		}
	}
	if d := m.WatchdogInterval; d != 0 {
		if err := o.SetInterval(d, now); err != nil {
			n.logAt(slog.LevelWarn, m.Pid, "notify: WATCHDOG_USEC ignored", "event", "notify-invalid", "err", err)
		} else {
			n.logAt(slog.LevelInfo, m.Pid, "check interval changed", "event", "interval", "interval", d)
		}
	}
	if m.Ready && !n.ready {
		o.Ready(now)
		n.logAt(slog.LevelInfo, m.Pid, "ready", "event", "ready")
		n.ready = true
	}
	if d := m.ExtendTimeout; d > 0 {
		extended := o.Extend(now, d)
		n.logAt(slog.LevelDebug, m.Pid, "notify: EXTEND_TIMEOUT_USEC", "extend", d, "applied", extended)
	}
	if m.Stopping && !n.stopping {
		// Only the first: a program repeating STOPPING=1 must not escape the checks.
		o.Suspend(now)
		n.logAt(slog.LevelInfo, m.Pid, "stopping: checks suspended", "event", "stopping", "for_at_most", o.Grace())
		n.stopping = true
	}
	if m.Watchdog {
		o.Beat(shmobj.KindNotify)
	}
	return m.Trigger
}
