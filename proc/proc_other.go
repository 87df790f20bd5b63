//go:build !linux

package proc

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// errUnsupported is what every call returns on this platform: pidfds are
// Linux only, and shmmon signals processes through nothing else.
var errUnsupported = fmt.Errorf("proc: process control needs Linux pidfds, not %s: %w",
	runtime.GOOS, errors.ErrUnsupported)

// Process is a handle on one process. None can be opened on this platform;
// see [Open].
type Process struct{}

// Open returns nil and an error matching [errors.ErrUnsupported]: on this
// platform there are no pidfds.
func Open(pid int) (*Process, error) { return nil, errUnsupported }

// Pid returns 0: no Process exists on this platform.
func (p *Process) Pid() int { return 0 }

// Signal returns an error matching [errors.ErrUnsupported].
func (p *Process) Signal(sig syscall.Signal) error { return errUnsupported }

// SignalGroup returns an error matching [errors.ErrUnsupported].
func (p *Process) SignalGroup(sig syscall.Signal) error { return errUnsupported }

// Exited reports false.
func (p *Process) Exited() bool { return false }

// AfterExit never runs f: no process is watched on this platform. The stop it
// returns reports true.
func (p *Process) AfterExit(f func()) (stop func() bool) { return func() bool { return true } }

// WaitExit reports false at once.
func (p *Process) WaitExit(ctx context.Context, timeout time.Duration) bool { return false }

// Close returns nil.
func (p *Process) Close() error { return nil }

// StartChild returns nil and an error matching [errors.ErrUnsupported]
// without starting cmd.
func StartChild(cmd *exec.Cmd) (*Child, error) { return nil, errUnsupported }

// StartTime returns the zero time and an error matching
// [errors.ErrUnsupported].
func StartTime(pid int) (time.Time, error) { return time.Time{}, errUnsupported }

func signalName(sig syscall.Signal) string { return sig.String() }

// Alive always reports false on this platform.
func Alive(pid int) bool { return false }

// killOrphanedGroup is unsupported on this platform.
func (p *Process) killOrphanedGroup() error { return errUnsupported }

// Cmdline is unsupported on this platform.
func Cmdline(pid int) ([]string, error) { return nil, errUnsupported }

// LeadsGroup always reports false on this platform.
func LeadsGroup(pid int) bool { return false }

// HasEnv always reports false on this platform.
func HasEnv(pid int, kv string) bool { return false }

// SameProgram always reports false on this platform.
func SameProgram(pid int) bool { return false }

// Ppid is Linux only.
func Ppid(pid int) (int, error) { return 0, errUnsupported }

// InTree is Linux only: it reports false.
func InTree(pid, root int) bool { return false }

// Credentials is Linux only.
func (p *Process) Credentials() (Credentials, error) { return Credentials{}, errUnsupported }

// MapsFile is Linux only.
func (p *Process) MapsFile(dev, ino uint64) (bool, error) { return false, errUnsupported }

// SysVAttached is Linux only.
func (p *Process) SysVAttached(key, shmid int) (bool, error) { return false, errUnsupported }

// signalNum returns the signal named name ("SIGTERM"), or 0 if there is none. Only the
// signals the syscall package defines everywhere are known here; shmmon runs on Linux.
func signalNum(name string) syscall.Signal {
	switch name {
	case "SIGTERM":
		return syscall.SIGTERM
	case "SIGKILL":
		return syscall.SIGKILL
	case "SIGINT":
		return syscall.SIGINT
	case "SIGHUP":
		return syscall.SIGHUP
	case "SIGQUIT":
		return syscall.SIGQUIT
	}
	return 0
}

// StartChildWith returns nil and an error matching [errors.ErrUnsupported] without starting
// cmd.
func StartChildWith(cmd *exec.Cmd, opts ChildOptions) (*Child, error) { return nil, errUnsupported }

// TreeUsage is Linux only.
func TreeUsage(root int) (Usage, error) { return Usage{}, errUnsupported }

// PidsUsage is Linux only: it returns the zero Usage.
func PidsUsage(pids []int) Usage { return Usage{} }

// PeerOf returns an error matching [errors.ErrUnsupported].
func PeerOf(c syscall.Conn) (Peer, error) { return Peer{}, errUnsupported }
