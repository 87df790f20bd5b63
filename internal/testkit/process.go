package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a program started by a test with [Start]. Its output is kept in Stdout and
// Stderr; it is killed (SIGKILL, then SIGCONT in case it was stopped) and reaped when the test
// ends, and the tail of its output is logged when the test failed (the whole of it saved in
// [OutputDir], if set).
type Process struct {
	Label  string // what it is and its pid, for messages
	Cmd    *exec.Cmd
	Stdout Buffer
	Stderr Buffer
	done   chan struct{} // closed once Wait returned
}

// Start starts cmd (its Stdout and Stderr are set to the Process's buffers unless already set)
// and registers its end with t.Cleanup. Should the test binary itself die, the kernel kills
// the program too (Pdeathsig), unless cmd.SysProcAttr was set by the caller.
func Start(t testing.TB, label string, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = &p.Stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &p.Stderr
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	// A monitor's workers inherit its output pipes and may outlive it (a SIGKILLed serve):
	// once the process itself has ended, do not wait for them to close the pipes.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", label, err)
	}
	p.Label = fmt.Sprintf("%s (pid %d)", label, cmd.Process.Pid)
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Process.Signal(syscall.SIGCONT)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not die 10 s after SIGKILL", p.Label)
		}
		// A monitor killed while publishing may leave its temporary object.
		if tmp, _ := filepath.Glob(fmt.Sprintf("/dev/shm/.shmmon-%d-*", cmd.Process.Pid)); len(tmp) > 0 {
			for _, f := range tmp {
				os.Remove(f)
			}
		}
		if t.Failed() {
			t.Logf("%s %s\n--- stdout:\n%s--- stderr:\n%s", p.Label, strings.Join(cmd.Args, " "),
				p.Stdout.Tail(4000), p.Stderr.Tail(8000))
			p.saveOutput(t)
		}
	})
	return p
}

// OutputDir, when not empty, is where the processes of a failed test leave their whole
// output, as TEST-PID.stdout and TEST-PID.stderr: the test log gets only its tail, and a long
// run's is too long for it. Set it in TestMain, before m.Run.
var OutputDir string

// saveOutput writes the whole output of p into [OutputDir], if set, and logs where.
func (p *Process) saveOutput(t testing.TB) {
	if OutputDir == "" {
		return
	}
	base := filepath.Join(OutputDir, fmt.Sprintf("%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), p.Pid()))
	for ext, b := range map[string]*Buffer{".stdout": &p.Stdout, ".stderr": &p.Stderr} {
		if err := os.WriteFile(base+ext, []byte(b.String()), 0o644); err != nil {
			t.Errorf("saving the output of %s: %v", p.Label, err)
			return
		}
	}
	t.Logf("full output of %s: %s.{stdout,stderr}", p.Label, base)
}

// Pid returns the process's pid.
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Kill sends SIGKILL to the process (and SIGCONT, should it be stopped) and waits until it
// has been reaped.
func (p *Process) Kill() {
	p.Cmd.Process.Signal(syscall.SIGKILL)
	p.Cmd.Process.Signal(syscall.SIGCONT)
	<-p.done
}

// Terminate sends SIGTERM to the process and fails the test unless it exits with status 0
// within timeout.
func (p *Process) Terminate(t testing.TB, timeout time.Duration) {
	t.Helper()
	p.Signal(t, syscall.SIGTERM)
	if st := p.Wait(t, timeout); st.ExitCode() != 0 {
		t.Errorf("%s ended with %v after SIGTERM, want exit status 0", p.Label, st)
	}
}

// Signal sends sig to the process, failing the test when it cannot.
func (p *Process) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatalf("sending %v to %s: %v", sig, p.Label, err)
	}
}

// Wait waits up to timeout for the process to exit and returns how it ended.
func (p *Process) Wait(t testing.TB, timeout time.Duration) *os.ProcessState {
	t.Helper()
	select {
	case <-p.done:
		return p.Cmd.ProcessState
	case <-time.After(timeout):
		t.Fatalf("%s still running after %v", p.Label, timeout)
		return nil
	}
}

// WaitLine waits up to timeout for a line of b that contains want and returns it.
func WaitLine(t testing.TB, b *Buffer, timeout time.Duration, want string) string {
	t.Helper()
	var found string
	WaitFor(t, timeout, fmt.Sprintf("a line containing %q", want), func() bool {
		if l := LinesWith(b.Lines(), want); len(l) > 0 {
			found = l[0]
			return true
		}
		return false
	})
	return found
}

// shmmonBuild is the shmmon command built for this test binary.
var shmmonBuild made

// Shmmon returns the path of the shmmon command, built once per test binary (without -race,
// in a directory every user may read, so that a test's second user can run it too). Call
// [Cleanup] from TestMain to remove it.
func Shmmon(t testing.TB) string {
	t.Helper()
	return shmmonBuild.get(t, "shmmon-bin-", func(dir string) (string, error) {
		path := filepath.Join(dir, "shmmon")
		cmd := exec.Command("go", "build", "-o", path, "github.com/shmmon/shmmon/cmd/shmmon")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build ./cmd/shmmon: %v\n%s", err, out)
		}
		return path, nil
	})
}

// made is a file made once per test binary, in a directory of its own that every user may
// enter and read; [Cleanup] removes the directory.
type made struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// get returns the file's path, made by build(dir) on the first call (dir is the new
// directory, its name starting with prefix); it fails the test when it could not be made.
func (m *made) get(t testing.TB, prefix string, build func(dir string) (string, error)) string {
	t.Helper()
	m.once.Do(func() {
		if m.dir, m.err = publicTempDir(prefix); m.err == nil {
			m.path, m.err = build(m.dir)
		}
	})
	if m.err != nil {
		t.Fatal(m.err)
	}
	return m.path
}

// publicTempDir makes a new directory, its name starting with prefix, that every user may enter
// and read (mode 0755, whatever the umask; os.MkdirTemp makes it its owner's only).
func publicTempDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// Executable returns the path of the test binary, to run it in a helper mode.
func Executable(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// Cleanup removes what the package's helpers made for the whole test binary (the shmmon
// build, the public copy of the test binary). Call it from TestMain after m.Run.
func Cleanup() {
	for _, d := range []string{shmmonBuild.dir, publicExe.dir} {
		if d != "" {
			os.RemoveAll(d)
		}
	}
	if ownControl {
		os.Remove(ControlPath) // a socket a SIGKILLed serve left
	}
}
