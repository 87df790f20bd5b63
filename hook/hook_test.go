package hook

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/proc"
)

func newRunner(max int) (*Runner, *testkit.Buffer) {
	var b testkit.Buffer
	return &Runner{Logger: slog.New(slog.NewTextHandler(&b, nil)), MaxPerWorker: max}, &b
}

func event(kind monitor.EventKind) monitor.Event {
	return monitor.Event{Kind: kind, Worker: "w-" + strconv.Itoa(os.Getpid()), Pid: 4242, Seq: 17, Stalls: 3,
		Time: time.Now(), Detail: "signal killed"}
}

// waitFile waits until path holds a complete line, and returns its contents.
func waitFile(t *testing.T, path string, timeout time.Duration) string {
	t.Helper()
	var b []byte
	testkit.WaitFor(t, timeout, path+" to be written", func() bool {
		var err error
		b, err = os.ReadFile(path)
		return err == nil && strings.HasSuffix(string(b), "\n")
	})
	return string(b)
}

func TestEnvironment(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
	t.Setenv("SHMMON_INTERVAL", "1s")
	t.Setenv("HOOK_TEST_INHERITED", "yes")
	r, log := newRunner(0)
	out := filepath.Join(t.TempDir(), "env")
	e := event(monitor.EventKill)
	if !r.Run("env > "+out+".tmp && mv "+out+".tmp "+out, time.Minute, e) {
		t.Fatal("Run did not start the hook")
	}
	r.Wait()
	env := strings.Split(strings.TrimSpace(waitFile(t, out, time.Second)), "\n")
	for _, kv := range []string{"SHMMON_EVENT=kill", "SHMMON_NAME=" + e.Worker, "SHMMON_PID=4242", "SHMMON_SEQUENCE=17",
		"SHMMON_STALLS=3", "SHMMON_DETAIL=signal killed", "HOOK_TEST_INHERITED=yes"} {
		if !slices.Contains(env, kv) {
			t.Errorf("hook environment lacks %s:\n%s", kv, strings.Join(env, "\n"))
		}
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, "NOTIFY_SOCKET=") || strings.HasPrefix(kv, "SHMMON_INTERVAL=") {
			t.Errorf("hook inherited %s", kv)
		}
	}
	if l := log.String(); !strings.Contains(l, "msg=\"hook ran\"") || !strings.Contains(l, "event=hook hook=kill pid=4242 seq=17 stalls=3") ||
		!strings.Contains(l, "status=\"exit 0\"") {
		t.Errorf("log: %s", l)
	}
}

func TestFailureLogged(t *testing.T) {
	r, log := newRunner(0)
	r.Run("echo to stdout; echo to stderr >&2; head -c 5000 /dev/zero | tr '\\0' x; exit 3", time.Minute, event(monitor.EventStall))
	r.Wait()
	l := log.String()
	for _, want := range []string{"level=WARN", `msg="hook failed"`, `status="exit 3"`, "to stdout\\nto stderr", "more bytes)"} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q: %s", want, l)
		}
	}
	if len(l) > MaxOutput+1000 {
		t.Errorf("log line of %d bytes: the output is not cut", len(l))
	}
}

// TestTimeout runs a hook that hangs, with a child in the background: Run returns at once,
// and at the timeout the whole group is killed.
func TestTimeout(t *testing.T) {
	r, log := newRunner(0)
	pids := filepath.Join(t.TempDir(), "pids")
	const timeout = 300 * time.Millisecond
	began := time.Now()
	r.Run(fmt.Sprintf("sleep 60 & echo $$ $! > %s; wait", pids), timeout, event(monitor.EventAbnormal))
	if d := time.Since(began); d > 100*time.Millisecond {
		t.Errorf("Run blocked for %v", d)
	}
	var sh, child int
	if _, err := fmt.Sscan(waitFile(t, pids, 5*time.Second), &sh, &child); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	r.Wait()
	took := time.Since(began)
	if took < timeout || took > timeout+5*time.Second {
		t.Errorf("the hanging hook ended after %v, want about %v", took, timeout)
	}
	for _, pid := range []int{sh, child} {
		if gone(pid, 5*time.Second) != nil {
			t.Errorf("pid %d of the hook's group still running 5s after its timeout", pid)
		}
	}
	if l := log.String(); !strings.Contains(l, `status="killed at timeout"`) || !strings.Contains(l, "timeout=300ms") {
		t.Errorf("log: %s", l)
	}
}

// TestBackgroundChildKilled: a hook that ends in time leaves nothing of its group behind.
func TestBackgroundChildKilled(t *testing.T) {
	r, _ := newRunner(0)
	pids := filepath.Join(t.TempDir(), "pids")
	r.Run(fmt.Sprintf("sleep 60 >/dev/null 2>&1 & echo $! > %s", pids), time.Minute, event(monitor.EventStall))
	r.Wait()
	var child int
	if _, err := fmt.Sscan(waitFile(t, pids, time.Second), &child); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	if err := gone(child, 5*time.Second); err != nil {
		t.Fatalf("the hook's background child outlived it: %v", err)
	}
}

// TestEscapedChildHoldsOutput: a process the hook started in a session of its own is out of
// reach of the group kill and still holds the output pipe; the hook's end waits for the
// output only waitDelay.
func TestEscapedChildHoldsOutput(t *testing.T) {
	r, log := newRunner(0)
	pids := filepath.Join(t.TempDir(), "pids")
	began := time.Now()
	// The hook ends once the escaped process has left its session and group.
	r.Run(fmt.Sprintf(`setsid sh -c 'echo $$ > %[1]s.tmp && mv %[1]s.tmp %[1]s && exec sleep 60' & `+
		`while [ ! -e %[1]s ]; do sleep 0.01; done`, pids), time.Minute, event(monitor.EventStall))
	var child int
	if _, err := fmt.Sscan(waitFile(t, pids, 5*time.Second), &child); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	r.Wait()
	if took := time.Since(began); took > waitDelay+5*time.Second {
		t.Errorf("the hook ended after %v, want about %v (its output waited for at most that)", took, waitDelay)
	}
	if !proc.Alive(child) {
		t.Fatal("the escaped process was killed: the test proves nothing")
	}
	if l := log.String(); !strings.Contains(l, `msg="hook ran"`) || !strings.Contains(l, `status="exit 0"`) {
		t.Errorf("log: %s", l)
	}
}

// TestFloodKilledAtTimeout: a hook that writes without end is killed at its timeout and only
// the first MaxOutput bytes of its output are logged.
func TestFloodKilledAtTimeout(t *testing.T) {
	r, log := newRunner(0)
	const timeout = 300 * time.Millisecond
	began := time.Now()
	r.Run("yes", timeout, event(monitor.EventStall))
	r.Wait()
	if took := time.Since(began); took < timeout || took > timeout+5*time.Second {
		t.Errorf("the flooding hook ended after %v, want about %v", took, timeout)
	}
	l := log.String()
	if !strings.Contains(l, `status="killed at timeout"`) || !strings.Contains(l, "more bytes)") {
		t.Errorf("log: %.2000s", l)
	}
	if len(l) > MaxOutput+1000 {
		t.Errorf("log line of %d bytes: the output is not cut", len(l))
	}
}

func TestLimitPerWorker(t *testing.T) {
	r, log := newRunner(2)
	e := event(monitor.EventStall)
	other := e
	other.Worker += "-other"
	started := []bool{r.Run("sleep 60", 500*time.Millisecond, e), r.Run("sleep 60", 500*time.Millisecond, e),
		r.Run("sleep 60", 500*time.Millisecond, e), r.Run("true", time.Second, other), r.Run("", time.Second, e)}
	if want := []bool{true, true, false, true, false}; !slices.Equal(started, want) {
		t.Errorf("started %v, want %v (two per worker, nothing for an empty command)", started, want)
	}
	r.Wait()
	if l := log.String(); strings.Count(l, "hook dropped") != 1 || !strings.Contains(l, "running=2 limit=2") {
		t.Errorf("log: %s", l)
	}
	if !r.Run("true", time.Second, e) {
		t.Error("a hook is refused after the others ended")
	}
	r.Wait()
}

func TestZeroRunner(t *testing.T) {
	var r Runner
	if !r.Run("true", 0, event(monitor.EventRestart)) {
		t.Error("the zero Runner did not run a hook")
	}
	r.Wait()
}

// running reports whether pid runs: it exists and is not a zombie (a killed orphan waits
// for init to reap it).
// gone waits up to d for pid to end (a SIGKILLed process takes a moment to exit on a loaded
// machine): nil once it has, an error if it still runs.
func gone(pid int, d time.Duration) error {
	for deadline := time.Now().Add(d); proc.Alive(pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d still running after %v", pid, d)
		}
	}
	return nil
}
