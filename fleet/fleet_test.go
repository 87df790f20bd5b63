package fleet

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/worker"
)

// Environment of the test binary acting as a worker program.
const (
	// "beat": beat every 10ms; "hang-once": the first run stops beating after 300ms
	// ("hang-once:DURATION": after DURATION); "late:DURATION": the first beat after DURATION.
	envMode   = "FLEET_TEST_WORKER"
	envMarker = "FLEET_TEST_MARKER" // hang-once: a file that exists once the first run began
	// envRecord names a file where the worker appends "NAME start|term|exit UNIXNANO" lines:
	// when it starts, gets SIGTERM, and exits 200ms after it.
	envRecord = "FLEET_TEST_RECORD"
)

// TestMain lets the test binary be the supervised worker (it beats through SHMMON_NAME).
func TestMain(m *testing.M) {
	mode, arg, _ := strings.Cut(os.Getenv(envMode), ":")
	if mode == "" {
		os.Exit(m.Run())
	}
	if rec := os.Getenv(envRecord); rec != "" {
		name := os.Getenv(worker.EnvName)
		note := func(what string) {
			f, _ := os.OpenFile(rec, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			fmt.Fprintf(f, "%s %s %d\n", name, what, time.Now().UnixNano())
			f.Close()
		}
		note("start")
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		go func() {
			<-term
			note("term")
			time.Sleep(200 * time.Millisecond)
			note("exit")
			os.Exit(0)
		}()
	}
	hang, hangAfter, firstAfter := false, 300*time.Millisecond, time.Duration(0)
	switch mode {
	case "hang-once":
		marker := os.Getenv(envMarker)
		if _, err := os.Stat(marker); err != nil {
			hang = true
			os.WriteFile(marker, nil, 0o600)
		}
		if arg != "" {
			hangAfter, _ = time.ParseDuration(arg)
		}
	case "late":
		firstAfter, _ = time.ParseDuration(arg)
	}
	began := time.Now()
	time.Sleep(firstAfter)
	for time.Since(began) < 2*time.Minute { // never outlive a test that failed to stop it
		if !hang || time.Since(began) < hangAfter {
			worker.Beat()
		}
		time.Sleep(10 * time.Millisecond)
	}
	os.Exit(0)
}

// objectName is a name unique to this process and test; the object is removed at the end.
func objectName(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("shmmon-fleet-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"))
	t.Cleanup(func() { shmobj.Remove(name) })
	return name
}

// testWorker returns a supervised worker running the test binary in mode, with more TOML
// lines, checked every 50ms.
func testWorker(t *testing.T, name, mode, extra string) config.Worker {
	t.Helper()
	return testWorkers(t, workerText(t, name, mode, extra))[0]
}

// workerText is the [[worker]] table of testWorker.
func workerText(t *testing.T, name, mode, extra string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "marker")
	return fmt.Sprintf("[[worker]]\nname = %q\ncommand = [%q]\ninterval = \"50ms\"\nstalls = 3\nkill_after = \"300ms\"\n"+
		"grace = \"3s\"\n%s\nenv = { %s = %q, %s = %q, GORACE = \"atexit_sleep_ms=0\" }\n",
		name, exe, extra, envMode, mode, envMarker, marker)
}

// testWorkers returns the workers of a file of the tables given (see workerText).
func testWorkers(t *testing.T, tables ...string) []config.Worker {
	t.Helper()
	f, err := config.Parse("test.toml", []byte(strings.Join(tables, "")))
	if err != nil {
		t.Fatal(err)
	}
	return f.Workers
}

func newFleet(t *testing.T) (*Fleet, *testkit.Buffer) {
	var b testkit.Buffer
	f := New(slog.New(slog.NewTextHandler(&b, nil)))
	t.Cleanup(f.Stop)
	return f, &b
}

func status(t *testing.T, f *Fleet, name string) WorkerStatus {
	t.Helper()
	for _, s := range f.Status() {
		if s.Worker.Name == name {
			return s
		}
	}
	t.Fatalf("no status for %s", name)
	return WorkerStatus{}
}

// hookEnvs reads the files the hooks wrote (one per run, named EVENT.PID) as maps of their
// SHMMON_* variables, by event.
func hookEnvs(t *testing.T, dir string) map[string][]map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.env"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]map[string]string{}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		env := map[string]string{}
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok && strings.HasPrefix(k, "SHMMON_") {
				env[k] = v
			}
		}
		out[env["SHMMON_EVENT"]] = append(out[env["SHMMON_EVENT"]], env)
	}
	return out
}

// TestHangRestart: a worker hangs once, is killed and restarted. The books count one kill and
// one restart; each hook fires once with the documented environment; the abnormal hook
// hangs, is killed at its timeout, and does not delay the kill.
func TestHangRestart(t *testing.T) {
	name := objectName(t)
	dir := t.TempDir()
	record := func(ev string) string {
		return fmt.Sprintf("env > %s/.tmp.$$ && mv %s/.tmp.$$ %s/%s.$$.env", dir, dir, dir, ev)
	}
	hooks := fmt.Sprintf("on_stall = %q\non_abnormal = %q\non_kill = %q\non_restart = %q\non_give_up = %q\nhook_timeout = \"1s\"\n",
		record("stall"), record("abnormal")+"; sleep 60", record("kill"), record("restart"), record("give-up"))
	f, log := newFleet(t)
	w := testWorker(t, name, "hang-once", hooks)
	f.Apply([]config.Worker{w})

	testkit.WaitFor(t, 20*time.Second, "a restart after the hang", func() bool {
		s := status(t, f, name)
		return s.Restarts == 1 && s.Snapshot.Record.State == shmobj.StateOK
	})
	s := status(t, f, name)
	if s.Starts != 2 || s.Kills != 1 || s.LastExit != "signal terminated" || s.LastExitAt.IsZero() || !s.Checking {
		t.Errorf("books after one hang: starts %d kills %d last exit %q at %v checking %v; want 2, 1, \"signal terminated\", a time, true",
			s.Starts, s.Kills, s.LastExit, s.LastExitAt, s.Checking)
	}
	testkit.WaitFor(t, 10*time.Second, "the hanging hook killed at its timeout", func() bool {
		return strings.Contains(log.String(), `status="killed at timeout"`)
	})
	testkit.WaitFor(t, 5*time.Second, "the restart hook", func() bool { return len(hookEnvs(t, dir)["restart"]) > 0 })
	time.Sleep(500 * time.Millisecond) // a second hook of any event would show by now

	envs := hookEnvs(t, dir)
	for _, ev := range []string{"stall", "abnormal", "kill", "restart"} {
		if len(envs[ev]) != 1 {
			t.Errorf("%s hook ran %d times, want once", ev, len(envs[ev]))
			continue
		}
		e := envs[ev][0]
		if e["SHMMON_NAME"] != name || e["SHMMON_PID"] == "" || e["SHMMON_PID"] == "0" || e["SHMMON_SEQUENCE"] == "" {
			t.Errorf("%s hook environment %v: want SHMMON_NAME=%s, a pid and a sequence", ev, e, name)
		}
	}
	if len(envs["give-up"]) != 0 {
		t.Errorf("the give-up hook ran")
	}
	if len(envs["stall"]) == 1 && len(envs["abnormal"]) == 1 && len(envs["restart"]) == 1 {
		if envs["stall"][0]["SHMMON_STALLS"] != "1" || envs["abnormal"][0]["SHMMON_STALLS"] != "3" {
			t.Errorf("stalls: %s at the stall, %s when abnormal; want 1 and 3", envs["stall"][0]["SHMMON_STALLS"], envs["abnormal"][0]["SHMMON_STALLS"])
		}
		if envs["restart"][0]["SHMMON_PID"] == envs["stall"][0]["SHMMON_PID"] {
			t.Errorf("the restart hook names the old pid %s", envs["restart"][0]["SHMMON_PID"])
		}
	}
	// The abnormal hook hangs for its whole timeout; the kill did not wait for it.
	abnormal, kill := lineTime(t, log, "state=abnormal"), lineTime(t, log, "state=killed")
	if kill.IsZero() {
		kill = lineTime(t, log, `msg="killing hung worker"`)
	}
	if d := kill.Sub(abnormal); d < 0 || d > 900*time.Millisecond {
		t.Errorf("killed %v after the abnormal verdict; want within kill_after (300ms) and well before the hook's timeout (1s)", d)
	}
}

// lineTime returns the time of the first log line containing word.
func lineTime(t *testing.T, log *testkit.Buffer, word string) time.Time {
	t.Helper()
	for _, l := range log.Lines() {
		if strings.Contains(l, word) {
			ts, _, _ := strings.Cut(strings.TrimPrefix(l, "time="), " ")
			at, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil {
				t.Fatalf("log line %q: %v", l, err)
			}
			return at
		}
	}
	return time.Time{}
}

// TestHooksChangeWithoutRestart: a reload that changes only hooks keeps the program.
func TestHooksChangeWithoutRestart(t *testing.T) {
	name := objectName(t)
	f, log := newFleet(t)
	w := testWorker(t, name, "beat", "")
	if ch := f.Apply([]config.Worker{w}); ch.Started != 1 {
		t.Fatalf("Apply: %+v", ch)
	}
	testkit.WaitFor(t, 10*time.Second, "the worker beating", func() bool { return status(t, f, name).Snapshot.Record.State == shmobj.StateOK })
	pid := status(t, f, name).Snapshot.Record.WatchedPid

	w2 := w
	w2.OnKill, w2.HookTimeout = "true", time.Minute
	if ch := f.Apply([]config.Worker{w2}); ch != (Changes{Unchanged: 1}) {
		t.Errorf("hooks changed: %+v, want one unchanged worker", ch)
	}
	s := status(t, f, name)
	if s.Snapshot.Record.WatchedPid != pid || s.Starts != 1 || s.Worker.OnKill != "true" || s.Worker.HookTimeout != time.Minute {
		t.Errorf("after the hooks changed: pid %d (was %d), starts %d, on_kill %q, hook_timeout %v",
			s.Snapshot.Record.WatchedPid, pid, s.Starts, s.Worker.OnKill, s.Worker.HookTimeout)
	}
	if !strings.Contains(log.String(), "event=config-hooks") {
		t.Errorf("no config-hooks line:\n%s", log)
	}

	// Another change restarts the program and keeps the books.
	w3 := w2
	w3.Stalls++
	if ch := f.Apply([]config.Worker{w3}); ch != (Changes{Restarted: 1}) {
		t.Errorf("stalls changed: %+v, want one restarted worker", ch)
	}
	testkit.WaitFor(t, 10*time.Second, "the new program beating", func() bool {
		s := status(t, f, name)
		return s.Snapshot.Record.State == shmobj.StateOK && s.Snapshot.Record.WatchedPid != pid
	})
	if s := status(t, f, name); s.Starts != 2 {
		t.Errorf("starts %d after a restart for a config change, want 2 (the books are kept)", s.Starts)
	}

	// Removed: no more status.
	f.Apply(nil)
	if st := f.Status(); len(st) != 0 {
		t.Errorf("status of an empty fleet: %+v", st)
	}
}

// TestLate blocks a worker's loop through the check observer: it turns late after its
// deadline and on time again once released; a worker waiting to restart is never late.
func TestLate(t *testing.T) {
	name := objectName(t)
	f, _ := newFleet(t)
	block := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(block) }) }
	t.Cleanup(unblock) // before f.Stop: a failure while the loop is blocked must not hang the test
	blocking := make(chan bool, 1)
	blocking <- false
	f.ObserveChecks(func(worker string, took time.Duration) {
		if worker != name || took < 0 {
			t.Errorf("ObserveChecks(%q, %v)", worker, took)
		}
		b := <-blocking
		blocking <- b
		if b {
			<-block
		}
	})
	f.Apply([]config.Worker{testWorker(t, name, "beat", "")})
	testkit.WaitFor(t, 10*time.Second, "the worker checking", func() bool {
		s := status(t, f, name)
		return s.Checking && s.Snapshot.Record.State == shmobj.StateOK
	})
	if s := status(t, f, name); s.Late(time.Now()) {
		t.Fatalf("late while checking: %+v", s)
	}
	<-blocking
	blocking <- true
	blockedAt := time.Now()
	testkit.WaitFor(t, LateFloor+5*time.Second, "the blocked loop to be late", func() bool { return status(t, f, name).Late(time.Now()) })
	if d := time.Since(blockedAt); d < LateFloor-100*time.Millisecond {
		t.Errorf("late %v after the loop blocked, want at least the floor %v", d, LateFloor)
	}
	<-blocking
	blocking <- false
	unblock()
	testkit.WaitFor(t, 5*time.Second, "the loop on time again", func() bool { return !status(t, f, name).Late(time.Now()) })

	// A loop that is not checking (waiting to restart, between runs of a periodic job, gave
	// up) is never late, however old its last check.
	old := time.Now().Add(-time.Hour)
	if (WorkerStatus{Checking: false, LastCheck: old, Deadline: old}).Late(time.Now()) {
		t.Error("a loop that is not checking is late")
	}
}
