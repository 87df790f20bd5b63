package proc

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// Child is a process started by [StartChild] (or held by [Adopted]), with how it ended once
// it has. Its [Process] is the handle on it: signal it through that, or stop it and its group
// with [Process.Terminate] and Group set. The Child releases the handle once the process has
// ended; do not Close it before (an early Close keeps StartChild from killing what is left of
// the group, which [Child.Wait] then reports).
type Child struct {
	*Process

	done   chan struct{} // closed once status and err are set
	status ExitStatus
	err    error
}

// Adopted returns a Child for p, a process the caller holds but did not start (for example
// one a previous monitor left): not its child, so its status is its own parent's to see, and
// its parent reaps it. Once the exit is seen through the pidfd, Done is closed and Wait
// returns the zero [ExitStatus] and nil; what is left of its group is not killed, as its
// group id may be reused once its parent has reaped it. The Child owns p from now on.
func Adopted(p *Process) *Child {
	c := &Child{Process: p, done: make(chan struct{})}
	go c.end(func() (ExitStatus, error) {
		if !c.Exited() { // the handle was closed before the exit
			return ExitStatus{}, fmt.Errorf("proc: wait for pid %d: %w", c.Pid(), os.ErrClosed)
		}
		return ExitStatus{}, nil
	})
	return c
}

// end is the goroutine of a Child: it waits for the exit through the pidfd, then has reap
// tell how the child ended, and publishes that. It ends with the process, which a caller can
// hasten with Terminate.
func (c *Child) end(reap func() (ExitStatus, error)) {
	c.WaitExit(context.Background(), 0)
	c.status, c.err = reap()
	c.Close()
	close(c.done)
}

// Done returns a channel that is closed once the child has ended and, if it is the caller's
// child, been reaped.
func (c *Child) Done() <-chan struct{} { return c.done }

// Wait waits until Done is closed and returns how the child ended. The error is not the
// child's own failure (that is in the status): it says that what was left of the child's
// group could not be killed, so its members may still run, or, matching [os.ErrClosed], that
// the handle was closed before the exit was seen. Only the latter is possible for an
// [Adopted] process.
func (c *Child) Wait() (ExitStatus, error) {
	<-c.done
	return c.status, c.err
}

// ExitStatus is how a process ended. The zero value is an unknown end: a process that was
// not started, or one that is not the caller's child ([Adopted]), whose status only its own
// parent sees.
type ExitStatus struct {
	state *os.ProcessState
}

// String says how the process ended in the words shmmon logs:
//
//   - "exit N": it exited with code N ("exit 0", "exit 3").
//   - "signal NAME": a signal ended it, named as [syscall.Signal.String] names it ("signal
//     killed", "signal terminated", "signal segmentation fault").
//   - "unknown (not started, or adopted)": the zero ExitStatus.
func (s ExitStatus) String() string {
	if s.state == nil {
		return "unknown (not started, or adopted)"
	}
	if ws, ok := s.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	return "exit " + strconv.Itoa(s.state.ExitCode())
}

// Success reports whether the process exited with code 0; it is false for an unknown end.
func (s ExitStatus) Success() bool { return s.state != nil && s.state.Success() }

// ChildOptions are what [StartChildWith] does to a child beyond what [StartChild] does.
//
// Go starts a program with fork and exec in one step (os/exec has no hook between them, and
// syscall.SysProcAttr has no resource limits), so a child that must be changed before its
// program runs is started through a gate: this same binary (/proc/self/exe, whatever it is:
// shmmon, a test binary), whose package proc, at its initialization (before main, or the
// tests, run), sees argv[0] "shmmon: start gate". The gate sets the limits on itself
// (setrlimit(2), after the Go runtime's own change of its soft limit of open files), joins
// Cgroup, takes the caller's Credential (which StartChildWith takes out of cmd's SysProcAttr:
// the gate runs with the caller's privileges until then, so a root monitor may raise a hard
// limit), and executes the program in its own place: same pid, process group and output.
// It reports a failure on a socket that its exec closes, so a limit that cannot be set fails
// the start, and the program never runs. The gate costs one more execve (a few
// milliseconds) and is used only when Rlimits or Cgroup are set.
type ChildOptions struct {
	// Rlimits are set on the child before it runs its program (see [Limit]).
	Rlimits []Rlimit
	// Cgroup, when set, is the directory of a cgroup (v2) the child joins before it runs its
	// program, by writing its pid into the cgroup's cgroup.procs: for a kernel that cannot
	// start it there (SysProcAttr.UseCgroupFD).
	Cgroup string
	// AfterExit, when set, is called once the child has exited and what was left of its
	// group was killed, before it is reaped: to kill what it left elsewhere (a cgroup's other
	// members, which may hold its output pipes open and so delay the reaping). Its error is
	// reported by [Child.Wait].
	AfterExit func() error
}
