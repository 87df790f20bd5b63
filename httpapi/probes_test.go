package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/fleet"
	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/shmobj"
)

// TestWorkerHealthRules: /healthz/NAME for each place a worker can be in its life, and
// /readyz over the workers' readiness.
func TestWorkerHealthRules(t *testing.T) {
	sup := func(name string, b monitor.Books, extra ...func(*config.Worker)) fleet.WorkerStatus {
		w := config.Worker{Name: name, Command: []string{"/bin/true"}}
		for _, f := range extra {
			f(&w)
		}
		return fleet.WorkerStatus{Worker: w, Books: b}
	}
	periodic := func(w *config.Worker) { w.Every = time.Minute }
	watchedPid := func(w *config.Worker) { w.Command, w.Pid = nil, 4242 }
	watchedFile := func(w *config.Worker) { w.Command, w.PidFile = nil, "/run/x.pid" }
	for _, tc := range []struct {
		name  string
		ws    fleet.WorkerStatus
		code  int
		ready bool
	}{
		{"running and ready", sup("w", monitor.Books{Phase: monitor.Running, Ready: true}), http.StatusOK, true},
		{"starting", sup("w", monitor.Books{Phase: monitor.Running}), http.StatusOK, false},
		{"in a backoff", sup("w", monitor.Books{Phase: monitor.Backoff, LastExit: "signal killed"}), http.StatusOK, false},
		{"being killed", sup("w", monitor.Books{Phase: monitor.Stopping, Abnormal: true, Ready: true}), http.StatusOK, true},
		{"between a run and the next", sup("w", monitor.Books{Phase: monitor.Down, LastExit: "exit 1"}), http.StatusOK, false},
		{"gave up", sup("w", monitor.Books{Phase: monitor.GaveUp, LastExit: "exit 1"}), http.StatusServiceUnavailable, false},
		{"stopped by ctl", sup("w", monitor.Books{Phase: monitor.Held}), http.StatusServiceUnavailable, false},
		{"waiting for its dependencies", fleet.WorkerStatus{Worker: config.Worker{Name: "w", Command: []string{"/bin/true"}},
			Books: monitor.Books{Phase: monitor.Held}, Parked: true, WaitingFor: []string{"db"}}, http.StatusOK, false},
		{"finished after a kill", sup("w", monitor.Books{Phase: monitor.Finished, LastExit: "signal killed"}), http.StatusServiceUnavailable, false},
		{"finished after a crash", sup("w", monitor.Books{Phase: monitor.Finished, LastExit: "exit 3"}), http.StatusServiceUnavailable, false},
		{"finished after exit 0", sup("w", monitor.Books{Phase: monitor.Finished, LastExit: "exit 0"}), http.StatusOK, false},
		{"periodic job between runs", sup("w", monitor.Books{Phase: monitor.Backoff, LastExit: "exit 0"}, periodic), http.StatusOK, true},
		{"watched pid gone", sup("w", monitor.Books{Phase: monitor.Down, LastExit: "exited"}, watchedPid), http.StatusServiceUnavailable, false},
		{"watched pid not there yet", sup("w", monitor.Books{Phase: monitor.Idle}, watchedPid), http.StatusOK, false},
		{"pidfile between processes", sup("w", monitor.Books{Phase: monitor.Idle, LastExit: "killed"}, watchedFile), http.StatusOK, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(fakeSource{ws: []fleet.WorkerStatus{tc.ws}})
			var h WorkerHealth
			if code := get(t, s, "/healthz/w", &h); code != tc.code || h.Name != "w" || h.Supervision != tc.ws.Phase.String() && tc.ws.Phase != monitor.Held {
				t.Errorf("/healthz/w: %d %+v, want %d", code, h, tc.code)
			}
			var rd Readiness
			code := get(t, s, "/readyz", &rd)
			if want := map[bool]int{true: http.StatusOK, false: http.StatusServiceUnavailable}[tc.ready]; code != want ||
				tc.ready != (len(rd.NotReady) == 0) {
				t.Errorf("/readyz: %d %+v, want %d", code, rd, want)
			}
		})
	}
	var h WorkerHealth
	if code := get(t, New(fakeSource{}), "/healthz/nope", &h); code != http.StatusNotFound || h.Error == "" {
		t.Errorf("/healthz/nope: %d %+v, want 404 saying why", code, h)
	}
	var rd Readiness
	if code := get(t, New(fakeSource{}), "/readyz", &rd); code != http.StatusOK || rd.Status != "ready" {
		t.Errorf("/readyz without workers: %d %+v, want 200", code, rd)
	}
}

// TestProbesOfAFleet serves a real fleet: /readyz is 503 while a worker has not beaten yet and
// 200 once both have; a worker made to hang (SIGUSR1) of restart "never" is killed and its /healthz/NAME turns
// 503 while the other's stays 200; a worker stopped as ctl stops it is 503 too; an unknown
// name is 404.
func TestProbesOfAFleet(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	late, hang := testkit.Name(t, "late"), testkit.Name(t, "hang")
	t.Cleanup(func() { shmobj.Remove(late); shmobj.Remove(hang) })
	table := func(name, mode, extra string) string {
		return fmt.Sprintf("[[worker]]\nname = %q\ncommand = [%q]\ninterval = \"50ms\"\nkill_after = \"500ms\"\n"+
			"env = { %s = %q, GORACE = \"atexit_sleep_ms=0\" }\n%s", name, exe, envMode, mode, extra)
	}
	file, err := config.Parse("t.toml", []byte(table(late, "late", "grace = \"5s\"\n")+table(hang, "hang", "restart = \"never\"\n")))
	if err != nil {
		t.Fatal(err)
	}
	f := fleet.New(slog.New(slog.NewTextHandler(&testkit.Buffer{}, nil)))
	defer f.Stop()
	s := New(f)
	f.Apply(file.Workers)

	var rd Readiness
	if code := get(t, s, "/readyz", &rd); code != http.StatusServiceUnavailable || !slices.Contains(rd.NotReady, late) {
		t.Errorf("/readyz before %s beat: %d %+v, want 503 naming it", late, code, rd)
	}
	testkit.WaitFor(t, 10*time.Second, "/readyz 200 once both beat", func() bool { return get(t, s, "/readyz", &rd) == http.StatusOK })
	var h WorkerHealth
	if code := get(t, s, "/healthz/"+hang, &h); code != http.StatusOK || h.Status != "up" {
		t.Errorf("/healthz/%s while it beats: %d %+v", hang, code, h)
	}
	if _, err := f.SignalWorker(hang, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 15*time.Second, hang+" killed and its /healthz 503", func() bool {
		return get(t, s, "/healthz/"+hang, &h) == http.StatusServiceUnavailable
	})
	if h.Status != "down" || h.Supervision != "finished" || h.LastExit == "" {
		t.Errorf("/healthz/%s after the kill: %+v", hang, h)
	}
	if code := get(t, s, "/healthz/"+late, &h); code != http.StatusOK {
		t.Errorf("/healthz/%s beside it: %d %+v", late, code, h)
	}
	if code := get(t, s, "/readyz", &rd); code != http.StatusServiceUnavailable || !slices.Equal(rd.NotReady, []string{hang}) {
		t.Errorf("/readyz after the kill: %d %+v, want 503 naming %s", code, rd, hang)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := f.StopWorker(ctx, late); err != nil {
		t.Fatal(err)
	}
	if code := get(t, s, "/healthz/"+late, &h); code != http.StatusServiceUnavailable || h.Supervision != "stopped" {
		t.Errorf("/healthz/%s after a stop: %d %+v, want 503, stopped", late, code, h)
	}
	if code := get(t, s, "/healthz/no-such-worker", &h); code != http.StatusNotFound {
		t.Errorf("/healthz/no-such-worker: %d %+v, want 404", code, h)
	}
}

// TestProbeGaveUp: a program that keeps failing is restarted within its start limit, then
// given up on: its /healthz/NAME is 503, gave-up, and /readyz names it.
func TestProbeGaveUp(t *testing.T) {
	name := testkit.Name(t, "crash")
	t.Cleanup(func() { shmobj.Remove(name) })
	file, err := config.Parse("t.toml", []byte(fmt.Sprintf("[[worker]]\nname = %q\ncommand = [\"/bin/false\"]\n"+
		"interval = \"50ms\"\nbackoff = \"10ms\"\nstart_limit = 2\nstart_window = \"1m\"\n", name)))
	if err != nil {
		t.Fatal(err)
	}
	f := fleet.New(slog.New(slog.NewTextHandler(&testkit.Buffer{}, nil)))
	defer f.Stop()
	s := New(f)
	f.Apply(file.Workers)
	var h WorkerHealth
	testkit.WaitFor(t, 15*time.Second, name+" given up and its /healthz 503", func() bool {
		return get(t, s, "/healthz/"+name, &h) == http.StatusServiceUnavailable
	})
	if h.Status != "down" || h.Supervision != "gave-up" || h.LastExit != "exit 1" {
		t.Errorf("/healthz/%s: %+v, want down, gave-up, exit 1", name, h)
	}
	var rd Readiness
	if code := get(t, s, "/readyz", &rd); code != http.StatusServiceUnavailable || !slices.Equal(rd.NotReady, []string{name}) {
		t.Errorf("/readyz: %d %+v, want 503 naming %s", code, rd, name)
	}
	var st Status
	if get(t, s, "/status", &st); len(st.Workers) != 1 || !st.Workers[0].DownForGood || st.Workers[0].Starts != 2 {
		t.Errorf("/status: %+v, want the worker down for good after 2 starts (its start_limit)", st.Workers)
	}
}

// TestProbesWithDependencies: a worker held until its dependency is ready is up (waiting),
// not ready; once the dependency beats, both are ready; stopped by ctl, it is down.
func TestProbesWithDependencies(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dep, app := testkit.Name(t, "dep"), testkit.Name(t, "app")
	t.Cleanup(func() { shmobj.Remove(dep); shmobj.Remove(app) })
	file, err := config.Parse("t.toml", []byte(fmt.Sprintf("[[worker]]\nname = %q\ncommand = [%q]\ninterval = \"50ms\"\ngrace = \"1m\"\n"+
		"env = { %s = \"held\", GORACE = \"atexit_sleep_ms=0\" }\n"+
		"[[worker]]\nname = %q\ncommand = [%q]\ninterval = \"50ms\"\nafter = [%q]\n"+
		"env = { %s = \"beat\", GORACE = \"atexit_sleep_ms=0\" }\n", dep, exe, envMode, app, exe, dep, envMode)))
	if err != nil {
		t.Fatal(err)
	}
	f := fleet.New(slog.New(slog.NewTextHandler(&testkit.Buffer{}, nil)))
	defer f.Stop()
	s := New(f)
	f.Apply(file.Workers)

	var h WorkerHealth
	testkit.WaitFor(t, 10*time.Second, app+" waiting for "+dep, func() bool {
		return get(t, s, "/healthz/"+app, &h) == http.StatusOK && h.Supervision == "waiting"
	})
	var rd Readiness
	if code := get(t, s, "/readyz", &rd); code != http.StatusServiceUnavailable || len(rd.NotReady) != 2 {
		t.Errorf("/readyz while %s waits: %d %+v, want 503 naming both", app, code, rd)
	}
	// Still up a while later: waiting is not down.
	time.Sleep(300 * time.Millisecond)
	if code := get(t, s, "/healthz/"+app, &h); code != http.StatusOK || h.Supervision != "waiting" {
		t.Errorf("/healthz/%s while it waits: %d %+v, want 200, waiting", app, code, h)
	}
	if _, err := f.SignalWorker(dep, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 15*time.Second, "/readyz 200 once "+dep+" beats and "+app+" runs", func() bool {
		return get(t, s, "/readyz", &rd) == http.StatusOK
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := f.StopWorker(ctx, app); err != nil {
		t.Fatal(err)
	}
	if code := get(t, s, "/healthz/"+app, &h); code != http.StatusServiceUnavailable || h.Supervision != "stopped" {
		t.Errorf("/healthz/%s after ctl stop: %d %+v, want 503, stopped", app, code, h)
	}
}
