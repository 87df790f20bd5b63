package fleet

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/worker"
)

// startBeater starts the test binary beating object name every 10ms and returns it; the
// test kills and reaps it at the end.
func startBeater(t *testing.T, name string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envMode+"=beat", worker.EnvName+"="+name, "GORACE=atexit_sleep_ms=0")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { cmd.Wait(); close(waited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-waited })
	return cmd
}

// watchedWorker parses one watched-only worker with the TOML line what (pid or pidfile).
func watchedWorker(t *testing.T, name, what, grace string) config.Worker {
	t.Helper()
	text := fmt.Sprintf("[[worker]]\nname = %q\n%s\ninterval = \"50ms\"\nstalls = 3\ngrace = %q\n", name, what, grace)
	f, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return f.Workers[0]
}

// TestWatchedHoldsNoGoroutine: watched-only workers add no goroutine each, and stopping
// them removes their objects without touching the process.
func TestWatchedHoldsNoGoroutine(t *testing.T) {
	const n = 100
	base := objectName(t)
	cmd := startBeater(t, base+"-unused")
	f, _ := newFleet(t)
	var ws []config.Worker
	for i := range n {
		name := fmt.Sprintf("%s-%d", base, i)
		t.Cleanup(func() { shmobj.Remove(name) })
		// A long grace: the objects are not beaten, and must not be judged here.
		ws = append(ws, watchedWorker(t, name, fmt.Sprintf("pid = %d", cmd.Process.Pid), "1m"))
	}
	before := runtime.NumGoroutine()
	if ch := f.Apply(ws); ch.Started != n {
		t.Fatalf("Apply started %d of %d", ch.Started, n)
	}
	// The pacer's goroutine, the exit watcher's, the directory watch's, and slack.
	if grew := runtime.NumGoroutine() - before; grew > 6 {
		t.Errorf("%d watched-only workers added %d goroutines, want at most 6", n, grew)
	}
	for _, w := range ws {
		if s := status(t, f, w.Name); !s.Checking || s.Err != nil {
			t.Fatalf("%s: checking %v, err %v", w.Name, s.Checking, s.Err)
		}
	}
	if ch := f.Apply(nil); ch.Stopped != n {
		t.Fatalf("Apply(nil) stopped %d of %d", ch.Stopped, n)
	}
	for _, w := range ws {
		if _, err := os.Stat(shmobj.Path(w.Name)); err == nil {
			t.Errorf("%s: object left after stop", w.Name)
		}
	}
	if !proc.Alive(cmd.Process.Pid) {
		t.Error("stopping the watches ended the watched process")
	}
	// The goroutines that ended the watches may still be returning when Apply does.
	testkit.WaitFor(t, 5*time.Second, "the goroutines of the stopped watches to end", func() bool {
		return runtime.NumGoroutine() <= before+3
	})
}

// TestWatchedFollowsPidfile: a pidfile naming nothing is retried every interval; once it
// names a process, that one is watched; when it exits, the next process the file names
// is; stopping while waiting for the file returns at once.
func TestWatchedFollowsPidfile(t *testing.T) {
	name := objectName(t)
	pidfile := filepath.Join(t.TempDir(), "worker.pid")
	f, log := newFleet(t)
	f.Apply([]config.Worker{watchedWorker(t, name, fmt.Sprintf("pidfile = %q", pidfile), "3s")})
	testkit.WaitFor(t, 5*time.Second, "pid-unavailable", func() bool { return strings.Contains(log.String(), "event=pid-unavailable") })
	if s := status(t, f, name); s.Checking {
		t.Error("checking while the pidfile names nothing")
	}

	for round := range 2 {
		cmd := startBeater(t, name)
		pid := cmd.Process.Pid
		if err := os.WriteFile(pidfile, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		testkit.WaitFor(t, 5*time.Second, fmt.Sprintf("round %d: pid %d ok", round, pid), func() bool {
			snap, err := shmobj.Read(name)
			return err == nil && snap.Record.State == shmobj.StateOK && snap.Record.WatchedPid == int64(pid)
		})
		cmd.Process.Kill()
		testkit.WaitFor(t, 5*time.Second, fmt.Sprintf("round %d: pid %d exited", round, pid), func() bool {
			return strings.Count(log.String(), "state=exited") == round+1
		})
	}
	// The file names a dead pid now: the worker waits; stopping it must not wait for the timer.
	testkit.WaitFor(t, 5*time.Second, "not checking", func() bool { return !status(t, f, name).Checking })
	began := time.Now()
	f.Apply(nil)
	if took := time.Since(began); took > time.Second {
		t.Errorf("stopping a worker waiting for its pidfile took %v", took)
	}
	if strings.Contains(log.String(), "event=killed") {
		t.Errorf("a process was killed:\n%s", log)
	}
}

// TestWatchedFixedPidGone: with a fixed pid, the end of the process ends the watch (no
// retry), and the worker stops cleanly later.
func TestWatchedFixedPidGone(t *testing.T) {
	name := objectName(t)
	cmd := startBeater(t, name)
	f, log := newFleet(t)
	f.Apply([]config.Worker{watchedWorker(t, name, fmt.Sprintf("pid = %d", cmd.Process.Pid), "3s")})
	testkit.WaitFor(t, 5*time.Second, "state=ok", func() bool { return strings.Contains(log.String(), "state=ok") })
	cmd.Process.Kill()
	testkit.WaitFor(t, 5*time.Second, "nothing more to watch", func() bool {
		return strings.Contains(log.String(), "nothing more to watch")
	})
	time.Sleep(200 * time.Millisecond) // 4 intervals: no retry, no second watch
	if n := strings.Count(log.String(), "msg=watching"); n != 1 {
		t.Errorf("%d watches of a fixed pid, want 1:\n%s", n, log)
	}
	began := time.Now()
	if ch := f.Apply(nil); ch.Stopped != 1 {
		t.Errorf("Apply(nil) = %+v", ch)
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("stopping took %v", took)
	}
}

// TestWatchedPidfileRefused: a pidfile others may write is refused with one log line per
// reason, tried again every interval, and taken once it is safe; nothing is signalled.
func TestWatchedPidfileRefused(t *testing.T) {
	name := objectName(t)
	cmd := startBeater(t, name)
	pidfile := filepath.Join(t.TempDir(), "worker.pid")
	if err := os.WriteFile(pidfile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pidfile, 0o666); err != nil {
		t.Fatal(err)
	}
	f, log := newFleet(t)
	f.Apply([]config.Worker{watchedWorker(t, name, fmt.Sprintf("pidfile = %q", pidfile), "3s")})
	testkit.WaitFor(t, 5*time.Second, "pidfile-refused", func() bool { return strings.Contains(log.String(), "event=pidfile-refused") })
	time.Sleep(300 * time.Millisecond) // 6 intervals, 6 attempts
	if n := strings.Count(log.String(), "event=pidfile-refused"); n != 1 {
		t.Errorf("%d pidfile-refused lines for one reason, want 1:\n%s", n, log)
	}
	if l := log.String(); !strings.Contains(l, "pidfile="+pidfile) || !strings.Contains(l, "owner_uid=") ||
		!strings.Contains(l, "writable by group or others (mode 0666)") {
		t.Errorf("the refusal does not name the pidfile, its owner and why:\n%s", l)
	}
	if s := status(t, f, name); s.Checking {
		t.Error("checking the process of a refused pidfile")
	}
	// Made safe: the next attempt takes it.
	if err := os.Chmod(pidfile, 0o644); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "the worker watched", func() bool {
		snap, err := shmobj.Read(name)
		return err == nil && snap.Record.State == shmobj.StateOK && snap.Record.WatchedPid == int64(cmd.Process.Pid)
	})
	f.Apply(nil)
	if !proc.Alive(cmd.Process.Pid) {
		t.Error("the watched process was signalled")
	}
}
