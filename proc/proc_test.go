//go:build linux

package proc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmmon/shmmon/internal/testkit"
)

// helperEnv selects a helper mode: the test binary started with it set
// impersonates a process to be signalled instead of running the tests.
const helperEnv = "SHMMON_PROC_TEST_HELPER"

// long bounds waits for things that should happen quickly, generously so a
// loaded machine does not fail the tests; no test waits this long when it
// passes.
const long = 30 * time.Second

func TestMain(m *testing.M) {
	if mode, ok := os.LookupEnv(helperEnv); ok {
		os.Exit(helper(mode))
	}
	// Grandchildren orphaned by a killed helper are reparented to the test,
	// which can then reap them (see startGroup) rather than leaving zombies
	// to an init that may not reap.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "proc test: PR_SET_CHILD_SUBREAPER:", err)
	}
	os.Exit(m.Run())
}

// helper runs one helper mode and returns the exit code. Blocking modes
// print one line when ready to be signalled, then block for at most
// helperLife, so a helper left behind by a crashed test still goes away.
//
//   - "sleep": print "ready", block.
//   - "ignore-sigterm": ignore SIGTERM, print "ready", block.
//   - "exit N": exit with code N at once.
//   - "crash": panic, and so die of SIGABRT as GOTRACEBACK=crash has it.
//   - "comm NAME": set its command name to NAME, print "ready", block.
//   - "fork-sleep": start a grandchild in "sleep" mode, in its own process
//     group, print the grandchild's pid, block.
//   - "signal-group PID": open PID and send signal 0 to its group; print
//     "refused" if that was refused with ErrRefused, else what happened.
//   - "shm-attach ID": attach the System V segment ID, print "ready", block.
//   - "mmap-file PATH": map the first page of the file PATH, print "ready", block.
//   - "open-emfile PID": the first Open in the process, with room for the
//     pidfd but not for the exit watcher's epoll set; print its error, then
//     whether the pidfd was closed ("pidfd closed"), then, with the room
//     back, the error of a second Open ("reopened: <nil>").
func helper(mode string) int {
	const helperLife = 5 * time.Minute
	mode, arg, _ := strings.Cut(mode, " ")
	// err ends a mode that failed (status 2); ready, when set, is the line a blocking mode
	// prints before it blocks.
	var err error
	ready := ""
	switch mode {
	case "sleep":
		ready = "ready"
	case "ignore-sigterm":
		signal.Ignore(syscall.SIGTERM)
		ready = "ready"
	case "exit":
		var code int
		if code, err = strconv.Atoi(arg); err == nil {
			return code
		}
	case "crash":
		debug.SetTraceback("crash")
		panic("helper crash")
	case "comm":
		err = os.WriteFile("/proc/self/comm", []byte(arg), 0)
		ready = "ready"
	case "fork-sleep":
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"=sleep")
		cmd.Stderr = os.Stderr
		if err = cmd.Start(); err == nil {
			ready = strconv.Itoa(cmd.Process.Pid)
		}
	case "signal-group":
		var pid int
		if pid, err = strconv.Atoi(arg); err == nil {
			signalGroup(pid)
			return 0
		}
	case "shm-attach":
		var id int
		if id, err = strconv.Atoi(arg); err == nil {
			_, err = unix.SysvShmAttach(id, 0, 0)
		}
		ready = "ready"
	case "mmap-file":
		var f *os.File
		if f, err = os.Open(arg); err == nil {
			_, err = unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ, unix.MAP_SHARED)
			f.Close()
		}
		ready = "ready"
	case "open-emfile":
		var pid int
		if pid, err = strconv.Atoi(arg); err == nil {
			if err = openEMFILE(pid); err == nil {
				return 0
			}
		}
	default:
		fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
		return 2
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", mode, err)
		return 2
	}
	fmt.Println(ready)
	time.Sleep(helperLife)
	return 2
}

// signalGroup is the helper mode "signal-group": it opens pid and sends signal 0 to its
// group, and prints "refused" if that was refused with ErrRefused, else what happened.
func signalGroup(pid int) {
	p, err := Open(pid)
	if err == nil {
		err = p.SignalGroup(0)
		p.Close()
	}
	if errors.Is(err, ErrRefused) {
		fmt.Println("refused")
	} else {
		fmt.Printf("not refused: %v\n", err)
	}
}

// openEMFILE is the helper mode "open-emfile".
func openEMFILE(pid int) error {
	// Opening a file first sets up the runtime poller's own descriptors,
	// so the lowest free descriptor is free for the pidfd afterwards.
	f, err := os.Open("/dev/null")
	if err != nil {
		return err
	}
	lowest := f.Fd()
	f.Close()
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	tight := lim
	tight.Cur = uint64(lowest) + 1
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &tight); err != nil {
		return err
	}
	p, err := Open(pid)
	fmt.Println(err)
	if p != nil {
		p.Close()
	}
	if f, err := os.Open("/dev/null"); err == nil {
		fmt.Println("pidfd closed")
		f.Close()
	} else {
		fmt.Println("pidfd left open:", err)
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	p, err = Open(pid)
	fmt.Println("reopened:", err)
	if p != nil {
		p.Close()
	}
	return nil
}

// child is a helper process started by a test.
type child struct {
	cmd *exec.Cmd
	out *os.File // read end of its stdout
	r   *bufio.Reader
}

// startHelper starts the test binary in helper mode with attr, and makes
// sure it is killed and reaped when the test ends.
func startHelper(t testing.TB, mode string, attr *syscall.SysProcAttr) *child {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	// The race detector otherwise holds every exit for a second.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "GORACE="+gorace)
	cmd.Stdout = w
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = attr
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		t.Fatalf("start helper %q: %v", mode, err)
	}
	t.Cleanup(func() {
		r.Close()
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return &child{cmd: cmd, out: r, r: bufio.NewReader(r)}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// line returns the next line the helper prints.
func (c *child) line(t testing.TB) string {
	t.Helper()
	c.out.SetReadDeadline(time.Now().Add(long))
	s, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatalf("helper %d: read stdout: %v", c.pid(), err)
	}
	return strings.TrimSuffix(s, "\n")
}

// ready waits for the helper's "ready" line.
func (c *child) ready(t testing.TB) {
	t.Helper()
	if have := c.line(t); have != "ready" {
		t.Fatalf("helper %d printed %q, want %q", c.pid(), have, "ready")
	}
}

// wait reaps the helper and returns the signal that ended it, or -1 if it
// exited normally.
func (c *child) wait(t *testing.T) syscall.Signal {
	t.Helper()
	err := c.cmd.Wait()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("wait helper %d: %v", c.pid(), err)
	}
	ws := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() {
		return -1
	}
	return ws.Signal()
}

// open opens pid and closes the handle when the test ends.
func open(t *testing.T, pid int) *Process {
	t.Helper()
	p, err := Open(pid)
	if err != nil {
		t.Fatalf("Open(%d): %v", pid, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// gonePid returns the pid of a helper that has exited and been reaped. The
// kernel hands out pids in increasing order, so it is not reused during a
// test short of a wrap-around.
func gonePid(t *testing.T) int {
	t.Helper()
	c := startHelper(t, "exit 0", nil)
	if sig := c.wait(t); sig != -1 {
		t.Fatalf("helper killed by %v", sig)
	}
	return c.pid()
}

// alive reports whether p is still running after a short grace period in
// which a process just sent SIGKILL would be gone. It cannot wrongly report
// a dead process alive.
func alive(p *Process) bool {
	return !p.WaitExit(context.Background(), 200*time.Millisecond)
}

func TestOpen(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		for _, pid := range []int{0, 1, -5, os.Getpid()} {
			p, err := Open(pid)
			if !errors.Is(err, ErrRefused) {
				t.Errorf("Open(%d) = %v, %v; want ErrRefused", pid, p, err)
				continue
			}
			if !strings.Contains(err.Error(), strconv.Itoa(pid)) {
				t.Errorf("Open(%d) error %q does not name the pid", pid, err)
			}
		}
	})
	t.Run("no such process", func(t *testing.T) {
		pid := gonePid(t)
		p, err := Open(pid)
		if !errors.Is(err, ErrNotExist) || !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Open(%d) = %v, %v; want ErrNotExist matching fs.ErrNotExist", pid, p, err)
		}
	})
	t.Run("ok", func(t *testing.T) {
		c := startHelper(t, "sleep", nil)
		p := open(t, c.pid())
		if have := p.Pid(); have != c.pid() {
			t.Errorf("Pid() = %d, want %d", have, c.pid())
		}
		if p.Exited() {
			t.Error("Exited() = true for a running process")
		}
		if err := p.Signal(0); err != nil {
			t.Errorf("Signal(0) = %v, want nil", err)
		}
	})
}

func TestTerminate(t *testing.T) {
	tests := []struct {
		name      string
		mode      string
		opts      TerminateOptions
		want      Termination // Took is not compared
		wantSteps []string
		wantSig   syscall.Signal // the signal the helper died of
	}{
		{
			name:      "exits on SIGTERM",
			mode:      "sleep",
			opts:      TerminateOptions{KillAfter: long},
			want:      Termination{Signalled: true, Exited: true},
			wantSteps: []string{"signal", "exited"},
			wantSig:   syscall.SIGTERM,
		},
		{
			name:      "exits on SIGINT",
			mode:      "sleep",
			opts:      TerminateOptions{Signal: syscall.SIGINT, KillAfter: long},
			want:      Termination{Signalled: true, Exited: true},
			wantSteps: []string{"signal", "exited"},
			wantSig:   syscall.SIGINT,
		},
		{
			name:      "ignores SIGTERM",
			mode:      "ignore-sigterm",
			opts:      TerminateOptions{KillAfter: 100 * time.Millisecond},
			want:      Termination{Signalled: true, Killed: true, Exited: true},
			wantSteps: []string{"signal", "kill", "exited"},
			wantSig:   syscall.SIGKILL,
		},
		{
			name:      "ends on the dump signal",
			mode:      "sleep",
			opts:      TerminateOptions{Dump: syscall.SIGHUP, DumpWait: long, KillAfter: long},
			want:      Termination{Signalled: true, Dumped: true, Exited: true},
			wantSteps: []string{"dump", "exited"},
			wantSig:   syscall.SIGHUP,
		},
		{
			name:      "outlives the dump wait",
			mode:      "sleep",
			opts:      TerminateOptions{Dump: syscall.SIGWINCH, DumpWait: 100 * time.Millisecond, KillAfter: long},
			want:      Termination{Signalled: true, Dumped: true, Exited: true},
			wantSteps: []string{"dump", "signal", "exited"},
			wantSig:   syscall.SIGTERM,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startHelper(t, tt.mode, nil)
			c.ready(t)
			p := open(t, c.pid())
			var steps []string
			tt.opts.Log = func(step string, attrs ...any) {
				steps = append(steps, step)
				if len(attrs) < 2 || attrs[0] != "pid" || attrs[1] != c.pid() {
					t.Errorf("step %q attrs %v do not start with pid %d", step, attrs, c.pid())
				}
			}
			have, err := p.Terminate(context.Background(), tt.opts)
			if err != nil {
				t.Fatalf("Terminate: %v", err)
			}
			have.Took = 0
			if have != tt.want {
				t.Errorf("Terminate = %+v, want %+v", have, tt.want)
			}
			if !slices.Equal(steps, tt.wantSteps) {
				t.Errorf("logged steps %q, want %q", steps, tt.wantSteps)
			}
			if sig := c.wait(t); sig != tt.wantSig {
				t.Errorf("helper ended by %v, want %v", sig, tt.wantSig)
			}
		})
	}
}

func TestTerminateExited(t *testing.T) {
	c := startHelper(t, "exit 3", nil)
	p := open(t, c.pid())
	if !p.WaitExit(context.Background(), long) {
		t.Fatal("helper did not exit")
	}
	// Exited but not reaped: a zombie, which Terminate must not count as
	// signalled.
	have, err := p.Terminate(context.Background(), TerminateOptions{})
	have.Took = 0
	if want := (Termination{Exited: true}); err != nil || have != want {
		t.Errorf("Terminate = %+v, %v; want %+v, nil", have, err, want)
	}
	if sig := c.wait(t); sig != -1 || c.cmd.ProcessState.ExitCode() != 3 {
		t.Errorf("helper ended with %v, want exit code 3", c.cmd.ProcessState)
	}
}

func TestTerminateCancel(t *testing.T) {
	c := startHelper(t, "ignore-sigterm", nil)
	c.ready(t)
	p := open(t, c.pid())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	have, err := p.Terminate(ctx, TerminateOptions{KillAfter: long})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Terminate error = %v, want context.DeadlineExceeded", err)
	}
	have.Took = 0
	if want := (Termination{Signalled: true}); have != want {
		t.Errorf("Terminate = %+v, want %+v", have, want)
	}
	if !alive(p) {
		t.Error("helper died though only SIGTERM, which it ignores, was sent")
	}
}

func TestSignalAfterReap(t *testing.T) {
	c := startHelper(t, "exit 0", nil)
	pid := c.pid()
	p := open(t, pid)
	c.wait(t)
	if !p.Exited() {
		t.Fatal("Exited() = false after the helper was reaped")
	}
	check := func(t *testing.T) {
		t.Helper()
		for _, sig := range []syscall.Signal{0, syscall.SIGKILL} {
			if err := p.Signal(sig); !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("Signal(%v) = %v, want os.ErrProcessDone", sig, err)
			}
			if err := p.SignalGroup(sig); !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("SignalGroup(%v) = %v, want os.ErrProcessDone", sig, err)
			}
		}
	}
	check(t)

	// Make the kernel give the pid to a new process, and check that the old
	// handle still does not reach it.
	t.Run("pid reused", func(t *testing.T) {
		reuser := reusePid(t, pid)
		reuser.ready(t)
		check(t)
		if !alive(open(t, pid)) {
			t.Error("the process that reused the pid was killed through the old handle")
		}
	})
}

// reusePid starts a "sleep" helper with pid, by setting the pid namespace's
// last allocated pid just below it. When that is not allowed (it needs root),
// or other processes keep taking the pid first, the test is skipped, or fails
// under CI=true (see testkit.Require).
func reusePid(t *testing.T, pid int) *child {
	t.Helper()
	const lastPid = "/proc/sys/kernel/ns_last_pid"
	const tries = 50
	for range tries {
		err := os.WriteFile(lastPid, []byte(strconv.Itoa(pid-1)), 0)
		testkit.Require(t, err == nil, fmt.Sprintf("choosing the next pid needs root: %v", err))
		c := startHelper(t, "sleep", nil)
		if c.pid() == pid {
			return c
		}
		c.cmd.Process.Kill()
		c.wait(t)
	}
	testkit.Require(t, false, fmt.Sprintf("other processes took pid %d first, %d times", pid, tries))
	return nil
}

func TestSignalGroup(t *testing.T) {
	t.Run("kills leader and grandchild", func(t *testing.T) {
		leader, lp, gp := startGroup(t)
		if err := lp.SignalGroup(syscall.SIGKILL); err != nil {
			t.Fatalf("SignalGroup: %v", err)
		}
		if sig := leader.wait(t); sig != syscall.SIGKILL {
			t.Errorf("leader ended by %v, want SIGKILL", sig)
		}
		if !gp.WaitExit(context.Background(), long) {
			t.Error("grandchild still running")
		}
	})
	t.Run("terminate group", func(t *testing.T) {
		leader, lp, gp := startGroup(t)
		have, err := lp.Terminate(context.Background(), TerminateOptions{KillAfter: long, Group: true})
		have.Took = 0
		if want := (Termination{Signalled: true, Exited: true}); err != nil || have != want {
			t.Errorf("Terminate = %+v, %v; want %+v, nil", have, err, want)
		}
		if sig := leader.wait(t); sig != syscall.SIGTERM {
			t.Errorf("leader ended by %v, want SIGTERM", sig)
		}
		if !gp.WaitExit(context.Background(), long) {
			t.Error("grandchild still running")
		}
	})
	t.Run("not leader", func(t *testing.T) {
		// In the test's own group, led by another process. Signal 0, so a
		// broken check harms nothing.
		c := startHelper(t, "sleep", nil)
		p := open(t, c.pid())
		if err := p.SignalGroup(0); !errors.Is(err, ErrNotLeader) {
			t.Errorf("SignalGroup = %v, want ErrNotLeader", err)
		}
	})
	t.Run("own group", func(t *testing.T) {
		// a leads a new group; b joins it and asks to signal it.
		a := startHelper(t, "sleep", &syscall.SysProcAttr{Setpgid: true})
		a.ready(t)
		if err := open(t, a.pid()).SignalGroup(0); err != nil {
			t.Fatalf("SignalGroup(0) from outside the group = %v, want nil", err)
		}
		b := startHelper(t, "signal-group "+strconv.Itoa(a.pid()), &syscall.SysProcAttr{Setpgid: true, Pgid: a.pid()})
		if have := b.line(t); have != "refused" {
			t.Errorf("SignalGroup from inside the group: %s", have)
		}
		if sig := b.wait(t); sig != -1 {
			t.Errorf("helper ended by %v", sig)
		}
	})
}

// startGroup starts a "fork-sleep" helper leading its own process group and
// returns it, a handle on it, and a handle on its grandchild in the same
// group. When the test ends both are killed and reaped.
func startGroup(t *testing.T) (*child, *Process, *Process) {
	t.Helper()
	leader := startHelper(t, "fork-sleep", &syscall.SysProcAttr{Setpgid: true})
	gpid, err := strconv.Atoi(leader.line(t))
	if err != nil {
		t.Fatalf("helper printed no grandchild pid: %v", err)
	}
	// The grandchild is running (the helper blocks until killed), so its pid
	// is still its own.
	gp := open(t, gpid)
	t.Cleanup(func() {
		gp.Signal(syscall.SIGKILL)
		if leader.cmd.ProcessState == nil {
			leader.cmd.Process.Kill()
			leader.cmd.Wait()
		}
		// With the leader reaped, the grandchild is the test's child
		// (TestMain made the test a subreaper); ECHILD if it is not.
		if gp.WaitExit(context.Background(), long) {
			var ws unix.WaitStatus
			unix.Wait4(gpid, &ws, 0, nil)
		}
	})
	if have, err := unix.Getpgid(gpid); err != nil || have != leader.pid() {
		t.Fatalf("grandchild group = %d, %v; want %d", have, err, leader.pid())
	}
	return leader, open(t, leader.pid()), gp
}

func TestWaitExit(t *testing.T) {
	c := startHelper(t, "sleep", nil)
	c.ready(t)
	p := open(t, c.pid())
	if p.WaitExit(context.Background(), 50*time.Millisecond) {
		t.Error("WaitExit = true on timeout")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if p.WaitExit(ctx, long) {
		t.Error("WaitExit = true with a cancelled context")
	}
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if !p.WaitExit(context.Background(), 0) {
		t.Fatal("WaitExit = false after the helper was killed")
	}
	if !p.Exited() {
		t.Error("Exited() = false after WaitExit = true")
	}
	// WaitExit saw the exit without reaping: the parent still reaps.
	if sig := c.wait(t); sig != syscall.SIGKILL {
		t.Errorf("helper ended by %v, want SIGKILL", sig)
	}
}

func TestClose(t *testing.T) {
	t.Run("running", func(t *testing.T) {
		c := startHelper(t, "sleep", nil)
		c.ready(t)
		// open closes it again when the test ends, after the Close here: a no-op.
		p := open(t, c.pid())
		waited := make(chan bool)
		go func() { waited <- p.WaitExit(context.Background(), 0) }()
		for i := range 2 {
			if err := p.Close(); err != nil {
				t.Errorf("Close #%d = %v", i+1, err)
			}
		}
		if testkit.Receive(t, waited, long, "WaitExit to return after Close") {
			t.Error("WaitExit = true, interrupted by Close")
		}
		if err := p.Signal(syscall.SIGKILL); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Signal after Close = %v, want os.ErrClosed", err)
		}
		if err := p.SignalGroup(syscall.SIGKILL); !errors.Is(err, os.ErrClosed) {
			t.Errorf("SignalGroup after Close = %v, want os.ErrClosed", err)
		}
		if _, err := p.Terminate(context.Background(), TerminateOptions{}); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Terminate after Close = %v, want os.ErrClosed", err)
		}
		if p.Exited() || p.WaitExit(context.Background(), 0) {
			t.Error("closed handle reports an exit it never saw")
		}
		if err := c.cmd.Process.Signal(syscall.Signal(0)); err != nil {
			t.Errorf("helper no longer running: %v", err)
		}
	})
	t.Run("exited", func(t *testing.T) {
		c := startHelper(t, "exit 0", nil)
		p, err := Open(c.pid())
		if err != nil {
			t.Fatal(err)
		}
		if !p.WaitExit(context.Background(), long) {
			t.Fatal("helper did not exit")
		}
		if err := p.Close(); err != nil {
			t.Errorf("Close = %v", err)
		}
		if !p.Exited() || !p.WaitExit(context.Background(), 0) {
			t.Error("closed handle forgot the exit it saw")
		}
	})
}

func TestStartTime(t *testing.T) {
	boot, err := bootTime()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("self", func(t *testing.T) {
		now := time.Now()
		have, err := StartTime(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		// Generous: the test binary may have run other tests for a while.
		if have.Before(boot) || have.Before(now.Add(-10*time.Minute)) || have.After(now.Add(time.Second)) {
			t.Errorf("StartTime(self) = %v, want between boot %v and now %v, within minutes of now", have, boot, now)
		}
		again, err := StartTime(os.Getpid())
		if err != nil || !again.Equal(have) {
			t.Errorf("StartTime(self) again = %v, %v; want %v, nil", again, err, have)
		}
	})
	t.Run("command name with parentheses", func(t *testing.T) {
		const name = "a) b (c) d"
		before := time.Now()
		c := startHelper(t, "comm "+name, nil)
		c.ready(t)
		after := time.Now()
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c.pid()))
		if err != nil || strings.TrimSpace(string(comm)) != name {
			t.Fatalf("helper command name = %q, %v; want %q", comm, err, name)
		}
		have, err := StartTime(c.pid())
		if err != nil {
			t.Fatal(err)
		}
		// Ticks are 1/100 s, rounded down; the boot time is to the nanosecond. A start time
		// from the whole seconds of /proc/stat's btime would be up to a second early.
		if have.Before(before.Add(-20*time.Millisecond)) || have.After(after) {
			t.Errorf("StartTime = %v, want between %v and %v", have, before, after)
		}
	})
	t.Run("no such process", func(t *testing.T) {
		for _, pid := range []int{0, -5, gonePid(t)} {
			if _, err := StartTime(pid); !errors.Is(err, ErrNotExist) || !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("StartTime(%d) error = %v, want ErrNotExist matching fs.ErrNotExist", pid, err)
			}
		}
	})
}

func TestAlive(t *testing.T) {
	if !Alive(os.Getpid()) {
		t.Error("Alive(own pid) = false")
	}
	for _, pid := range []int{0, -1} {
		if Alive(pid) {
			t.Errorf("Alive(%d) = true", pid)
		}
	}
	// A child that ended but is not reaped yet (a zombie) is not alive.
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	p, err := Open(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !p.WaitExit(context.Background(), 10*time.Second) {
		t.Fatal("true did not exit")
	}
	if Alive(cmd.Process.Pid) {
		t.Errorf("Alive(%d) = true for a zombie", cmd.Process.Pid)
	}
}

func TestKillOrphanedGroup(t *testing.T) {
	leader, lp, gp := startGroup(t)
	if err := lp.killOrphanedGroup(); !errors.Is(err, ErrRefused) {
		t.Fatalf("killOrphanedGroup with the leader running = %v, want ErrRefused", err)
	}
	if gp.Exited() {
		t.Fatal("grandchild killed while its leader runs")
	}
	// The leader exits (killed alone); it stays a zombie: the test has not reaped it.
	if err := lp.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !lp.WaitExit(context.Background(), long) {
		t.Fatal("leader did not exit")
	}
	if err := lp.killOrphanedGroup(); err != nil {
		t.Fatalf("killOrphanedGroup = %v", err)
	}
	if !gp.WaitExit(context.Background(), long) {
		t.Fatal("the grandchild left in the group is still running")
	}
	if err := lp.killOrphanedGroup(); err != nil {
		t.Errorf("killOrphanedGroup of an empty group = %v, want nil", err)
	}
	leader.cmd.Wait()
}

func TestCmdlineAndLeadsGroup(t *testing.T) {
	args, err := Cmdline(os.Getpid())
	if err != nil || len(args) != len(os.Args) || args[0] != os.Args[0] {
		t.Errorf("Cmdline(self) = %q, %v, want %q", args, err, os.Args)
	}
	if _, err := Cmdline(-3); !errors.Is(err, ErrNotExist) {
		t.Errorf("Cmdline(-3) = %v, want ErrNotExist", err)
	}
	leader := startHelper(t, "sleep", &syscall.SysProcAttr{Setpgid: true})
	leader.ready(t)
	if !LeadsGroup(leader.pid()) {
		t.Error("a Setpgid child does not lead its group")
	}
	member := startHelper(t, "sleep", nil)
	member.ready(t)
	if LeadsGroup(member.pid()) {
		t.Error("a child in the test's group leads it")
	}
}

func TestHasEnv(t *testing.T) {
	c := startHelper(t, "sleep", nil)
	c.ready(t)
	if !HasEnv(c.pid(), helperEnv+"=sleep") {
		t.Errorf("HasEnv does not see the helper's %s", helperEnv)
	}
	if HasEnv(c.pid(), helperEnv+"=other") || HasEnv(-1, "A=B") {
		t.Error("HasEnv sees what is not there")
	}
}

func TestSameProgram(t *testing.T) {
	c := startHelper(t, "sleep", nil) // the test binary again
	c.ready(t)
	if !SameProgram(c.pid()) {
		t.Error("SameProgram(a copy of this test binary) = false")
	}
	sleep := exec.Command("sleep", "5")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleep.Process.Kill(); sleep.Wait() }()
	if SameProgram(sleep.Process.Pid) || SameProgram(-1) {
		t.Error("SameProgram is true for another program")
	}
}

// TestOpenNoRoomForWatcher checks that Open fails cleanly when the exit
// watcher's epoll set cannot be created, and that a later Open tries again.
func TestOpenNoRoomForWatcher(t *testing.T) {
	// Only the first Open of a process creates the set, so a helper does it;
	// it opens the test, which it does not signal.
	c := startHelper(t, "open-emfile "+strconv.Itoa(os.Getpid()), nil)
	want := fmt.Sprintf("proc: open pid %d: exit watcher: epoll_create1: %v", os.Getpid(), unix.EMFILE)
	if have := c.line(t); have != want {
		t.Errorf("Open without room for the epoll set: %q, want %q", have, want)
	}
	if have := c.line(t); have != "pidfd closed" {
		t.Errorf("after the failed Open: %q, want %q", have, "pidfd closed")
	}
	if have, want := c.line(t), "reopened: <nil>"; have != want {
		t.Errorf("Open with room again: %q, want %q", have, want)
	}
	if sig := c.wait(t); sig != -1 || c.cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("helper ended with %v", c.cmd.ProcessState)
	}
}

// settle is how long a test waits for something that must not happen, such
// as a callback that should not run: long enough that a wrongly started
// goroutine would have run on a loaded machine, short enough to keep tests
// quick.
const settle = 200 * time.Millisecond

// counter counts the runs of an AfterExit callback and signals each one.
type counter struct {
	n    atomic.Int32
	runs chan struct{}
}

func newCounter() *counter { return &counter{runs: make(chan struct{}, 16)} }

func (c *counter) f() {
	c.n.Add(1)
	c.runs <- struct{}{}
}

// ran waits up to long for the next run.
func (c *counter) ran(t *testing.T, what string) {
	t.Helper()
	testkit.Receive(t, c.runs, long, what+": the callback to run")
}

func TestAfterExit(t *testing.T) {
	t.Run("fires once after the exit", func(t *testing.T) {
		c := startHelper(t, "sleep", nil)
		c.ready(t)
		p := open(t, c.pid())
		before := newCounter()
		var doneFirst atomic.Bool // exited was closed when the callback ran
		stop := p.AfterExit(func() {
			doneFirst.Store(isClosed(p.exited))
			before.f()
		})
		time.Sleep(50 * time.Millisecond)
		if n := before.n.Load(); n != 0 {
			t.Fatalf("callback ran %d times before the exit", n)
		}
		if err := c.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		before.ran(t, "registered before the exit")
		if !doneFirst.Load() {
			t.Error("callback ran before exited was closed")
		}
		if stop() {
			t.Error("stop() = true after the callback started")
		}

		// Registered after the exit was seen: at once, reaped or not.
		after := newCounter()
		stopAfter := p.AfterExit(after.f)
		after.ran(t, "registered after the exit")
		if stopAfter() {
			t.Error("stop() = true after the callback started")
		}
		c.wait(t)
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		// The exit was seen before Close, so it still counts.
		closed := newCounter()
		stop = p.AfterExit(closed.f)
		closed.ran(t, "registered after the exit and Close")
		if stop() {
			t.Error("stop() = true after the callback started")
		}

		time.Sleep(settle)
		for _, tt := range []struct {
			what string
			c    *counter
		}{{"before", before}, {"after", after}, {"after Close", closed}} {
			if n := tt.c.n.Load(); n != 1 {
				t.Errorf("callback registered %s ran %d times, want 1", tt.what, n)
			}
		}
	})
	t.Run("stop before the exit", func(t *testing.T) {
		c := startHelper(t, "sleep", nil)
		c.ready(t)
		p := open(t, c.pid())
		stopped, sentinel := newCounter(), newCounter()
		stop := p.AfterExit(stopped.f)
		p.AfterExit(sentinel.f)
		if !stop() {
			t.Fatal("stop() = false before the exit")
		}
		if !stop() {
			t.Error("second stop() = false: the callback never started")
		}
		if err := c.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		sentinel.ran(t, "sentinel")
		time.Sleep(settle)
		if n := stopped.n.Load(); n != 0 {
			t.Errorf("stopped callback ran %d times", n)
		}
		if !stop() {
			t.Error("stop() = false after the exit for a stopped callback")
		}
		c.wait(t)
	})
	t.Run("close before the exit", func(t *testing.T) {
		c := startHelper(t, "sleep", nil)
		c.ready(t)
		// open closes it again when the test ends, after the Close here: a no-op.
		p := open(t, c.pid())
		witness := open(t, c.pid()) // a second handle, to know when the exit was seen
		dropped, witnessed := newCounter(), newCounter()
		stop := p.AfterExit(dropped.f)
		witness.AfterExit(witnessed.f)
		waited := make(chan bool)
		go func() { waited <- p.WaitExit(context.Background(), 0) }()
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if testkit.Receive(t, waited, long, "WaitExit to return after Close") {
			t.Error("WaitExit = true, interrupted by Close")
		}
		checkReleased(t, p)
		start := time.Now()
		if p.WaitExit(context.Background(), long) {
			t.Error("WaitExit after Close = true")
		}
		if took := time.Since(start); took > long/2 {
			t.Errorf("WaitExit after Close took %v, want at once", took)
		}
		late := newCounter()
		lateStop := p.AfterExit(late.f)

		if err := c.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		witnessed.ran(t, "witness")
		c.wait(t)
		time.Sleep(settle)
		if isClosed(p.exited) {
			t.Error("exited closed for a handle closed before the exit")
		}
		if n, m := dropped.n.Load(), late.n.Load(); n != 0 || m != 0 {
			t.Errorf("callbacks of a handle closed before the exit ran: %d registered before Close, %d after", n, m)
		}
		if !stop() || !lateStop() {
			t.Error("stop() = false for a callback that never started")
		}
	})
}

// TestManyHandles opens many handles and checks that they cost no goroutine
// each, and that every one of them sees its process exit.
func TestManyHandles(t *testing.T) {
	const children, perChild = 4, 50
	cs := make([]*child, children)
	for i := range cs {
		cs[i] = startHelper(t, "sleep", nil)
		cs[i].ready(t)
	}
	// The exit watcher's goroutine is started by the first Open in the test
	// binary; this makes sure it exists before the count.
	open(t, cs[0].pid())

	before := runtime.NumGoroutine()
	var wg sync.WaitGroup
	var ps []*Process
	for _, c := range cs {
		for range perChild {
			p := open(t, c.pid())
			ps = append(ps, p)
			wg.Add(1)
			p.AfterExit(wg.Done)
		}
	}
	// A goroutine per handle would add 200. The slack allows for goroutines
	// that the runtime and the testing package start on their own at any
	// time (the finalizer and cleanup goroutines start on first use, the
	// testing package's timers and signal handling); none is the package's.
	const slack = 5
	if added := runtime.NumGoroutine() - before; added > slack {
		t.Errorf("%d handles added %d goroutines, want at most %d", len(ps), added, slack)
	}
	if n := watcherGoroutines(); n != 1 {
		t.Errorf("%d exit watcher goroutines, want 1", n)
	}

	for _, c := range cs {
		if err := c.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	testkit.Receive(t, all, long, "every handle's callback to run after its process exited")
	for i, p := range ps {
		if !isClosed(p.exited) {
			t.Errorf("handle %d on pid %d: exited not closed after its callback ran", i, p.Pid())
		}
		checkReleased(t, p)
	}
	for _, c := range cs {
		c.wait(t)
	}
}

// checkReleased checks that the exit watcher holds nothing of p, which has
// been closed or seen to exit: a handle left behind would be a leak.
func checkReleased(t *testing.T, p *Process) {
	t.Helper()
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	if _, ok := p.w.procs[p.id]; ok || len(p.afters) > 0 {
		t.Errorf("pid %d handle %d: still in the exit watcher (%v) with %d callbacks", p.pid, p.id, ok, len(p.afters))
	}
}

// watcherGoroutines counts the goroutines running the exit watcher's loop.
func watcherGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "proc.(*exitWatcher).run(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// TestCloseRacesExit closes handles while their process exits: each handle
// must then either have seen the exit, and run its callback, or not, and
// never run it.
func TestCloseRacesExit(t *testing.T) {
	const handles = 100
	c := startHelper(t, "sleep", nil)
	c.ready(t)
	ps := make([]*Process, handles)
	counts := make([]*counter, handles)
	stops := make([]func() bool, handles)
	for i := range ps {
		ps[i] = open(t, c.pid())
		counts[i] = newCounter()
		stops[i] = ps[i].AfterExit(counts[i].f)
	}
	// The kill goes first: the exit then reaches the watcher while the
	// handles are being closed, and usually some close before it and some
	// after.
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() {
			if err := p.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	wg.Wait()
	c.wait(t)
	var seen int
	for i, p := range ps {
		checkReleased(t, p)
		exited := isClosed(p.exited)
		if exited != p.WaitExit(context.Background(), 0) || exited != p.Exited() {
			t.Errorf("handle %d: exited closed %v, WaitExit %v, Exited %v", i, exited,
				p.WaitExit(context.Background(), 0), p.Exited())
		}
		if exited {
			seen++
			counts[i].ran(t, fmt.Sprintf("handle %d", i))
			if stops[i]() {
				t.Errorf("handle %d: stop() = true after the callback ran", i)
			}
		} else if !stops[i]() {
			t.Errorf("handle %d: stop() = false though the exit was not seen before Close", i)
		}
	}
	time.Sleep(settle)
	for i, cn := range counts {
		exited := isClosed(ps[i].exited)
		want := int32(0)
		if exited {
			want = 1
		}
		if n := cn.n.Load(); n != want {
			t.Errorf("handle %d (exit seen before Close: %v): callback ran %d times, want %d", i, exited, n, want)
		}
	}
	t.Logf("%d of %d handles saw the exit before Close", seen, handles)
}

func BenchmarkOpenClose(b *testing.B) {
	c := startHelper(b, "sleep", nil)
	c.ready(b)
	b.ReportAllocs()
	for b.Loop() {
		p, err := Open(c.pid())
		if err != nil {
			b.Fatal(err)
		}
		p.AfterExit(func() {})()
		if err := p.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]int{"TERM": 15, "sigterm": 15, "SIGKILL": 9, "int": 2, "HUP": 1, "10": 10} {
		sig, err := ParseSignal(in)
		if err != nil || int(sig) != want {
			t.Errorf("ParseSignal(%q) = %d, %v, want %d", in, sig, err, want)
		}
	}
	for _, bad := range []string{"", "0", "65", "TERMX", "-1"} {
		if _, err := ParseSignal(bad); err == nil {
			t.Errorf("ParseSignal(%q) succeeded", bad)
		}
	}
}

func TestValidateKillAfter(t *testing.T) {
	for d, ok := range map[time.Duration]bool{time.Nanosecond: true, DefaultKillAfter: true, 0: false, -time.Second: false} {
		if err := ValidateKillAfter(d); (err == nil) != ok {
			t.Errorf("ValidateKillAfter(%v) = %v", d, err)
		}
	}
}
