package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/fleet"
	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/proctab"
	"github.com/shmmon/shmmon/sched"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/worker"
)

// envMode makes the test binary a worker: "beat" beats every 10ms; "late" waits a second,
// then beats; "hang" beats until it gets SIGUSR1, then hangs; "held" beats only once it got
// SIGUSR1. None lives more than 2 minutes.
const envMode = "HTTPAPI_TEST_WORKER"

func TestMain(m *testing.M) {
	switch os.Getenv(envMode) {
	case "beat", "late", "hang", "held":
		mode := os.Getenv(envMode)
		if mode == "late" {
			time.Sleep(time.Second)
		}
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		silent := mode == "held"
		for began := time.Now(); time.Since(began) < 2*time.Minute; time.Sleep(10 * time.Millisecond) {
			select {
			case <-usr1:
				silent = mode == "hang"
			default:
			}
			if !silent {
				worker.Beat()
			}
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// scrape gets /metrics from h and parses it.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	return testkit.ParseMetrics(t, rec.Body)
}

func get(t *testing.T, h http.Handler, path string, v any) int {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", path, ct)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("%s: %v in %s", path, err, rec.Body)
	}
	return rec.Code
}

// TestFleetEndpoints serves a real fleet with one beating worker: /metrics, /status and
// /healthz agree with its object, and /healthz fails while a test hook blocks the worker's
// loop, and recovers when it is released.
func TestFleetEndpoints(t *testing.T) {
	name := fmt.Sprintf("shmmon-httpapi-%d-%s", os.Getpid(), t.Name())
	t.Cleanup(func() { shmobj.Remove(name) })
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	file, err := config.Parse("t.toml", []byte(fmt.Sprintf("[[worker]]\nname = %q\ncommand = [%q]\ninterval = \"50ms\"\n"+
		"env = { %s = \"beat\", GORACE = \"atexit_sleep_ms=0\" }\n", name, exe, envMode)))
	if err != nil {
		t.Fatal(err)
	}
	var log testkit.Buffer
	f := fleet.New(slog.New(slog.NewTextHandler(&log, nil)))
	defer f.Stop()
	s := New(f)
	var mu sync.Mutex
	var release chan struct{} // non-nil: checks block until it is closed
	// Before f.Stop: a failure while the loop is blocked must not hang the test.
	defer func() {
		mu.Lock()
		if release != nil {
			close(release)
			release = nil
		}
		mu.Unlock()
	}()
	f.ObserveChecks(func(w string, took time.Duration) {
		s.ObserveCheck(w, took)
		mu.Lock()
		ch := release
		mu.Unlock()
		if ch != nil {
			<-ch
		}
	})
	f.Apply(file.Workers)
	testkit.WaitFor(t, 10*time.Second, "the worker beating", func() bool {
		snap, err := shmobj.Read(name)
		return err == nil && snap.Record.State == shmobj.StateOK
	})

	// /status matches the object.
	before, _ := shmobj.Read(name)
	var st Status
	if code := get(t, s, "/status", &st); code != http.StatusOK || len(st.Workers) != 1 {
		t.Fatalf("/status: %d %+v", code, st)
	}
	after, _ := shmobj.Read(name)
	w, r := st.Workers[0], before.Record
	if w.Name != name || w.Kind != "shm" || !w.Supervised || len(w.Command) != 1 || w.Command[0] != exe ||
		w.Pid != r.WatchedPid || w.WorkerPid != before.WorkerPid || w.MonitorPid != int64(os.Getpid()) || w.MonitorPid != r.MonitorPid ||
		w.State != "ok" || w.Threshold != r.Threshold || w.IntervalSec != 0.05 || w.Seq < before.Seq || w.Seq > after.Seq ||
		w.LastProgress == nil || w.LastCheck == nil || w.Starts != 1 || w.Restarts != 0 || w.Kills != 0 || !w.Checking || w.Late ||
		w.Error != "" || w.RecKills != r.Kills || w.RecRestarts != r.Restarts {
		t.Errorf("/status worker %+v\ndoes not match the object %+v", w, before)
	}

	// /metrics: the worker's series, and checks observed.
	fams := scrape(t, s)
	lv := map[string]string{"name": name, "kind": "shm"}
	for metric, want := range map[string]float64{
		"shmmon_worker_up": 1, "shmmon_worker_starts_total": 1, "shmmon_worker_restarts_total": 0,
		"shmmon_worker_kills_total": 0, "shmmon_worker_check_late": 0, "shmmon_worker_stalls": 0,
	} {
		if v, ok := testkit.MetricValue(fams, metric, lv); !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", metric, v, ok, want)
		}
	}
	for _, state := range []string{"unknown", "waiting", "ok", "stalled", "abnormal", "killed", "exited"} {
		want := 0.0
		if state == "ok" {
			want = 1
		}
		if v, ok := testkit.MetricValue(fams, "shmmon_worker_state", map[string]string{"name": name, "state": state}); !ok || v != want {
			t.Errorf("state %s = %v (present %v), want %v", state, v, ok, want)
		}
	}
	if v, ok := testkit.MetricValue(fams, "shmmon_worker_sequence", lv); !ok || v < float64(before.Seq) {
		t.Errorf("sequence %v, want at least %d", v, before.Seq)
	}
	if v, ok := testkit.MetricValue(fams, "shmmon_worker_last_progress_seconds", lv); !ok || v < 0 || v > 5 {
		t.Errorf("last progress %v s ago (present %v)", v, ok)
	}
	if v, _ := testkit.MetricValue(fams, "shmmon_check_duration_seconds", nil); v < 1 {
		t.Errorf("%v checks observed", v)
	}
	for _, fam := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if fams[fam] == nil {
			t.Errorf("no %s: the Go and process collectors are missing", fam)
		}
	}

	// /healthz: ok, then late while the loop is blocked, then ok again.
	var h Health
	if code := get(t, s, "/healthz", &h); code != http.StatusOK || h.Status != "ok" || len(h.Late) != 0 {
		t.Fatalf("/healthz: %d %+v", code, h)
	}
	mu.Lock()
	release = make(chan struct{})
	mu.Unlock()
	testkit.WaitFor(t, fleet.LateFloor+10*time.Second, "/healthz to fail", func() bool {
		return get(t, s, "/healthz", &h) == http.StatusServiceUnavailable
	})
	if h.Status != "late" || len(h.Late) != 1 || h.Late[0].Name != name || h.Late[0].LateBy <= 0 {
		t.Errorf("/healthz while blocked: %+v", h)
	}
	if v, _ := testkit.MetricValue(scrape(t, s), "shmmon_worker_check_late", lv); v != 1 {
		t.Errorf("check_late %v while the loop is blocked, want 1", v)
	}
	mu.Lock()
	close(release)
	release = nil
	mu.Unlock()
	testkit.WaitFor(t, 10*time.Second, "/healthz to recover", func() bool { return get(t, s, "/healthz", &h) == http.StatusOK })
}

// fakeSource is a Source with fixed answers.
type fakeSource struct {
	ws   []fleet.WorkerStatus
	recs []proctab.Record
	err  error
	pt   fleet.ProctabHealth
}

func (f fakeSource) Status() []fleet.WorkerStatus              { return f.ws }
func (f fakeSource) ProctabRecords() ([]proctab.Record, error) { return f.recs, f.err }
func (f fakeSource) ProctabHealth() fleet.ProctabHealth        { return f.pt }

// TestSeries covers what a live fleet rarely shows: an unreadable object, a process table
// with two records of one name, the reload counter; and lints the exposition.
func TestSeries(t *testing.T) {
	now := time.Now()
	src := fakeSource{
		ws: []fleet.WorkerStatus{{Worker: config.Worker{Name: "gone"}, Err: errors.New("shmobj: no such object"), Books: monitor.Books{Kills: 2, Starved: 1500 * time.Millisecond}}},
		recs: []proctab.Record{
			{Slot: 1, Pid: os.Getpid(), Name: "svc", Timeout: time.Minute, Atime: now.Add(-time.Second)},
			{Slot: 4, Pid: os.Getpid(), Name: "svc", Timeout: time.Second, Atime: now.Add(-time.Minute)},
		},
	}
	s := New(src)
	s.Reloaded(nil)
	s.Reloaded(errors.New("bad"))
	s.Reloaded(errors.New("bad"))
	fams := scrape(t, s)
	checks := []struct {
		metric string
		labels map[string]string
		want   float64
	}{
		{"shmmon_worker_up", map[string]string{"name": "gone"}, 0},
		{"shmmon_worker_state", map[string]string{"name": "gone", "state": "unknown"}, 1},
		{"shmmon_worker_kills_total", map[string]string{"name": "gone"}, 2},
		{"shmmon_worker_starved_seconds_total", map[string]string{"name": "gone"}, 1.5},
		{"shmmon_worker_state", map[string]string{"name": "gone", "state": "starved"}, 0},
		{"shmmon_worker_up", map[string]string{"name": "svc", "kind": "proctab"}, 1},
		{"shmmon_worker_state", map[string]string{"name": "svc[4]", "kind": "proctab", "state": "abnormal"}, 1},
		{"shmmon_worker_up", map[string]string{"name": "svc[4]", "kind": "proctab"}, 0},
		{"shmmon_config_reloads_total", map[string]string{"result": "success"}, 1},
		{"shmmon_config_reloads_total", map[string]string{"result": "failure"}, 2},
	}
	for _, c := range checks {
		if v, ok := testkit.MetricValue(fams, c.metric, c.labels); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.metric, c.labels, v, ok, c.want)
		}
	}
	if v, ok := testkit.MetricValue(fams, "shmmon_host_cpu_pressure_ratio", nil); ok != (sched.Pressure(0).HostKnown) || v < 0 || v > 1 {
		t.Errorf("shmmon_host_cpu_pressure_ratio %v (present %v), want 0 to 1 where /proc/pressure/cpu is readable", v, ok)
	}
	if _, ok := testkit.MetricValue(fams, "shmmon_worker_sequence", map[string]string{"name": "gone"}); ok {
		t.Error("a sequence for an object that cannot be read")
	}
	if v, ok := testkit.MetricValue(fams, "shmmon_worker_last_progress_seconds", map[string]string{"name": "svc[4]"}); !ok || v < 59 {
		t.Errorf("proctab age %v (present %v), want about 60", v, ok)
	}

	// The names and help texts follow Prometheus' conventions.
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	problems, err := promlint.New(rec.Body).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "shmmon_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}

	var st Status
	get(t, s, "/status", &st)
	if len(st.Workers) != 1 || st.Workers[0].Error == "" || st.Workers[0].State != "unknown" || len(st.Proctab) != 2 ||
		st.Proctab[1].State != "abnormal" || st.Proctab[0].State != "ok" {
		t.Errorf("/status: %+v", st)
	}
	src.err = errors.New("proctab: no table")
	if get(t, New(src), "/status", &st); st.ProctabError != "proctab: no table" {
		t.Errorf("proctab error %q", st.ProctabError)
	}
}

func TestMethodsAndPaths(t *testing.T) {
	s := New(fakeSource{})
	for _, c := range []struct {
		method, path string
		code         int
	}{{"POST", "/metrics", http.StatusMethodNotAllowed}, {"GET", "/nope", http.StatusNotFound}, {"HEAD", "/healthz", http.StatusOK}} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Code != c.code {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, rec.Code, c.code)
		}
	}
}

// TestServe serves on a real listener and stops with the context.
func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(fakeSource{}).Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"status": "ok"`) {
		t.Errorf("/healthz: %d %s", resp.StatusCode, body)
	}
	cancel()
	if err := testkit.Receive(t, done, 5*time.Second, "Serve to return after cancel"); err != nil {
		t.Errorf("Serve = %v after cancel, want nil", err)
	}
}

// TestProctabHealth: while the process table's sweep fails, /healthz is 503 and says why,
// and the lock timeouts are a counter; a fleet that sweeps no table has neither.
func TestProctabHealth(t *testing.T) {
	since := time.Now().Add(-time.Minute).Truncate(time.Second)
	for _, tc := range []struct {
		name    string
		src     fakeSource
		code    int
		status  string
		counter bool
	}{
		{"no table", fakeSource{}, http.StatusOK, "ok", false},
		{"sweeping", fakeSource{pt: fleet.ProctabHealth{Sweeping: true}}, http.StatusOK, "ok", true},
		{"lock never free", fakeSource{pt: fleet.ProctabHealth{Sweeping: true, Health: proctab.Health{LockTimeouts: 3,
			Err: fmt.Errorf("%w: semaphore 0x5095 not free", proctab.ErrLockTimeout), Since: since}}}, http.StatusServiceUnavailable, "proctab", true},
		{"late and lock never free", fakeSource{
			ws: []fleet.WorkerStatus{{Worker: config.Worker{Name: "w"}, Checking: true, Deadline: time.Now().Add(-time.Minute)}},
			pt: fleet.ProctabHealth{Sweeping: true, Health: proctab.Health{Err: proctab.ErrLockTimeout, Since: since}}}, http.StatusServiceUnavailable, "late", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(tc.src)
			var h Health
			if code := get(t, s, "/healthz", &h); code != tc.code || h.Status != tc.status {
				t.Errorf("/healthz: %d %+v, want %d, status %q", code, h, tc.code, tc.status)
			}
			if tc.src.pt.Err != nil && (h.Proctab == nil || !strings.Contains(h.Proctab.Error, "lock wait timed out") || !h.Proctab.Since.Equal(since)) {
				t.Errorf("/healthz proctab: %+v, want the sweep's error since %v", h.Proctab, since)
			} else if tc.src.pt.Err == nil && h.Proctab != nil {
				t.Errorf("/healthz proctab: %+v, want none", h.Proctab)
			}
			v, ok := testkit.MetricValue(scrape(t, s), "shmmon_proctab_lock_timeouts_total", nil)
			if ok != tc.counter || v != float64(tc.src.pt.LockTimeouts) {
				t.Errorf("shmmon_proctab_lock_timeouts_total = %v (present %v), want %d (present %v)", v, ok, tc.src.pt.LockTimeouts, tc.counter)
			}
		})
	}
}

// TestConnectionLimits: a client that connects and sends nothing, and one that leaves its
// keep-alive connection idle, are disconnected by the server.
func TestConnectionLimits(t *testing.T) {
	s := New(fakeSource{})
	s.headerTimeout, s.idleTimeout = 200*time.Millisecond, 300*time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	closedWithin := func(c net.Conn, d time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(d))
		for {
			if _, err := c.Read(make([]byte, 4096)); err != nil {
				return errors.Is(err, io.EOF)
			}
		}
	}
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if !closedWithin(silent, 5*time.Second) {
		t.Error("a connection that sent nothing was not closed by the server")
	}
	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(idle), nil); err != nil {
		t.Fatal(err)
	} else {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if !closedWithin(idle, 5*time.Second) {
		t.Error("an idle keep-alive connection was not closed by the server")
	}
}
