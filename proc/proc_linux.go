package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
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
// it: until then, or until the process exits, its pidfd stays registered with
// the package's exit watcher (see [Open]).
type Process struct {
	pid int

	// f owns the pidfd. It is an os.File rather than a bare descriptor
	// because the File counts references: Close cannot release the number
	// while a signal is being sent through it, or while it is being added to
	// or removed from the exit watcher's epoll set, so a racing Close never
	// lets a signal or an epoll_ctl go through a number reused for another
	// descriptor. The pidfd is blocking, so the File stays out of the
	// runtime poller: the exit watcher waits for it instead, for every
	// handle at once.
	f  *os.File
	rc syscall.RawConn

	w         *exitWatcher  // the package's exit watcher
	id        uint64        // the pidfd's key in w, unique for the life of the process
	exited    chan struct{} // closed by the exit watcher once the process has exited
	closed    chan struct{} // closed by Close once the handle has left the exit watcher
	closeOnce sync.Once

	afters []*afterExit // callbacks of AfterExit waiting for the exit; guarded by w.mu
}

// Open returns a handle on the process pid. Outcomes:
//
//   - pid ≤ 1 or pid == [os.Getpid]: nil and an error wrapping [ErrRefused]
//     that names the pid.
//   - No such process: nil and an error wrapping [ErrNotExist] (and so
//     matching [fs.ErrNotExist]). A process that has exited but not yet been
//     reaped still exists: Open succeeds and the handle reports it exited.
//   - pidfd_open fails otherwise (for example ENOSYS before Linux 5.10, or
//     EINVAL when pid is a thread that does not lead its process), or the
//     pidfd cannot be added to the exit watcher's epoll set: nil and the
//     wrapped error.
//
// Otherwise the handle, which the caller must Close.
//
// The first Open starts the package's exit watcher: one epoll set holding the
// pidfds of all open handles, and one goroutine waiting on it, which closes
// each handle's exited channel (which [Process.WaitExit] waits for) and starts its
// [Process.AfterExit] callbacks.
// That goroutine is the only one the package owns; it lives as long as the
// process and keeps an OS thread blocked in epoll_wait. However many handles
// are open, none costs a goroutine of its own.
func Open(pid int) (*Process, error) {
	switch {
	case pid <= 1:
		return nil, fmt.Errorf("%w pid %d: only pids above 1 name one user process", ErrRefused, pid)
	case pid == os.Getpid():
		return nil, fmt.Errorf("%w pid %d: it is this process", ErrRefused, pid)
	}
	// Without PIDFD_NONBLOCK, os.NewFile leaves the pidfd out of the runtime
	// poller: no poll descriptor, and no goroutine parked on it.
	fd, err := unix.PidfdOpen(pid, 0)
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
	w, err := exits()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("proc: open pid %d: %w", pid, err)
	}
	p := &Process{
		pid:    pid,
		f:      f,
		rc:     rc,
		w:      w,
		exited: make(chan struct{}),
		closed: make(chan struct{}),
	}
	if err := w.add(p); err != nil {
		f.Close()
		return nil, fmt.Errorf("proc: open pid %d: %w", pid, err)
	}
	return p, nil
}

// exitWatcher notices the exits of the processes of all open handles: each
// pidfd is in one epoll set, keyed by its handle's id, and run waits on the
// set. A pidfd becomes readable when its process exits, so each event is an
// exit. Ids are never reused, unlike fd numbers, so an event that arrives for
// a handle already closed (whose number may now be another handle's pidfd)
// finds no entry and is ignored.
type exitWatcher struct {
	epfd int

	mu    sync.Mutex
	last  uint64              // the last id handed out
	procs map[uint64]*Process // open handles whose exit has not been seen
}

var (
	exitsMu  sync.Mutex
	theExits *exitWatcher // nil until exits first succeeds
)

// exits returns the exit watcher, creating it and starting its goroutine on
// the first call. If epoll_create1 fails (say with EMFILE while the process
// is out of descriptors), it returns the error and the next call tries
// again, rather than keeping every later Open failing the way a sync.Once
// would.
func exits() (*exitWatcher, error) {
	exitsMu.Lock()
	defer exitsMu.Unlock()
	if theExits != nil {
		return theExits, nil
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("exit watcher: epoll_create1: %w", err)
	}
	theExits = &exitWatcher{epfd: epfd, procs: make(map[uint64]*Process)}
	// The package's one goroutine; the epoll set lives as long as the
	// process, and so does this.
	go theExits.run()
	return theExits, nil
}

// add gives p an id and adds its pidfd to the epoll set. The pidfd is armed
// for one event (EPOLLONESHOT): a pidfd stays readable once its process has
// exited, and one event is all the watcher needs.
func (w *exitWatcher) add(p *Process) error {
	w.mu.Lock()
	w.last++
	p.id = w.last
	// In the map before the pidfd is in the set, so an exit that comes at
	// once finds it.
	w.procs[p.id] = p
	w.mu.Unlock()

	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT}
	setEventID(&ev, p.id)
	var err error
	if cerr := p.rc.Control(func(fd uintptr) {
		err = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	}); cerr != nil {
		err = cerr
	}
	if err != nil {
		w.mu.Lock()
		delete(w.procs, p.id)
		w.mu.Unlock()
		return fmt.Errorf("exit watcher: epoll_ctl add: %w", err)
	}
	return nil
}

// remove takes p out of the watcher, dropping the AfterExit callbacks that
// have not started, and its pidfd out of the epoll set. Once it returns, the
// watcher no longer touches p: p.exited is closed already or never will be.
func (w *exitWatcher) remove(p *Process) error {
	w.mu.Lock()
	delete(w.procs, p.id)
	p.afters = nil
	w.mu.Unlock()

	var err error
	if cerr := p.rc.Control(func(fd uintptr) {
		err = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	}); cerr != nil {
		err = cerr
	}
	// ENOENT or EBADF: not in the set (any more); nothing to undo.
	if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EBADF) {
		return fmt.Errorf("exit watcher: epoll_ctl del: %w", err)
	}
	return nil
}

// run waits for exits for the rest of the process's life.
func (w *exitWatcher) run() {
	events := make([]unix.EpollEvent, 64)
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			// Only EBADF, EFAULT or EINVAL, none possible with this set
			// and buffer, which nothing closes or frees.
			panic(fmt.Sprintf("proc: exit watcher: epoll_wait: %v", err))
		}
		for i := range events[:n] {
			w.exit(eventID(&events[i]))
		}
	}
}

// exit records the exit of the process of the handle id, if that handle is
// still watched: it closes the handle's exited channel and starts its
// AfterExit callbacks, each on its own goroutine.
func (w *exitWatcher) exit(id uint64) {
	w.mu.Lock()
	p, ok := w.procs[id]
	if !ok {
		w.mu.Unlock()
		return
	}
	delete(w.procs, id)
	close(p.exited)
	afters := p.afters
	p.afters = nil
	for _, a := range afters {
		a.started = true
	}
	w.mu.Unlock()
	for _, a := range afters {
		go a.f()
	}
}

// setEventID stores id as the event's data, which the kernel hands back with
// each event. Fd and Pad together are the 64 bits of epoll_data on every
// architecture; which half is which does not matter, as eventID reads them
// back the same way.
func setEventID(ev *unix.EpollEvent, id uint64) {
	ev.Fd = int32(uint32(id))
	ev.Pad = int32(uint32(id >> 32))
}

// eventID is the id setEventID stored in ev.
func eventID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// afterExit is one callback registered with [Process.AfterExit].
type afterExit struct {
	p       *Process
	f       func()
	started bool // guarded by p.w.mu
}

// AfterExit arranges for f to run on its own goroutine once the process has
// exited, reaped or not: a moment after the exit, when the exit watcher sees
// it, or at once if the exit was seen already (even if the handle has
// been closed since). A handle closed before the exit was seen never runs f,
// whether f was registered before or after Close: [Process.Close] drops the
// callbacks that have not started.
//
// It returns stop, which unregisters f. stop reports whether f has not been
// started and never will be: true if this or an earlier call of stop removed
// f, or if Close dropped it; false once f has been started, in which case f
// may still be running (stop does not wait for it). It may be called any
// number of times, from any goroutine.
//
// f must not be nil. Each call costs two small allocations and no system
// call.
func (p *Process) AfterExit(f func()) (stop func() bool) {
	if f == nil {
		panic("proc: AfterExit with a nil func")
	}
	a := &afterExit{p: p, f: f}
	w := p.w
	w.mu.Lock()
	_, watched := w.procs[p.id]
	now := !watched && isClosed(p.exited)
	switch {
	case watched:
		p.afters = append(p.afters, a)
	case now:
		a.started = true
	}
	// Otherwise the handle was closed before the exit was seen.
	w.mu.Unlock()
	// Not a.started: once a is in p.afters, it is the watcher's to change.
	if now {
		go f()
	}
	return a.stop
}

// stop is the stop function of [Process.AfterExit].
func (a *afterExit) stop() bool {
	w := a.p.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if a.started {
		return false
	}
	if i := slices.Index(a.p.afters, a); i >= 0 {
		a.p.afters = slices.Delete(a.p.afters, i, i+1)
	}
	return true
}

// isClosed reports whether the channel c is closed.
func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
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
	case <-p.closed:
		// Close took the handle out of the exit watcher before closing
		// closed, so exited is closed by now if it ever will be.
		return isClosed(p.exited)
	case <-ctx.Done():
		return false
	case <-expired:
		return false
	}
}

// Close takes the handle out of the exit watcher and releases the pidfd. It
// returns nil, or the error from doing so on the first call, and nil on
// every later call. After Close, signals fail with an error matching
// [os.ErrClosed]; Exited, WaitExit and AfterExit report only an exit
// seen before; AfterExit callbacks that had not started never run (Close
// does not wait for those that have). Close does not signal or reap the
// process.
func (p *Process) Close() error {
	var err error
	p.closeOnce.Do(func() {
		// The pidfd is closed before closed is: whoever closed wakes (WaitExit) then finds
		// the handle closed, not a pidfd that still says the process runs.
		if err = errors.Join(p.w.remove(p), p.f.Close()); err != nil {
			err = fmt.Errorf("proc: close pid %d: %w", p.pid, err)
		}
		close(p.closed)
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

// killOrphanedGroup sends SIGKILL to what is left of the process group that p led, after p
// itself has exited. The caller must be p's parent and must not have reaped p yet: while p is
// a zombie its pid, and so the group id, cannot be handed out again, which makes the kill
// safe. It returns nil when the group had no members left. It refuses (ErrRefused) the
// caller's own group and a process that has not exited (use [Process.SignalGroup] for that).
// [StartChild] does this for the children it starts.
func (p *Process) killOrphanedGroup() error {
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

// signalNum returns the signal named name ("SIGTERM"), or 0 if there is none.
func signalNum(name string) syscall.Signal { return unix.SignalNum(name) }
