package proc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"golang.org/x/sys/unix"
)

// helperCmd returns a command that runs the test binary in a helper mode.
func helperCmd(mode string) *exec.Cmd { return asHelper(exec.Command(os.Args[0]), mode) }

// asHelper makes cmd, which runs the test binary, run it in a helper mode.
func asHelper(cmd *exec.Cmd, mode string) *exec.Cmd {
	// The race detector otherwise holds every exit for a second.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "GORACE="+gorace)
	return cmd
}

// startChild starts cmd with StartChild and returns it with a reader of the lines it prints.
// When the test ends, what is left of its group is killed and it is reaped.
func startChild(t *testing.T, cmd *exec.Cmd) (*Child, func() string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = w
	c, err := StartChild(cmd)
	w.Close()
	if err != nil {
		r.Close()
		t.Fatalf("StartChild: %v", err)
	}
	t.Cleanup(func() {
		c.SignalGroup(syscall.SIGKILL)
		c.Wait()
		r.Close()
	})
	br := bufio.NewReader(r)
	return c, func() string {
		t.Helper()
		r.SetReadDeadline(time.Now().Add(long))
		s, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("child %d: read stdout: %v", c.Pid(), err)
		}
		return strings.TrimSuffix(s, "\n")
	}
}

// waitChild waits for c to end, up to long.
func waitChild(t *testing.T, c *Child) (ExitStatus, error) {
	t.Helper()
	testkit.Receive(t, c.Done(), long, fmt.Sprintf("child %d to be reaped", c.Pid()))
	return c.Wait()
}

// holdGrandchild returns a handle on the grandchild a "fork-sleep" helper printed the pid
// of, which this test, a subreaper, reaps when the test ends.
func holdGrandchild(t *testing.T, line string) *Process {
	t.Helper()
	pid, err := strconv.Atoi(line)
	if err != nil {
		t.Fatalf("helper printed no grandchild pid: %q", line)
	}
	gp := open(t, pid)
	t.Cleanup(func() {
		gp.Signal(syscall.SIGKILL)
		if gp.WaitExit(context.Background(), long) {
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, 0, nil) // ECHILD while its parent still runs
		}
	})
	return gp
}

// TestStartChild: each way a child ends is reported in the words shmmon logs, after it was
// reaped.
func TestStartChild(t *testing.T) {
	for _, tt := range []struct {
		name    string
		mode    string
		kill    bool // SIGKILL it once ready
		want    string
		success bool
	}{
		{name: "exits", mode: "exit 0", want: "exit 0", success: true},
		{name: "fails", mode: "exit 3", want: "exit 3"},
		{name: "crashes", mode: "crash", want: "signal aborted"},
		{name: "is killed", mode: "sleep", kill: true, want: "signal killed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := helperCmd(tt.mode)
			c, line := startChild(t, cmd)
			if tt.kill {
				if have := line(); have != "ready" {
					t.Fatalf("child printed %q, want ready", have)
				}
				if !LeadsGroup(c.Pid()) {
					t.Error("the child does not lead a process group")
				}
				if err := c.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
			st, err := waitChild(t, c)
			if st.String() != tt.want || st.Success() != tt.success || err != nil {
				t.Errorf("Wait = %q (success %v), %v; want %q (success %v), nil", st, st.Success(), err, tt.want, tt.success)
			}
			if cmd.ProcessState == nil {
				t.Error("the child was not reaped")
			}
			if err := c.Signal(0); !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("Signal after the end = %v, want os.ErrProcessDone", err)
			}
		})
	}
}

// TestStartChildGroup: what the child leaves in its group is killed once it has exited,
// and Terminate with Group stops a child that ignores SIGTERM, with its group.
func TestStartChildGroup(t *testing.T) {
	t.Run("grandchild left behind", func(t *testing.T) {
		c, line := startChild(t, helperCmd("fork-sleep"))
		gp := holdGrandchild(t, line())
		if err := c.Signal(syscall.SIGKILL); err != nil { // the leader alone
			t.Fatal(err)
		}
		if st, err := waitChild(t, c); st.String() != "signal killed" || err != nil {
			t.Errorf("Wait = %q, %v; want signal killed, nil", st, err)
		}
		if !gp.WaitExit(context.Background(), long) {
			t.Error("the grandchild left in the child's group still runs")
		}
	})
	t.Run("ignores SIGTERM", func(t *testing.T) {
		c, line := startChild(t, helperCmd("ignore-sigterm"))
		if have := line(); have != "ready" {
			t.Fatalf("child printed %q, want ready", have)
		}
		term, err := c.Terminate(context.Background(), TerminateOptions{KillAfter: 200 * time.Millisecond, Group: true})
		if !term.Signalled || !term.Killed || !term.Exited || err != nil {
			t.Errorf("Terminate = %+v, %v; want signalled, killed and exited", term, err)
		}
		if st, err := waitChild(t, c); st.String() != "signal killed" || err != nil {
			t.Errorf("Wait = %q, %v; want signal killed, nil", st, err)
		}
	})
}

// TestStartChildContext: when the context of a CommandContext ends, the whole group is
// killed; a context already done starts nothing.
func TestStartChildContext(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		const timeout = 300 * time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		began := time.Now()
		c, line := startChild(t, asHelper(exec.CommandContext(ctx, os.Args[0]), "fork-sleep"))
		gp := holdGrandchild(t, line())
		if st, err := waitChild(t, c); st.String() != "signal killed" || err != nil {
			t.Errorf("Wait = %q, %v; want signal killed, nil", st, err)
		}
		if took := time.Since(began); took < timeout {
			t.Errorf("the child ended after %v, before its timeout %v", took, timeout)
		}
		if !gp.WaitExit(context.Background(), long) {
			t.Error("the grandchild in the child's group still runs")
		}
	})
	t.Run("done before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		cmd := asHelper(exec.CommandContext(ctx, os.Args[0]), "sleep")
		if c, err := StartChild(cmd); c != nil || !errors.Is(err, context.Canceled) || cmd.Process != nil {
			t.Errorf("StartChild = %v, %v (process %v); want nil, context.Canceled, nothing started", c, err, cmd.Process)
		}
	})
}

// TestStartChildAttr: the caller's SysProcAttr (here a Credential) is kept, and not changed,
// and output goes to the caller's writers.
func TestStartChildAttr(t *testing.T) {
	u := testkit.NewUser(t)
	cmd := u.Command("/bin/sh", "-c", `id -u; echo $$ $(cut -d' ' -f5 /proc/$$/stat)`)
	attr := cmd.SysProcAttr
	var out bytes.Buffer
	cmd.Stdout = &out
	c, err := StartChild(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := waitChild(t, c); !st.Success() || err != nil {
		t.Fatalf("Wait = %q, %v; want exit 0, nil", st, err)
	}
	var uid uint32
	var pid, pgid int
	if _, err := fmt.Sscan(out.String(), &uid, &pid, &pgid); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if uid != u.Uid || pid != c.Pid() || pgid != pid {
		t.Errorf("the child ran as uid %d, pid %d in group %d; want uid %d, leading its group %d", uid, pid, pgid, u.Uid, c.Pid())
	}
	if attr.Setpgid || cmd.SysProcAttr.Credential != attr.Credential {
		t.Errorf("the caller's SysProcAttr was changed (%+v) or not kept (%+v)", attr, cmd.SysProcAttr)
	}
}

// TestChildEarlyClose: a handle closed before the exit is reported by Wait; a child of ours
// is still reaped, but what it left in its group is not killed.
func TestChildEarlyClose(t *testing.T) {
	t.Run("started", func(t *testing.T) {
		cmd := helperCmd("fork-sleep")
		c, line := startChild(t, cmd)
		gp := holdGrandchild(t, line())
		c.Close()
		cmd.Process.Kill()
		if _, err := waitChild(t, c); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Wait error = %v, want os.ErrClosed", err)
		}
		if cmd.ProcessState == nil {
			t.Error("the child was not reaped")
		}
		if gp.Exited() {
			t.Error("the grandchild was killed through a closed handle")
		}
	})
	t.Run("adopted", func(t *testing.T) {
		h := startHelper(t, "sleep", nil)
		h.ready(t)
		c := Adopted(open(t, h.pid()))
		c.Close()
		if _, err := waitChild(t, c); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Wait error = %v, want os.ErrClosed", err)
		}
	})
}

// TestAdopted: a process that is not the caller's child ends with an unknown status, and is
// left to its parent to reap.
func TestAdopted(t *testing.T) {
	h := startHelper(t, "sleep", nil) // this test is its parent, not the Child
	h.ready(t)
	p, err := Open(h.pid())
	if err != nil {
		t.Fatal(err)
	}
	c := Adopted(p)
	select {
	case <-c.Done():
		t.Fatal("Done before the exit")
	case <-time.After(50 * time.Millisecond):
	}
	if err := c.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if st, err := waitChild(t, c); st.String() != "unknown (not started, or adopted)" || st.Success() || err != nil {
		t.Errorf("Wait = %q (success %v), %v; want unknown, not a success, nil", st, st.Success(), err)
	}
	if sig := h.wait(t); sig != syscall.SIGKILL {
		t.Errorf("the adopted process, reaped by its parent, ended by %v, want SIGKILL", sig)
	}
}

func TestExitStatusZero(t *testing.T) {
	var st ExitStatus
	if st.String() != "unknown (not started, or adopted)" || st.Success() {
		t.Errorf("zero ExitStatus = %q, success %v", st, st.Success())
	}
}
