package proc

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// sleeper starts sleep as uid (with cred) and returns a handle on it; both end with the test.
func sleeper(t *testing.T, cred *syscall.Credential) *Process {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return open(t, cmd.Process.Pid)
}

// TestRealUID: the real uid of a process, and ErrProcessDone once it has exited.
func TestRealUID(t *testing.T) {
	if uid, err := sleeper(t, nil).RealUID(); err != nil || uid != uint32(os.Getuid()) {
		t.Errorf("RealUID of a child = %d, %v; want %d", uid, err, os.Getuid())
	}
	if os.Geteuid() == 0 {
		const other = 42421
		if uid, err := sleeper(t, &syscall.Credential{Uid: other, Gid: other}).RealUID(); err != nil || uid != other {
			t.Errorf("RealUID of a process of uid %d = %d, %v", other, uid, err)
		}
	}
	c := startHelper(t, "exit 0", nil)
	p := open(t, c.pid())
	c.wait(t)
	if _, err := p.RealUID(); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("RealUID of an exited process: %v, want os.ErrProcessDone", err)
	}
}
