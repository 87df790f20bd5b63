package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Process is a handle on one process, held through a pidfd. Because the
// kernel ties a pidfd to the process rather than to the number, a pid reused
// by another process after this one exited is never signalled through it.
//
// A Process is safe for concurrent use. Call [Process.Close] when done with
// it: until then, or until the process exits, a goroutine watches for the
// exit.
type Process struct {
	pid int

	// f owns the pidfd. It is an os.File rather than a bare descriptor
	// because the File counts references: Close cannot release the number
	// while a signal is being sent through it, so a racing Close never lets
	// a signal go through a number reused for another descriptor. The File
	// also puts the pidfd in the runtime poller, so watch waits for exit
	// without holding a thread.
	f  *os.File
	rc syscall.RawConn

	exited    chan struct{} // closed by watch once the process has exited
	watched   chan struct{} // closed when watch returns
	closeOnce sync.Once
}

// Open returns a handle on the process pid. Outcomes:
//
//   - pid ≤ 1 or pid == [os.Getpid]: nil and an error wrapping [ErrRefused]
//     that names the pid.
//   - No such process: nil and an error wrapping [ErrNotExist] (and so
//     matching [fs.ErrNotExist]). A process that has exited but not yet been
//     reaped still exists: Open succeeds and the handle reports it exited.
//   - pidfd_open fails otherwise (for example ENOSYS before Linux 5.10, or
//     EINVAL when pid is a thread that does not lead its process): nil and
//     the wrapped error.
//
// Otherwise the handle, which the caller must Close.
func Open(pid int) (*Process, error) {
	switch {
	case pid <= 1:
		return nil, fmt.Errorf("%w pid %d: only pids above 1 name one user process", ErrRefused, pid)
	case pid == os.Getpid():
		return nil, fmt.Errorf("%w pid %d: it is this process", ErrRefused, pid)
	}
	// PIDFD_NONBLOCK lets os.NewFile put the pidfd in the runtime poller.
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if errors.Is(err, unix.ESRCH) {
		return nil, fmt.Errorf("%w: pid %d", ErrNotExist, pid)
	}
	if err != nil {
		return nil, fmt.Errorf("proc: open pid %d: pidfd_open: %w", pid, err)
	}
	f := os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(pid))
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("proc: open pid %d: %w", pid, err)
	}
	p := &Process{
		pid:     pid,
		f:       f,
		rc:      rc,
		exited:  make(chan struct{}),
		watched: make(chan struct{}),
	}
	go p.watch()
	return p, nil
}

// watch closes p.exited once the pidfd becomes readable, which the kernel
// makes it when the process exits. It returns early when Close closes the
// file, and closes p.watched when it returns.
func (p *Process) watch() {
	defer close(p.watched)
	// Read calls the function again each time the poller reports the pidfd
	// readable, until it returns true; it fails once the file is closed.
	if err := p.rc.Read(func(fd uintptr) bool { return pollExited(int(fd)) }); err == nil {
		close(p.exited)
	}
}

// pollExited reports, without blocking, whether the pidfd fd is readable,
// that is whether its process has exited. poll cannot fail on a valid pidfd
// other than by being interrupted; any other failure reads as not exited.
func pollExited(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, 0)
		if err == unix.EINTR {
			continue
		}
		// Newer kernels add POLLHUP once the process has been reaped.
		return err == nil && fds[0].Revents&(unix.POLLIN|unix.POLLHUP) != 0
	}
}

// Pid returns the process id the handle was opened with.
func (p *Process) Pid() int { return p.pid }

// Signal sends sig to the process through its pidfd. Outcomes:
//
//   - Sent: nil. Signal 0 sends nothing and so only checks the process is
//     running.
//   - The process has exited, reaped or not: an error matching
//     [os.ErrProcessDone]. Nothing is sent, whatever now holds the pid.
//   - The handle is closed: an error matching [os.ErrClosed].
//   - pidfd_send_signal fails otherwise (for example EPERM): the wrapped
//     error.
func (p *Process) Signal(sig syscall.Signal) error {
	// A zombie still accepts signals and ignores them; checking for exit
	// first gives the same answer for every exited process.
	exited, err := p.exitedNow("signal")
	if err != nil {
		return err
	}
	if exited {
		return p.doneError("signal")
	}
	var serr error
	if err := p.rc.Control(func(fd uintptr) {
		serr = unix.PidfdSendSignal(int(fd), sig, nil, 0)
	}); err != nil {
		return p.closedError("signal")
	}
	switch {
	case serr == nil:
		return nil
	case errors.Is(serr, unix.ESRCH):
		return p.doneError("signal")
	default:
		return fmt.Errorf("proc: signal pid %d with %s: %w", p.pid, signalName(sig), serr)
	}
}

// SignalGroup sends sig to the process group the process leads, with
// kill(-pgid). Outcomes:
//
//   - Sent: nil.
//   - The process has exited, reaped or not: an error matching
//     [os.ErrProcessDone], and nothing is sent, even if other members of the
//     group are still running.
//   - The process does not lead its group: an error wrapping
//     [ErrNotLeader], and nothing is sent.
//   - The group is the caller's own: an error wrapping [ErrRefused], and
//     nothing is sent.
//   - The handle is closed: an error matching [os.ErrClosed].
//   - getpgid or kill fails otherwise (for example EPERM): the wrapped
//     error.
//
// A group cannot be signalled through a pidfd, so the pidfd is used to
// check, after the group was read, that the pid still names this process:
// a pid is not reused before its process is reaped. Requiring a leader makes
// the group's id this process's own pid, and a group id is not reused while
// any member is left. What remains is the moment between that check and
// kill(2), in which the leader would have to exit and be reaped, every
// member leave, and the pid be handed out again to a new group leader.
func (p *Process) SignalGroup(sig syscall.Signal) error {
	const op = "signal group of"
	pgid, err := unix.Getpgid(p.pid)
	// Checked after getpgid, so a pgid read from a reused pid is not used.
	exited, xerr := p.exitedNow(op)
	switch {
	case xerr != nil:
		return xerr
	case exited:
		return p.doneError(op)
	case err != nil:
		return fmt.Errorf("proc: %s pid %d: getpgid: %w", op, p.pid, err)
	case pgid != p.pid:
		return fmt.Errorf("%w: pid %d is in group %d", ErrNotLeader, p.pid, pgid)
	case pgid == unix.Getpgrp():
		return fmt.Errorf("%w process group %d: it is this process's own group", ErrRefused, pgid)
	}
	if err := unix.Kill(-pgid, sig); errors.Is(err, unix.ESRCH) {
		return p.doneError(op)
	} else if err != nil {
		return fmt.Errorf("proc: %s pid %d with %s: %w", op, p.pid, signalName(sig), err)
	}
	return nil
}

// Exited reports, without blocking, whether the process has exited, reaped
// or not. After [Process.Close] it reports true only if the exit was seen
// before Close.
func (p *Process) Exited() bool {
	exited, err := p.exitedNow("check")
	return err == nil && exited
}

// Done returns a channel that is closed once the goroutine watching the pidfd has seen the
// process exit: a moment after the exit, and never when the handle was closed first. Checking
// it costs no system call, unlike [Process.Exited], which gives the exact answer at once.
// Signals through the handle always check exactly.
func (p *Process) Done() <-chan struct{} { return p.exited }

// exitedNow is [Process.Exited] with an error matching os.ErrClosed, naming
// op, when the handle is closed and the exit was not seen before.
func (p *Process) exitedNow(op string) (bool, error) {
	select {
	case <-p.exited:
		return true, nil
	default:
	}
	var exited bool
	if err := p.rc.Control(func(fd uintptr) { exited = pollExited(int(fd)) }); err != nil {
		return false, p.closedError(op)
	}
	return exited, nil
}

// WaitExit waits for the process to exit, up to timeout (no limit if
// timeout ≤ 0) and while ctx is not done. It does not reap the process.
// It reports true once the process has exited, reaped or not, and false
// when the timeout passes, ctx is done, or the handle is closed before the
// exit was seen.
func (p *Process) WaitExit(ctx context.Context, timeout time.Duration) bool {
	select {
	case <-p.exited:
		return true
	default:
	}
	var expired <-chan time.Time
	if timeout > 0 {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		expired = timer.C
	}
	select {
	case <-p.exited:
		return true
	case <-p.watched:
		// watch closes exited before watched if it saw the exit.
		select {
		case <-p.exited:
			return true
		default:
			return false
		}
	case <-ctx.Done():
		return false
	case <-expired:
		return false
	}
}

// Close releases the pidfd and waits for the goroutine watching it. It
// returns nil, or the error from closing the pidfd on the first call, and
// nil on every later call. After Close, signals fail with an error matching
// [os.ErrClosed], and Exited and WaitExit report only an exit seen before.
// Close does not signal or reap the process.
func (p *Process) Close() error {
	var err error
	p.closeOnce.Do(func() {
		if cerr := p.f.Close(); cerr != nil {
			err = fmt.Errorf("proc: close pid %d: %w", p.pid, cerr)
		}
		<-p.watched
	})
	return err
}

func (p *Process) doneError(op string) error {
	return fmt.Errorf("proc: %s pid %d: %w", op, p.pid, os.ErrProcessDone)
}

func (p *Process) closedError(op string) error {
	return fmt.Errorf("proc: %s pid %d: %w", op, p.pid, os.ErrClosed)
}

// signalName returns a name such as "SIGTERM" for logs and errors.
func signalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return "signal " + strconv.Itoa(int(sig))
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times, which
// sysconf(_SC_CLK_TCK) reports. It is 100 on every architecture Go supports.
const clockTicks = 100

// StartTime returns when the process pid started, from field 22 of
// /proc/PID/stat (clock ticks since boot) and the boot time in /proc/stat.
// The result has a resolution of 1/100 s; it can be earlier than the true
// start by up to a second, since the boot time is whole seconds, but it is
// the same every time it is asked for the same process. Outcomes:
//
//   - The start time, nil.
//   - No such process: the zero time and an error wrapping [ErrNotExist].
//   - /proc cannot be read or parsed: the zero time and the wrapped error.
func StartTime(pid int) (time.Time, error) {
	if pid <= 0 {
		return time.Time{}, fmt.Errorf("%w: pid %d", ErrNotExist, pid)
	}
	path := "/proc/" + strconv.Itoa(pid) + "/stat"
	stat, err := os.ReadFile(path)
	// ESRCH: the process was reaped while its stat was being read.
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
		return time.Time{}, fmt.Errorf("%w: pid %d", ErrNotExist, pid)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("proc: start time of pid %d: %w", pid, err)
	}
	ticks, err := parseStartTicks(stat)
	if err != nil {
		return time.Time{}, fmt.Errorf("proc: start time of pid %d: %s: %w", pid, path, err)
	}
	boot, err := bootTime()
	if err != nil {
		return time.Time{}, fmt.Errorf("proc: start time of pid %d: %w", pid, err)
	}
	return boot.Add(time.Duration(ticks) * (time.Second / clockTicks)), nil
}

// parseStartTicks returns field 22 of a /proc/PID/stat line, the start time
// in clock ticks since boot. Field 2, the command name, is in parentheses and
// may itself hold spaces and parentheses, so fields are counted from after
// the last ')'.
func parseStartTicks(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("no ')' closing the command name")
	}
	// The first field after the name is field 3, the state.
	const start = 22 - 3
	fields := bytes.Fields(stat[i+1:])
	if len(fields) <= start {
		return 0, fmt.Errorf("%d fields after the command name, want at least %d", len(fields), start+1)
	}
	ticks, err := strconv.ParseUint(string(fields[start]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("start time: %w", err)
	}
	return ticks, nil
}

// bootTime is the "btime" line of /proc/stat. It is read once: the kernel
// derives it from the wall clock, so it moves when the clock is stepped, and
// start times must not move with it.
var bootTime = sync.OnceValues(func() (time.Time, error) {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, fmt.Errorf("boot time: %w", err)
	}
	for line := range bytes.Lines(stat) {
		if rest, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			sec, err := strconv.ParseInt(string(bytes.TrimSpace(rest)), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("boot time: /proc/stat btime: %w", err)
			}
			return time.Unix(sec, 0), nil
		}
	}
	return time.Time{}, errors.New("boot time: no btime in /proc/stat")
})

// Alive reports whether a process with this pid exists and has not exited: a zombie (ended,
// not reaped yet by its parent) runs no code and is not alive. It sends no signal (kill with
// signal 0 only checks). A pid <= 0 is never alive. A pid can be reused, so the answer is only
// a hint for display; use [Open] to hold on to a process.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := unix.Kill(pid, 0); err != nil && err != unix.EPERM {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false // reaped meanwhile
	}
	// Field 3, the state, follows the command name, which is in parentheses and may itself
	// hold spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// KillOrphanedGroup sends SIGKILL to what is left of the process group that p led, after p
// itself has exited. The caller must be p's parent and must not have reaped p yet: while p is
// a zombie its pid, and so the group id, cannot be handed out again, which makes the kill
// safe. It returns nil when the group had no members left. It refuses (ErrRefused) the
// caller's own group and a process that has not exited (use [Process.SignalGroup] for that).
func (p *Process) KillOrphanedGroup() error {
	const op = "kill orphaned group of"
	exited, err := p.exitedNow(op)
	switch {
	case err != nil:
		return err
	case !exited:
		return fmt.Errorf("%w group %d: its leader has not exited", ErrRefused, p.pid)
	case p.pid == unix.Getpgrp():
		return fmt.Errorf("%w process group %d: it is this process's own group", ErrRefused, p.pid)
	}
	if err := unix.Kill(-p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("proc: %s pid %d: %w", op, p.pid, err)
	}
	return nil
}

// Cmdline returns the arguments a process was started with, from /proc/PID/cmdline. The
// error matches [ErrNotExist] when there is no such process.
func Cmdline(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("%w: pid %d", ErrNotExist, pid)
		}
		return nil, fmt.Errorf("proc: cmdline of pid %d: %w", pid, err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"), nil
}

// LeadsGroup reports whether the process pid exists and leads its own process group, as the
// programs shmmon supervises do.
func LeadsGroup(pid int) bool {
	pgid, err := unix.Getpgid(pid)
	return err == nil && pgid == pid
}

// HasEnv reports whether the process pid was started with kv ("KEY=VALUE") in its
// environment, from /proc/PID/environ (readable for the caller's own user, or by root).
func HasEnv(pid int, kv string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return false
	}
	return slices.Contains(strings.Split(string(b), "\x00"), kv)
}

// SameProgram reports whether the process pid runs the same executable as this process
// (/proc/PID/exe). It reports false when that cannot be read (another user's process, for
// a caller that is not root) or the process is gone.
func SameProgram(pid int) bool {
	self, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return false
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && strings.TrimSuffix(exe, " (deleted)") == strings.TrimSuffix(self, " (deleted)")
}

// Ppid returns the parent pid of the process pid, from field 4 of /proc/PID/stat. The error
// matches [ErrNotExist] when there is no such process.
func Ppid(pid int) (int, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("%w: pid %d", ErrNotExist, pid)
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
		return 0, fmt.Errorf("%w: pid %d", ErrNotExist, pid)
	}
	if err != nil {
		return 0, fmt.Errorf("proc: parent of pid %d: %w", pid, err)
	}
	// Fields are counted from after the last ')': the command name may hold anything.
	i := bytes.LastIndexByte(stat, ')')
	fields := bytes.Fields(stat[i+1:])
	if i < 0 || len(fields) < 2 {
		return 0, fmt.Errorf("proc: parent of pid %d: malformed /proc/%d/stat", pid, pid)
	}
	ppid, err := strconv.Atoi(string(fields[1]))
	if err != nil {
		return 0, fmt.Errorf("proc: parent of pid %d: %w", pid, err)
	}
	return ppid, nil
}

// maxDepth bounds the walk up the parent chain in [InTree].
const maxDepth = 256

// InTree reports whether the process pid belongs to the tree of root, a process that leads
// its own group (as the programs shmmon supervises do): pid is root, is in root's process
// group, or has root among its ancestors. A process whose parent died was reparented away
// from root's tree: it is still in the tree while it stays in root's group. Pids ≤ 1 and
// processes that are gone are never in a tree.
func InTree(pid, root int) bool {
	if pid <= 1 || root <= 1 {
		return false
	}
	if pid == root {
		return true
	}
	if pgid, err := unix.Getpgid(pid); err == nil && pgid == root {
		return true
	}
	for range maxDepth {
		ppid, err := Ppid(pid)
		if err != nil || ppid <= 1 {
			return false
		}
		if ppid == root {
			return true
		}
		pid = ppid
	}
	return false
}
