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

// TestRealUID: the real uid in a process's credentials, and ErrProcessDone once it has exited.
func TestRealUID(t *testing.T) {
	if c, err := sleeper(t, nil).Credentials(); err != nil || c.RealUid != uint32(os.Getuid()) {
		t.Errorf("real uid of a child = %d, %v; want %d", c.RealUid, err, os.Getuid())
	}
	if os.Geteuid() == 0 {
		const other = 42421
		if c, err := sleeper(t, &syscall.Credential{Uid: other, Gid: other}).Credentials(); err != nil || c.RealUid != other {
			t.Errorf("real uid of a process of uid %d = %d, %v", other, c.RealUid, err)
		}
	}
	c := startHelper(t, "exit 0", nil)
	p := open(t, c.pid())
	c.wait(t)
	if _, err := p.Credentials(); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("credentials of an exited process: %v, want os.ErrProcessDone", err)
	}
}
