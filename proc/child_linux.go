package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// StartChild starts cmd in a process group of its own and holds it through a pidfd. The
// caller prepares cmd as for [exec.Cmd.Start] (arguments, environment, directory, output
// writers, SysProcAttr with a Credential, WaitDelay); StartChild sets Setpgid in a copy of its
// SysProcAttr (Pgid 0), and, for a cmd made by [exec.CommandContext], replaces Cancel: when
// the context is done, the whole group is sent SIGKILL through the held process, not the
// leader alone. Outcomes:
//
//   - The child runs: its [Child], nil. The package then waits for the exit through the
//     pidfd, kills (SIGKILL) what is left of the child's group while the child is an unreaped
//     zombie (its pid, which is the group's id, cannot be reused until it is reaped), reaps
//     it (cmd.Wait, which returns once its output is copied or WaitDelay has passed), and
//     closes [Child.Done]; [Child.Wait] returns how it ended.
//   - cmd cannot be started (a missing program, an expired context): nil and the error of
//     cmd.Start, wrapped; cmd.Process is nil.
//   - It started but cannot be held (pidfd_open failed, say with EMFILE): its group is
//     killed and it is reaped; nil and the error of [Open], wrapped. cmd.Process and
//     cmd.ProcessState are set.
func StartChild(cmd *exec.Cmd) (*Child, error) { return StartChildWith(cmd, ChildOptions{}) }

// StartChildWith is [StartChild] with what opts adds: resource limits and a cgroup to join
// before the program runs, and a step after it ended (see [ChildOptions]). Without Rlimits
// and Cgroup the program is started directly, as by StartChild; with them, through the gate.
// Outcomes, beyond StartChild's:
//
//   - The gate could not set a limit, join the cgroup, take the credential, or execute the
//     program: it is killed (it never ran the program) and reaped; nil and the error.
func StartChildWith(cmd *exec.Cmd, opts ChildOptions) (*Child, error) {
	gated := len(opts.Rlimits) > 0 || opts.Cgroup != ""
	var child, parent *os.File // the gate's socket: its end, and ours
	if gated {
		var err error
		if child, parent, err = gate(cmd, opts); err != nil {
			return nil, err
		}
		defer child.Close()
		defer parent.Close()
	}
	var attr syscall.SysProcAttr
	if cmd.SysProcAttr != nil {
		attr = *cmd.SysProcAttr
	}
	attr.Setpgid, attr.Pgid = true, 0
	cmd.SysProcAttr = &attr

	c := &Child{done: make(chan struct{})}
	held := make(chan struct{}) // closed once c.Process is set, or will not be
	var cancelErr error         // written by Cancel, read after cmd.Wait, which waits for it
	if cmd.Cancel != nil {
		// os/exec calls Cancel on a goroutine of its own, as soon as the context is done,
		// which may be before Open below.
		cmd.Cancel = func() error {
			<-held
			if c.Process == nil {
				return os.ErrProcessDone // StartChild killed it
			}
			err := c.SignalGroup(syscall.SIGKILL)
			if err != nil && !errors.Is(err, os.ErrProcessDone) {
				cancelErr = err
			}
			return err
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("proc: start child: %w", err)
	}
	pid := cmd.Process.Pid
	// The child is unreaped until cmd.Wait: its pid names it, and its group, until then.
	p, err := Open(pid)
	if err != nil {
		close(held)
		unix.Kill(-pid, syscall.SIGKILL)
		cmd.Wait()
		return nil, fmt.Errorf("proc: start child pid %d: killed, as it cannot be held: %w", pid, err)
	}
	c.Process = p
	close(held)
	if gated {
		child.Close() // the gate's own now: its exec must be the end of the socket's last writer
		if err := passed(parent); err != nil {
			c.SignalGroup(syscall.SIGKILL)
			cmd.Wait()
			c.Close()
			return nil, fmt.Errorf("proc: start child pid %d: killed before it ran: %w", pid, err)
		}
	}
	go c.end(func() (ExitStatus, error) {
		err := c.killOrphanedGroup()
		if opts.AfterExit != nil {
			err = errors.Join(err, opts.AfterExit())
		}
		cmd.Wait()
		return ExitStatus{cmd.ProcessState}, errors.Join(cancelErr, err)
	})
	return c, nil
}
