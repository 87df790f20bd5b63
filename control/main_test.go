package control_test

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/control"
	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/worker"
	"github.com/shmmon/shmmon/worklog"
)

// The test binary's worker modes (CTLTEST_MODE), for the workers of the serves the tests
// start:
//
//   - "beat": beat every 20ms.
//   - "flood": in one loop, write lines to stdout (and every 8th to stderr too) at
//     CTLTEST_RATE bytes a second, and beat after each: a write that blocks stops the beats,
//     and the worker is killed as hung.
//   - "count": in one loop, write "count N" and 200 bytes to stdout about 2000 times a second,
//     and beat.
//   - "hang": beat for CTLTEST_FOR ms, then block for good (a SIGQUIT then makes the Go
//     runtime print its goroutines to stderr).
//   - "trace": beat every 20ms; on SIGTERM, append "NAME term UNIXNANO" to CTLTEST_RECORD,
//     and "NAME exit UNIXNANO" 200ms later, then exit 0.
const (
	envMode = "CTLTEST_MODE"
	envRate = "CTLTEST_RATE"
	envFor  = "CTLTEST_FOR"
	envRec  = "CTLTEST_RECORD"
	// envTag marks the serves a test starts, and so their programs and log processes (they
	// inherit serve's environment), for the test's cleanup to find them all: a serve killed
	// leaves its programs running, in groups of their own.
	envTag = "CTLTEST_TAG"
)

func TestMain(m *testing.M) {
	if code, ok := worklog.Main(os.Args); ok {
		os.Exit(code)
	}
	if mode := os.Getenv(envMode); mode != "" {
		os.Exit(workerMain(mode))
	}
	code := m.Run()
	testkit.Cleanup()
	os.Exit(code)
}

func workerMain(mode string) int {
	switch mode {
	case "beat":
		for range time.Tick(20 * time.Millisecond) {
			worker.Beat()
		}
	case "flood":
		rate, _ := strconv.Atoi(os.Getenv(envRate))
		testkit.Flood(rate)
	case "count":
		pad := strings.Repeat("c", 200)
		for i := 0; ; i++ {
			fmt.Printf("count %d %s\n", i, pad)
			worker.Beat()
			time.Sleep(500 * time.Microsecond)
		}
	case "trace":
		note := func(what string) {
			f, _ := os.OpenFile(os.Getenv(envRec), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			fmt.Fprintf(f, "%s %s %d\n", os.Getenv(worker.EnvName), what, time.Now().UnixNano())
			f.Close()
		}
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		for {
			select {
			case <-term:
				note("term")
				time.Sleep(200 * time.Millisecond)
				note("exit")
				return 0
			case <-time.After(20 * time.Millisecond):
				worker.Beat()
			}
		}
	case "hang":
		ms, _ := strconv.Atoi(os.Getenv(envFor))
		until := time.After(time.Duration(ms) * time.Millisecond)
		for {
			select {
			case <-until:
				select {}
			case <-time.After(20 * time.Millisecond):
				worker.Beat()
			}
		}
	}
	fmt.Fprintf(os.Stderr, "control test: bad %s=%q\n", envMode, mode)
	return 2
}

// exe returns the test binary, the workers' program.
func exe(t testing.TB) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// names returns n object names for the test, removed when it ends.
func names(t *testing.T, n int) []string {
	var out []string
	for i := range n {
		name := fmt.Sprintf("%s-%d", testkit.Name(t, "ctl"), i)
		t.Cleanup(func() { shmobj.Remove(name) })
		out = append(out, name)
	}
	return out
}

// served is a shmmon serve a test started.
type served struct {
	*testkit.Process
	config  string // its config file
	control string // its control socket
}

// startServe writes conf as the config file and starts shmmon serve on it, with a control
// socket in a directory every user may enter; it returns once the socket answers.
func startServe(t *testing.T, conf string, extra ...string) *served {
	t.Helper()
	dir := testkit.PublicDir(t)
	s := &served{config: filepath.Join(dir, "shmmon.toml"), control: filepath.Join(dir, "control.sock")}
	if err := os.WriteFile(s.config, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Process = s.start(t, extra...)
	return s
}

// start starts (again) serve on s's config and socket. When the test ends, serve is stopped
// (SIGTERM: it stops its programs), and every process of the test's serves is killed.
func (s *served) start(t *testing.T, extra ...string) *testkit.Process {
	t.Helper()
	cmd := exec.Command(testkit.Shmmon(t), append([]string{"serve", "--config", s.config, "--control", s.control}, extra...)...)
	tag := fmt.Sprintf("%d-%s", os.Getpid(), t.Name())
	cmd.Env = append(os.Environ(), envTag+"="+tag)
	p := testkit.Start(t, "shmmon serve", cmd)
	t.Cleanup(func() {
		if p.Running() {
			p.Cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.Done():
			case <-time.After(20 * time.Second):
			}
		}
		killTagged(t, tag)
	})
	testkit.WaitFor(t, 20*time.Second, "serve's control socket", func() bool {
		if !p.Running() {
			t.Fatalf("serve ended:\n%s", p.Stderr.String())
		}
		code, _, _ := ctl(t, s.control, "status")
		return code == 0
	})
	return p
}

// killTagged kills every process whose environment holds envTag=tag (programs and log
// processes a serve left), and waits up to 10 s for them to be gone.
func killTagged(t *testing.T, tag string) {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var left []int
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			pid, err := strconv.Atoi(filepath.Base(d))
			if err == nil && pid != os.Getpid() && proc.Alive(pid) && proc.HasEnv(pid, envTag+"="+tag) {
				left = append(left, pid)
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("processes of the test still running: %v", left)
			return
		}
	}
}

// workerConf is one supervised [[worker]] of a test config, running the test binary in mode.
func workerConf(t *testing.T, name, mode string, more ...string) string {
	return fmt.Sprintf("\n[[worker]]\nname = %q\ncommand = [%q]\nenv = { %s = %q }\n%s\n", name, exe(t), envMode, mode,
		strings.Join(more, "\n"))
}

// head is the [defaults] of the test configs: workers beat 10 times per interval.
const head = "[defaults]\ninterval = \"200ms\"\nstalls = 3\nkill_after = \"1s\"\ngrace = \"5s\"\n"

// ctl runs shmmon ctl --control path args..., and returns its exit code and output.
func ctl(t testing.TB, path string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runCmd(t, exec.Command(testkit.Shmmon(t), append([]string{"ctl", "--control", path}, args...)...))
}

// runCmd runs cmd and returns its exit code and output.
func runCmd(t testing.TB, cmd *exec.Cmd) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errOut.String()
	}
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
	}
	return 0, out.String(), errOut.String()
}

// beating waits until name is beating under a monitor, in state ok, with a worker other than
// not (0: any), and returns its pid.
func beating(t *testing.T, name string, not int64) int64 {
	t.Helper()
	var pid int64
	testkit.WaitFor(t, 20*time.Second, name+": a worker beating", func() bool {
		snap, err := shmobj.Read(name)
		pid = snap.Record.WatchedPid
		return err == nil && pid != 0 && pid != not && snap.Seq > 0 && snap.Record.State == shmobj.StateOK
	})
	return pid
}

// alive reports whether pid runs (and is no zombie).
func alive(pid int64) bool {
	if syscall.Kill(int(pid), 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(b), ") Z ")
}

// oneLine fails the test unless s is one line containing each of want.
func oneLine(t *testing.T, what, s string, want ...string) {
	t.Helper()
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		t.Errorf("%s: %q, want one line", what, s)
	}
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("%s: %q does not say %q", what, s, w)
		}
	}
}

// TestEnvPath: testkit sets the variable control reads (it cannot import control).
func TestEnvPath(t *testing.T) {
	if os.Getenv(control.EnvPath) != testkit.ControlPath || control.DefaultPath() != testkit.ControlPath {
		t.Errorf("%s=%q, DefaultPath %q; testkit's ControlPath %q", control.EnvPath, os.Getenv(control.EnvPath),
			control.DefaultPath(), testkit.ControlPath)
	}
}
