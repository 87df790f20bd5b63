// Package proc controls processes through pidfds. It is the only package in
// shmmon that sends signals, so the rules of killing live here:
//
//   - A process is signalled only through a [Process], which holds a pidfd
//     taken by [Open] while the pid still names the intended process. Once
//     that process has exited, every signal through the handle fails with an
//     error matching [os.ErrProcessDone]; a pid reused by another process is
//     never hit.
//   - Pids ≤ 1 and the caller's own pid are refused by [Open], and the
//     caller's own process group by [Process.SignalGroup], all with
//     [ErrRefused].
//   - [Process.Terminate] is the kill escalation: a signal (SIGTERM unless
//     told otherwise), a wait of up to [TerminateOptions.KillAfter] for the
//     process to exit, then SIGKILL and a wait of up to [KillWait].
//
// A Process never reaps. Exit is observed through the pidfd, which becomes
// readable when the process exits, whether or not it has been reaped yet: one
// goroutine waits on the pidfds of all open handles together (see [Open]),
// which then report the exit through [Process.WaitExit] and
// [Process.AfterExit].
//
// [StartChild] starts a child the way shmmon runs every program and hook: in a
// process group of its own, held through a pidfd from the start; once it has
// exited, what is left of its group is killed while it is still an unreaped
// zombie (so the group id cannot have been reused), then it is reaped, and
// [Child.Wait] says how it ended ([ExitStatus]). [Adopted] gives the same
// view of a process that is not the caller's child, which its own parent
// reaps.
//
// [Process.Credentials], [Process.MapsFile] and [Process.SysVAttached] read
// facts about a held process from /proc (who it runs as, what it has mapped),
// failing rather than answering for another process should the pid be reused
// meanwhile.
//
// [StartTime] reads when a process started, so a caller that kept only a pid
// can tell whether the pid now names another process. It and the other facts
// read by pid ([Alive], [Cmdline], [HasEnv], [Ppid], [InTree], [Tree]) come
// from /proc through prometheus/procfs.
//
// All of this needs Linux 5.10 or later. On other platforms [Open],
// [StartChild] and [StartTime] return an error matching
// [errors.ErrUnsupported].
package proc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shmmon/shmmon/internal/field"
)

var (
	// ErrRefused is returned, wrapped with the pid or group, for a process
	// shmmon must never signal: pid ≤ 1 (0 and negative pids address groups,
	// 1 is init), the caller's own pid, or, for a group signal, the caller's
	// own process group.
	ErrRefused = errors.New("proc: refused to signal")

	// ErrNotExist is returned, wrapped with the pid, when there is no such
	// process. errors.Is reports true for it against [fs.ErrNotExist] too.
	ErrNotExist error = notExistError{}

	// ErrNotLeader is returned, wrapped with the pid, by
	// [Process.SignalGroup] when the process does not lead its own process
	// group.
	ErrNotLeader = errors.New("proc: not a process group leader")
)

// notExistError is the type of [ErrNotExist]: a sentinel that also matches
// [fs.ErrNotExist], so callers can treat a missing process like a missing
// file.
type notExistError struct{}

func (notExistError) Error() string { return "proc: no such process" }

func (notExistError) Is(target error) bool { return target == fs.ErrNotExist }

const (
	// DefaultKillAfter is how long [Process.Terminate] waits after the first
	// signal before sending SIGKILL when [TerminateOptions.KillAfter] is not
	// set; it is the default of --kill-after.
	DefaultKillAfter = 5 * time.Second

	// DefaultDumpWait is how long [Process.Terminate] waits after the dump
	// signal ([TerminateOptions.Dump]) when DumpWait is not set; the default of
	// --dump-wait.
	DefaultDumpWait = 2 * time.Second

	// KillWait is how long [Process.Terminate] waits for the process to exit
	// after SIGKILL before it gives up.
	KillWait = 5 * time.Second
)

// ValidateKillAfter reports whether d is a wait before SIGKILL shmmon accepts: more than 0.
// (A zero [TerminateOptions.KillAfter] stands for DefaultKillAfter; a value a user wrote
// out is taken as it is.) The error is a [*field.Error].
func ValidateKillAfter(d time.Duration) error {
	if d <= 0 {
		return &field.Error{Pkg: "proc", Field: "kill_after", Value: d, Problem: "must be more than 0"}
	}
	return nil
}

// ValidateDumpWait reports whether d is a wait after the dump signal shmmon accepts (see
// [TerminateOptions.Dump]): more than 0. The error is a [*field.Error].
func ValidateDumpWait(d time.Duration) error {
	if d <= 0 {
		return &field.Error{Pkg: "proc", Field: "dump_wait", Value: d, Problem: "must be more than 0"}
	}
	return nil
}

// ParseSignal parses a signal as users write it: a name, with or without SIG and in any case
// (TERM, SIGTERM, term), or a number 1-64. Anything else is a [*field.Error] naming the text
// and what is accepted.
func ParseSignal(s string) (syscall.Signal, error) {
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := signalNum(name)
	if n, err := strconv.Atoi(s); err == nil {
		sig = syscall.Signal(n)
	}
	if sig < 1 || sig > 64 {
		return 0, &field.Error{Pkg: "proc", Field: "signal", Value: s, Problem: "is not a signal",
			Want: `a signal name such as "TERM", "INT", "HUP", "QUIT", "USR1", or a number 1-64`}
	}
	return sig, nil
}

// Signal is a signal as users write it; its UnmarshalText parses the text as [ParseSignal]
// does (for configuration files).
type Signal syscall.Signal

// UnmarshalText parses text as [ParseSignal] does.
func (s *Signal) UnmarshalText(text []byte) error {
	sig, err := ParseSignal(string(text))
	if err == nil {
		*s = Signal(sig)
	}
	return err
}

// TerminateOptions configures [Process.Terminate]. The zero value sends
// SIGTERM to the process alone, waits [DefaultKillAfter], and logs nothing.
type TerminateOptions struct {
	// Signal is sent first. Zero means SIGTERM.
	Signal syscall.Signal

	// KillAfter is how long to wait for the process to exit after Signal
	// before sending SIGKILL. Zero or negative means [DefaultKillAfter].
	KillAfter time.Duration

	// Dump, when not zero, is sent before Signal, to make the process record what it was
	// doing as it ends (SIGQUIT: a Go program prints every goroutine's stack and exits;
	// SIGABRT: a C++ program dumps core). Terminate waits up to DumpWait (zero or negative:
	// [DefaultDumpWait]) for it to end by itself, then goes on with Signal.
	Dump     syscall.Signal
	DumpWait time.Duration

	// Group sends every signal to the process's group, through
	// [Process.SignalGroup], instead of to the process alone. The process
	// must lead its group; the escalation follows the leader's exit, so group
	// members that outlive the leader are not waited for.
	Group bool

	// Log, if not nil, is called for each step as it happens, with attributes
	// as alternating keys and values in the style of log/slog:
	//
	//   - "dump": the dump signal was sent; "pid", "signal", "group".
	//   - "signal": Signal was sent; "pid", "signal" (a name such
	//     as "SIGTERM"), "group" (bool).
	//   - "kill": SIGKILL was sent; "pid", "group", "waited" (time since the
	//     first signal).
	//   - "exited": the process has exited; "pid", "took" (time since
	//     Terminate began), "killed" (bool).
	//
	// The caller adds what only it knows (name, last sequence, how long the
	// process was stalled) by closing over it.
	Log func(step string, attrs ...any)
}

// Termination reports what [Process.Terminate] did.
type Termination struct {
	// Signalled is true if the first signal (the dump signal, or Signal) was
	// sent; it is false when the process had already exited.
	Signalled bool

	// Dumped is true if the dump signal was sent; ended by it, Exited is true
	// with no other signal sent.
	Dumped bool

	// Killed is true if the process outlived KillAfter and SIGKILL was sent.
	Killed bool

	// Exited is true if the process was seen to exit.
	Exited bool

	// Took is the time from the start of Terminate until it returned.
	Took time.Duration
}

// Terminate runs the kill escalation on p: with opts.Dump, send it and wait up
// to opts.DumpWait for the process to exit; then send opts.Signal (SIGTERM by
// default; every signal to the group if opts.Group), wait up to opts.KillAfter
// for the process to exit, then send SIGKILL and wait up to [KillWait]. It
// does not reap the process. Outcomes:
//
//   - The process exits after the dump signal: Signalled, Dumped and Exited, nil.
//   - The process exits after the first signal: Signalled and Exited, nil.
//   - It outlives KillAfter and exits after SIGKILL: Signalled, Killed and
//     Exited, nil.
//   - It had already exited (reaped or not), or exits just before a signal:
//     Exited without the step that found it gone, nil.
//   - It is still running [KillWait] after SIGKILL (for example stuck in an
//     uninterruptible sleep): Signalled and Killed, not Exited, and an error.
//   - ctx is done while waiting: what happened so far, and an error wrapping
//     the context's cause. No further signal is sent.
//   - A signal cannot be sent: what happened so far, and the error of
//     [Process.Signal] or [Process.SignalGroup] (for example [ErrRefused],
//     [ErrNotLeader], or one matching [os.ErrClosed] after [Process.Close]).
func (p *Process) Terminate(ctx context.Context, opts TerminateOptions) (Termination, error) {
	start := time.Now()
	sig := cmp.Or(opts.Signal, syscall.SIGTERM)
	killAfter := opts.KillAfter
	if killAfter <= 0 {
		killAfter = DefaultKillAfter
	}
	log := opts.Log
	if log == nil {
		log = func(string, ...any) {}
	}
	send := p.Signal
	if opts.Group {
		send = p.SignalGroup
	}

	var t Termination
	finish := func(err error) (Termination, error) {
		t.Took = time.Since(start)
		if t.Exited {
			log("exited", "pid", p.Pid(), "took", t.Took, "killed", t.Killed)
		}
		return t, err
	}
	// wait waits for exit, then tells why it stopped if the process did not exit.
	wait := func(timeout time.Duration) (bool, error) {
		if p.WaitExit(ctx, timeout) {
			return true, nil
		}
		if ctx.Err() != nil {
			return false, fmt.Errorf("proc: terminate pid %d: %w", p.Pid(), context.Cause(ctx))
		}
		return false, nil
	}

	if opts.Dump != 0 {
		if err := send(opts.Dump); err != nil {
			t.Exited = errors.Is(err, os.ErrProcessDone)
			if t.Exited {
				err = nil
			}
			return finish(err)
		}
		t.Signalled, t.Dumped = true, true
		log("dump", "pid", p.Pid(), "signal", signalName(opts.Dump), "group", opts.Group)
		dumpWait := opts.DumpWait
		if dumpWait <= 0 {
			dumpWait = DefaultDumpWait
		}
		exited, err := wait(dumpWait)
		if exited || err != nil {
			t.Exited = exited
			return finish(err)
		}
	}
	if err := send(sig); err != nil {
		t.Exited = errors.Is(err, os.ErrProcessDone)
		if t.Exited {
			err = nil
		}
		return finish(err)
	}
	t.Signalled = true
	signalled := time.Now()
	log("signal", "pid", p.Pid(), "signal", signalName(sig), "group", opts.Group)

	exited, err := wait(killAfter)
	if exited || err != nil {
		t.Exited = exited
		return finish(err)
	}

	// The process outlived KillAfter, or the handle was closed, in which
	// case sending SIGKILL reports it.
	if err := send(syscall.SIGKILL); err != nil {
		t.Exited = errors.Is(err, os.ErrProcessDone)
		if t.Exited {
			err = nil
		}
		return finish(err)
	}
	t.Killed = true
	log("kill", "pid", p.Pid(), "group", opts.Group, "waited", time.Since(signalled))

	exited, err = wait(KillWait)
	t.Exited = exited
	if !exited && err == nil {
		err = fmt.Errorf("proc: terminate pid %d: still running %v after SIGKILL", p.Pid(), KillWait)
	}
	return finish(err)
}

// Credentials are the identity the kernel checks a process's access with (see
// [Process.Credentials]).
type Credentials struct {
	RealUid uint32   // real uid: the user who started it (a setuid program does not change it)
	Uid     uint32   // effective uid: the owner checks use it
	RealGid uint32   // real gid
	Egid    uint32   // effective gid
	Gid     uint32   // filesystem gid (the effective one unless set apart): the group checks use it
	Groups  []uint32 // supplementary groups
}

// InGroup reports whether gid is the credentials' gid or one of their supplementary groups,
// as the kernel's group check does.
func (c Credentials) InGroup(gid uint32) bool {
	return c.Gid == gid || slices.Contains(c.Groups, gid)
}

// SignalName returns the name of sig as shmmon's messages write it: "SIGTERM"; "signal 40"
// for one without a name.
func SignalName(sig syscall.Signal) string { return signalName(sig) }
