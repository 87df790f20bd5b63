package monitor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
)

// TestMain lets the test binary act as a watched process: SHMMON_TEST_MODE=sleep blocks
// until killed (a hung worker), exit-soon exits 0 after 300ms, map maps the object
// $SHMMON_TEST_OBJECT and blocks, beat beats it (see beatThenHang).
func TestMain(m *testing.M) {
	switch os.Getenv("SHMMON_TEST_MODE") {
	case "beat":
		beatThenHang(os.Getenv("SHMMON_TEST_OBJECT"), os.Getenv("SHMMON_TEST_HANG"))
	case "sleep":
		time.Sleep(5 * time.Minute) // not select{}: the runtime would call that a deadlock
	case "map":
		if _, err := shmobj.Attach(os.Getenv("SHMMON_TEST_OBJECT")); err != nil {
			os.Exit(2)
		}
		time.Sleep(5 * time.Minute)
	case "exit-soon":
		time.Sleep(300 * time.Millisecond)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func newLog() (*testkit.Buffer, *slog.Logger) {
	b := &testkit.Buffer{}
	return b, slog.New(slog.NewTextHandler(b, nil))
}

func watchName(t *testing.T) string {
	name := fmt.Sprintf("shmmon-watch-test-%d-%s", os.Getpid(), t.Name())
	t.Cleanup(func() { shmobj.Remove(name) })
	return name
}

// startChild starts the test binary in mode (with env) and takes hold of it through a pidfd.
func startChild(t *testing.T, mode string, env ...string) (*exec.Cmd, *proc.Process) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "SHMMON_TEST_MODE="+mode), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { cmd.Wait(); close(waited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-waited })
	p, err := proc.Open(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return cmd, p
}

var fast = Config{Interval: 50 * time.Millisecond, Stalls: 3, Grace: 200 * time.Millisecond}

func TestWatchKillsHungProcess(t *testing.T) {
	name := watchName(t)
	_, p := startChild(t, "sleep")
	logs, log := newLog()
	w := &Watch{Name: name, Options: Options{Config: fast}, Process: p, KillAfter: 200 * time.Millisecond, Logger: log}
	start := time.Now()
	out, err := w.Run(context.Background())
	if err != nil || out != Killed {
		t.Fatalf("Run = %v, %v, want killed; log:\n%s", out, err, logs)
	}
	// Never beat: judged after the grace, then 3 stalls. Generous upper bound for a loaded machine.
	if took := time.Since(start); took < fast.Grace || took > 10*time.Second {
		t.Errorf("killed after %v", took)
	}
	if !p.Exited() {
		t.Error("process still running after Killed")
	}
	for _, want := range []string{"state=abnormal", "event=signal", "signal=SIGTERM", "state=killed"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if _, err := os.Stat(shmobj.Path(name)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("object left behind after Run: %v", err)
	}
}

func TestWatchProcessExits(t *testing.T) {
	name := watchName(t)
	_, p := startChild(t, "exit-soon")
	logs, log := newLog()
	w := &Watch{Name: name, Options: Options{Config: Config{Interval: 50 * time.Millisecond, Grace: 10 * time.Second}}, Process: p, Logger: log}
	out, err := w.Run(context.Background())
	if err != nil || out != Exited {
		t.Fatalf("Run = %v, %v, want exited; log:\n%s", out, err, logs)
	}
	if !strings.Contains(logs.String(), "state=exited") {
		t.Errorf("log lacks state=exited:\n%s", logs)
	}
}

// TestWatchWithoutPid reports a hang, sees the worker resume, follows a removed object and
// keeps the object with Keep.
func TestWatchWithoutPid(t *testing.T) {
	name := watchName(t)
	logs, log := newLog()
	w := &Watch{Name: name, Options: Options{Config: fast}, Keep: true, Logger: log}
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		out Outcome
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := w.Run(ctx)
		done <- result{out, err}
	}()
	defer func() { cancel(); <-done }()

	// An in-process worker: beats every 10ms while beating is not held.
	var beating sync.Mutex // held = paused
	var seg *shmobj.Segment
	stop := testkit.Every(t, 10*time.Millisecond, func() {
		beating.Lock()
		defer beating.Unlock()
		if seg == nil || seg.Verify() != nil {
			if seg != nil {
				seg.Close()
			}
			seg, _ = shmobj.Attach(name)
		}
		if seg != nil {
			seg.Beat()
		}
	})
	defer func() {
		stop()
		if seg != nil {
			seg.Close()
		}
	}()

	testkit.WaitFor(t, 10*time.Second, "state=ok", func() bool { return strings.Contains(logs.String(), "state=ok") })
	beating.Lock() // hang
	testkit.WaitFor(t, 10*time.Second, "state=abnormal", func() bool { return strings.Contains(logs.String(), "state=abnormal") })
	beating.Unlock() // resume
	testkit.WaitFor(t, 10*time.Second, "back to ok", func() bool {
		s := logs.String()
		return strings.Contains(s[strings.LastIndex(s, "state=abnormal"):], "state=ok")
	})

	shmobj.Remove(name)
	testkit.WaitFor(t, 10*time.Second, "object-removed", func() bool { return strings.Contains(logs.String(), "event=object-removed") })
	testkit.WaitFor(t, 10*time.Second, "re-published object", func() bool { _, err := os.Stat(shmobj.Path(name)); return err == nil })

	cancel()
	r := <-done
	done <- r
	if r.err != nil || r.out != Stopped {
		t.Fatalf("Run = %v, %v, want stopped", r.out, r.err)
	}
	if _, err := os.Stat(shmobj.Path(name)); err != nil {
		t.Errorf("Keep: object gone after Run: %v", err)
	}
	if strings.Contains(logs.String(), "level=ERROR msg=\"cannot") {
		t.Errorf("unexpected error in log:\n%s", logs)
	}
}

func TestWatchPublishError(t *testing.T) {
	w := &Watch{Name: "a/b", Logger: slog.New(slog.DiscardHandler)}
	if _, err := w.Run(context.Background()); !errors.Is(err, shmobj.ErrInvalidName) {
		t.Errorf("Run with a bad name = %v, want ErrInvalidName", err)
	}
	w = &Watch{Name: "x", Options: Options{Config: Config{Stalls: -1}}, Logger: slog.New(slog.DiscardHandler)}
	if _, err := w.Run(context.Background()); err == nil {
		t.Error("Run with stalls -1 succeeded")
	}
}

func TestWatchEvents(t *testing.T) {
	name := watchName(t)
	_, p := startChild(t, "sleep")
	_, log := newLog()
	var got []Event // OnEvent and OnCheck run on Run's goroutine: no lock needed after Run returns
	var checks []time.Time
	w := &Watch{Name: name, Process: p, KillAfter: 200 * time.Millisecond, Logger: log,
		Options: Options{Config: fast, OnEvent: func(e Event) { got = append(got, e) },
			OnCheck: func(now time.Time, took time.Duration) {
				if took < 0 || took > time.Second {
					t.Errorf("OnCheck: a check took %v", took)
				}
				checks = append(checks, now)
			}}}
	if out, err := w.Run(context.Background()); err != nil || out != Killed {
		t.Fatalf("Run = %v, %v, want killed", out, err)
	}
	// A silent worker is judged abnormal on the check that counts the last stall.
	if len(checks) < fast.Stalls || !slices.IsSortedFunc(checks, time.Time.Compare) {
		t.Errorf("OnCheck called %d times (%v), want at least %d, in order", len(checks), checks, fast.Stalls)
	}
	var kinds []EventKind
	for _, e := range got {
		kinds = append(kinds, e.Kind)
		if e.Worker != name || e.Pid != int64(p.Pid()) || e.Time.IsZero() {
			t.Errorf("event %+v: want worker %q, pid %d and a time", e, name, p.Pid())
		}
	}
	want := []EventKind{EventStall, EventAbnormal, EventKill}
	if !slices.Equal(kinds, want) {
		t.Errorf("events %v, want %v (one per change, not one per check)", kinds, want)
	}
	if len(got) == 3 && got[1].Stalls != fast.Stalls {
		t.Errorf("abnormal with %d stalls, want %d", got[1].Stalls, fast.Stalls)
	}
}

// TestWatchStartHoldsNoGoroutine: many started watches of one process add no goroutine per
// watch (their checks share the pacer's, the exits one watcher's); the process's exit ends
// every one at once, long before a check would see it; stop after the end does nothing.
func TestWatchStartHoldsNoGoroutine(t *testing.T) {
	const n = 100
	cmd, first := startChild(t, "sleep")
	first.Close()
	slow := Config{Interval: time.Minute, Stalls: 3, Grace: time.Minute}
	type result struct {
		out Outcome
		err error
	}
	ends := make(chan result, n)
	before := runtime.NumGoroutine()
	var stops []func()
	for i := range n {
		p, err := proc.Open(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		name := fmt.Sprintf("%s-%d", watchName(t), i)
		defer shmobj.Remove(name)
		w := &Watch{Name: name, Options: Options{Config: slow}, Process: p, Logger: slog.New(slog.DiscardHandler)}
		stop, err := w.Start(func(out Outcome, err error) { ends <- result{out, err} })
		if err != nil {
			t.Fatal(err)
		}
		stops = append(stops, stop)
	}
	// The pacer's goroutine, the exit watcher's, and slack for the runtime's own.
	if grew := runtime.NumGoroutine() - before; grew > 5 {
		t.Errorf("%d started watches added %d goroutines, want at most 5", n, grew)
	}
	killed := time.Now()
	cmd.Process.Kill()
	for range n {
		select {
		case r := <-ends:
			if r.out != Exited || r.err != nil {
				t.Errorf("a watch ended %v, %v, want exited", r.out, r.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the watches did not all end within 10s of the exit (interval %v)", slow.Interval)
		}
	}
	t.Logf("all %d watches ended %v after the kill", n, time.Since(killed).Round(time.Millisecond))
	for _, stop := range stops {
		stop()
	}
	select {
	case r := <-ends:
		t.Errorf("stop after the end ended a watch again: %v, %v", r.out, r.err)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestWatchStop: stop ends a started watch Stopped and removes its object, once.
func TestWatchStop(t *testing.T) {
	name := watchName(t)
	_, p := startChild(t, "sleep")
	ended := make(chan Outcome, 2)
	w := &Watch{Name: name, Options: Options{Config: fast}, Process: p, Logger: slog.New(slog.DiscardHandler)}
	stop, err := w.Start(func(out Outcome, err error) {
		if err != nil {
			t.Errorf("done(%v, %v)", out, err)
		}
		ended <- out
	})
	if err != nil {
		t.Fatal(err)
	}
	stop()
	stop()
	if out := <-ended; out != Stopped {
		t.Errorf("ended %v, want stopped", out)
	}
	if _, err := os.Stat(shmobj.Path(name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("object after stop: %v, want removed", err)
	}
	if p.Exited() {
		t.Error("stop signalled the process")
	}
	select {
	case out := <-ended:
		t.Errorf("done called twice (%v)", out)
	case <-time.After(50 * time.Millisecond):
	}
}
