package supervise

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
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
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/worker"
)

const modeEnv = "SHMMON_TEST_MODE"

// TestMain lets the test binary be the supervised program. Modes (SHMMON_TEST_MODE):
//
//   - beat: worker.Beat() every 10ms, forever.
//   - beat-ignore-term: the same, ignoring SIGTERM.
//   - beat-once: beat once, then block (hangs at once).
//   - beat-once-ignore-term: the same, ignoring SIGTERM.
//   - fork-beat: start a grandchild (mode sleep, same process group), write its pid to
//     $SHMMON_TEST_FILE, then beat.
//   - sleep: block.
//   - exit N: exit with status N at once.
//   - count: append a line to $SHMMON_TEST_FILE, beat a few times, exit 0.
//   - slow-start: first beat after 400ms, then beat for 200ms, exit 3.
//   - notify-*: a client of the notify protocol (see notifyMain).
func TestMain(m *testing.M) {
	mode, arg, _ := strings.Cut(os.Getenv(modeEnv), " ")
	beat := func() {
		for {
			worker.Beat()
			time.Sleep(10 * time.Millisecond)
		}
	}
	switch mode {
	case "":
		os.Exit(m.Run())
	case "beat":
		beat()
	case "beat-ignore-term":
		signal.Ignore(syscall.SIGTERM)
		beat()
	case "beat-once":
		worker.Beat()
		time.Sleep(5 * time.Minute)
	case "beat-once-ignore-term":
		signal.Ignore(syscall.SIGTERM)
		worker.Beat()
		time.Sleep(5 * time.Minute)
	case "fork-beat":
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), modeEnv+"=sleep")
		if err := cmd.Start(); err != nil {
			os.Exit(5)
		}
		os.WriteFile(os.Getenv("SHMMON_TEST_FILE"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
		beat()
	case "sleep":
		time.Sleep(5 * time.Minute) // a leftover goes away by itself
	case "exit":
		n, _ := strconv.Atoi(arg)
		os.Exit(n)
	case "slow-start":
		time.Sleep(400 * time.Millisecond)
		for range 20 {
			worker.Beat()
			time.Sleep(10 * time.Millisecond)
		}
		os.Exit(3)
	case "count":
		f, err := os.OpenFile(os.Getenv("SHMMON_TEST_FILE"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err == nil {
			fmt.Fprintln(f, "run")
			f.Close()
		}
		for range 3 {
			worker.Beat()
			time.Sleep(10 * time.Millisecond)
		}
		os.Exit(0)
	}
	if strings.HasPrefix(mode, "notify") {
		os.Exit(notifyMain(mode))
	}
	os.Exit(7)
}

// running is a supervisor running in the background.
type running struct {
	s    *Supervisor
	name string
	logs *testkit.Buffer
	out  Outcome
	err  error
	done chan struct{}
	stop context.CancelFunc
}

var fast = monitor.Config{Interval: 50 * time.Millisecond, Stalls: 3, Grace: 2 * time.Second}

// supervise starts a supervisor of the test binary in mode, with opts filled in.
func supervise(t *testing.T, mode string, opts Options) *running {
	t.Helper()
	name := objectName(t)
	opts.Command = []string{os.Args[0]}
	// Under -race a Go program sleeps 1s at exit by default (atexit_sleep_ms), long after
	// its last beat; a real program does not.
	opts.Env = append(opts.Env, modeEnv+"="+mode, "GORACE=atexit_sleep_ms=0")
	if opts.Monitor.Config == (monitor.Config{}) {
		opts.Monitor.Config = fast
	}
	if opts.KillAfter == 0 {
		opts.KillAfter = 200 * time.Millisecond
	}
	return start(t, name, opts)
}

// start runs a supervisor of name with opts and a log of its own, stopped (and its object
// removed) when the test ends; the log is shown when the test failed.
func start(t *testing.T, name string, opts Options) *running {
	t.Helper()
	logs := &testkit.Buffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	s, err := New(name, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{s: s, name: name, logs: logs, done: make(chan struct{}), stop: cancel}
	go func() {
		defer close(r.done)
		r.out, r.err = s.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
		shmobj.Remove(name)
		if t.Failed() {
			t.Logf("supervisor log:\n%s", logs)
		}
	})
	return r
}

// objectName is the object of the test's supervisor.
func objectName(t *testing.T) string {
	return fmt.Sprintf("shmmon-sup-test-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"))
}

// wait waits for Run to return.
func (r *running) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	testkit.Receive(t, r.done, timeout, "Run to return")
}

// program waits until the supervisor's program runs, in mode (its environment says so), and
// returns its pid.
func (r *running) program(t *testing.T, mode string) int {
	t.Helper()
	var pid int
	testkit.WaitFor(t, 10*time.Second, "the program", func() bool {
		if w := r.s.Worker(); w != nil {
			pid = int(w.Pid())
		}
		return pid != 0 && proc.HasEnv(pid, modeEnv+"="+mode)
	})
	return pid
}

// record reads the object's status record.
func (r *running) record() shmobj.Snapshot {
	snap, _ := shmobj.Read(r.name)
	return snap
}

// beatingPid waits until a worker other than not is watched and has beaten, and returns it.
func (r *running) beatingPid(t *testing.T, not int64) int64 {
	t.Helper()
	var pid int64
	testkit.WaitFor(t, 10*time.Second, "a beating worker", func() bool {
		s := r.record()
		pid = s.Record.WatchedPid
		return pid != 0 && pid != not && s.Seq > 0 && s.Record.State == shmobj.StateOK
	})
	return pid
}

func TestHungWorkerIsKilledAndRestarted(t *testing.T) {
	for _, mode := range []string{"beat", "beat-ignore-term"} {
		t.Run(mode, func(t *testing.T) {
			r := supervise(t, mode, Options{})
			first := r.beatingPid(t, 0)
			if err := syscall.Kill(int(first), syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			second := r.beatingPid(t, first)
			if proc.Alive(int(first)) {
				t.Errorf("hung worker %d still alive", first)
			}
			if got := r.logs.Count("event=kill reason=kill"); got != 1 {
				t.Errorf("%d SIGKILL steps, want 1 (a stopped process cannot act on SIGTERM)", got)
			}
			snap := r.record()
			if snap.Record.Kills != 1 || snap.Record.Restarts != 1 {
				t.Errorf("kills %d restarts %d, want 1 and 1", snap.Record.Kills, snap.Record.Restarts)
			}
			r.stop()
			r.wait(t, 10*time.Second)
			if r.out != Stopped || r.err != nil {
				t.Errorf("Run = %v, %v, want stopped", r.out, r.err)
			}
			if proc.Alive(int(second)) {
				t.Errorf("worker %d still alive after stop", second)
			}
			if _, err := os.Stat(shmobj.Path(r.name)); err == nil {
				t.Error("object left after stop")
			}
		})
	}
}

func TestIgnoredSigtermIsKilled(t *testing.T) {
	// A worker that hangs at once (one beat, then nothing) and ignores SIGTERM: it is
	// SIGKILLed after KillAfter, then restarted.
	r := supervise(t, "beat-once-ignore-term", Options{})
	testkit.WaitFor(t, 10*time.Second, "the first kill", func() bool { return r.logs.Count("event=kill reason=kill") >= 1 })
	testkit.WaitFor(t, 10*time.Second, "a restart", func() bool { return r.logs.Count("msg=started") >= 2 })
	log := r.logs.String()
	if !strings.Contains(log, "event=signal reason=kill") || !strings.Contains(log, "signal=SIGTERM") {
		t.Errorf("no SIGTERM step before the SIGKILL")
	}
}

func TestCrashedWorkerIsRestarted(t *testing.T) {
	r := supervise(t, "beat", Options{})
	first := r.beatingPid(t, 0)
	syscall.Kill(int(first), syscall.SIGKILL)
	r.beatingPid(t, first)
	if !strings.Contains(r.logs.String(), `status="signal killed"`) {
		t.Errorf("the crash is not logged")
	}
}

func TestGrandchildIsKilled(t *testing.T) {
	file := filepath.Join(t.TempDir(), "grandchild")
	r := supervise(t, "fork-beat", Options{Env: []string{"SHMMON_TEST_FILE=" + file}})
	first := r.beatingPid(t, 0)
	grandchild, g := grandchildOf(t, file)
	syscall.Kill(int(first), syscall.SIGSTOP)
	r.beatingPid(t, first)
	if !g.WaitExit(context.Background(), 5*time.Second) {
		t.Errorf("grandchild %d survived the kill of its group", grandchild)
	}
	// It was our grandchild: reparented to init (or a subreaper), never to us; nothing to reap.
}

// grandchildOf waits for the fork-beat worker to write its grandchild's pid to file, and
// takes hold of the grandchild.
func grandchildOf(t *testing.T, file string) (int, *proc.Process) {
	t.Helper()
	var pid int
	testkit.WaitFor(t, 10*time.Second, "the grandchild's pid", func() bool {
		b, _ := os.ReadFile(file)
		pid, _ = strconv.Atoi(string(b))
		return pid > 0
	})
	g, err := proc.Open(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return pid, g
}

func TestWorkerExitsLeavesNoOrphans(t *testing.T) {
	file := filepath.Join(t.TempDir(), "grandchild")
	r := supervise(t, "fork-beat", Options{Env: []string{"SHMMON_TEST_FILE=" + file}, Restart: Never})
	first := r.beatingPid(t, 0)
	grandchild, g := grandchildOf(t, file)
	syscall.Kill(int(first), syscall.SIGKILL) // the leader dies alone
	r.wait(t, 10*time.Second)
	if r.out != Failed {
		t.Errorf("Run = %v, want failed", r.out)
	}
	if !g.WaitExit(context.Background(), 5*time.Second) {
		t.Errorf("grandchild %d left running after its leader died", grandchild)
	}
}

func TestBackoffAndGiveUp(t *testing.T) {
	const backoff = 100 * time.Millisecond
	r := supervise(t, "exit 1", Options{Backoff: backoff, BackoffMax: 300 * time.Millisecond, StartLimit: 5})
	r.wait(t, 20*time.Second)
	if r.out != GaveUp || r.err == nil || !strings.Contains(r.err.Error(), "6 starts") {
		t.Fatalf("Run = %v, %v, want gave-up after 6 starts", r.out, r.err)
	}
	if n := r.logs.Count("msg=started"); n != 5 {
		t.Errorf("%d starts, want 5", n)
	}
	// The waits: immediate, then backoff doubling up to the max.
	want := []string{"in=0s failures=1", "in=100ms failures=2", "in=200ms failures=3", "in=300ms failures=4", "in=300ms failures=5"}
	for _, w := range want {
		if !strings.Contains(r.logs.String(), w) {
			t.Errorf("log lacks %q", w)
		}
	}
	// The starts really are spaced by at least the waits (lower bounds only: a loaded
	// machine can only make them longer).
	times := startTimes(t, r.logs.String())
	// mins[i] is the least gap between start i-1 and start i (0-based).
	mins := []time.Duration{0, 0, backoff, 2 * backoff, 3 * backoff}
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < mins[i] {
			t.Errorf("start %d came %v after start %d, want at least %v", i+1, gap, i, mins[i])
		}
	}
}

// startTimes returns the times of the "started" log lines.
func startTimes(t *testing.T, log string) []time.Time {
	var ts []time.Time
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "msg=started") {
			continue
		}
		f := strings.Fields(line)[0]
		tm, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(f, "time="))
		if err != nil {
			t.Fatalf("bad time in %q: %v", line, err)
		}
		ts = append(ts, tm)
	}
	return ts
}

func TestPolicies(t *testing.T) {
	tests := []struct {
		mode   string
		policy Policy
		want   Outcome
		starts int
	}{
		{"exit 0", Never, Finished, 1},
		{"exit 3", Never, Failed, 1},
		{"exit 0", OnFailure, Finished, 1},
		{"exit 0", Always, GaveUp, 3},
		{"exit 3", OnFailure, GaveUp, 3},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%v", tt.mode, tt.policy), func(t *testing.T) {
			r := supervise(t, tt.mode, Options{Restart: tt.policy, StartLimit: 3, Backoff: 10 * time.Millisecond, BackoffMax: 10 * time.Millisecond})
			r.wait(t, 20*time.Second)
			if r.out != tt.want {
				t.Errorf("Run = %v (%v), want %v", r.out, r.err, tt.want)
			}
			if n := r.logs.Count("msg=started"); n != tt.starts {
				t.Errorf("%d starts, want %d", n, tt.starts)
			}
		})
	}
}

func TestEvery(t *testing.T) {
	file := filepath.Join(t.TempDir(), "runs")
	r := supervise(t, "count", Options{Every: 200 * time.Millisecond, Env: []string{"SHMMON_TEST_FILE=" + file}})
	testkit.WaitFor(t, 10*time.Second, "3 runs", func() bool {
		b, _ := os.ReadFile(file)
		return bytes.Count(b, []byte("run\n")) >= 3
	})
	r.stop()
	r.wait(t, 10*time.Second)
	b, _ := os.ReadFile(file)
	runs := bytes.Count(b, []byte("run\n"))
	times := startTimes(t, r.logs.String())
	if len(times) != runs {
		t.Errorf("%d starts logged, %d runs counted", len(times), runs)
	}
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < 200*time.Millisecond {
			t.Errorf("run %d started %v after run %d, want at least the period", i+1, gap, i)
		}
	}
	if strings.Contains(r.logs.String(), "state=abnormal") || strings.Contains(r.logs.String(), "giving up") {
		t.Errorf("a periodic job was judged hung or limited:\n%s", r.logs)
	}
}

func TestRestartRequest(t *testing.T) {
	r := supervise(t, "beat", Options{StartLimit: 1})
	first := r.beatingPid(t, 0)
	r.s.Restart()
	second := r.beatingPid(t, first)
	r.s.Restart()
	r.beatingPid(t, second)
	if strings.Contains(r.logs.String(), "giving up") {
		t.Error("requested restarts counted against the start limit")
	}
}

func TestNewRejects(t *testing.T) {
	ok := Options{Command: []string{"true"}}
	tests := []struct {
		name string
		mod  func(o *Options)
		obj  string
	}{
		{"bad name", func(o *Options) {}, "a/b"},
		{"no command", func(o *Options) { o.Command = nil }, "x"},
		{"empty program", func(o *Options) { o.Command = []string{""} }, "x"},
		{"bad stalls", func(o *Options) { o.Monitor.Stalls = -1 }, "x"},
		{"backoff over max", func(o *Options) { o.Backoff, o.BackoffMax = time.Minute, time.Second }, "x"},
		{"negative start limit", func(o *Options) { o.StartLimit = -1 }, "x"},
		{"negative every", func(o *Options) { o.Every = -time.Second }, "x"},
		{"bad policy", func(o *Options) { o.Restart = Policy(9) }, "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.mod(&o)
			if _, err := New(tt.obj, o); err == nil {
				t.Error("New succeeded")
			}
		})
	}
	for _, s := range []string{"always", "on-failure", "never"} {
		if p, err := ParsePolicy(s); err != nil || p.String() != s {
			t.Errorf("ParsePolicy(%q) = %v, %v", s, p, err)
		}
	}
	if _, err := ParsePolicy("sometimes"); err == nil {
		t.Error(`ParsePolicy("sometimes") succeeded`)
	}
}

func TestCannotStart(t *testing.T) {
	logs := &testkit.Buffer{}
	name := fmt.Sprintf("shmmon-sup-test-%d-nostart", os.Getpid())
	defer shmobj.Remove(name)
	s, err := New(name, Options{Command: []string{"/nonexistent/program"}, Restart: Never, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(context.Background())
	if out != Failed || err != nil || !strings.Contains(logs.String(), "event=start-failed") {
		t.Errorf("Run = %v, %v; log:\n%s", out, err, logs)
	}
}

// TestSystemdHandshakeNotInherited: the handshake systemd gave shmmon is not passed on to the
// program (it gets its own), the rest of shmmon's environment is.
func TestSystemdHandshakeNotInherited(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
	t.Setenv("WATCHDOG_USEC", "1000000")
	t.Setenv("SHMMON_KEEP_ME", "1")
	r := supervise(t, "sleep", Options{})
	pid := r.program(t, "sleep")
	if proc.HasEnv(pid, "NOTIFY_SOCKET=/run/systemd/notify") || proc.HasEnv(pid, "WATCHDOG_USEC=1000000") {
		t.Errorf("systemd's handshake is passed on to the program")
	}
	if !proc.HasEnv(pid, "SHMMON_KEEP_ME=1") {
		t.Errorf("the rest of the environment is not passed on")
	}
}

func TestEvents(t *testing.T) {
	events := make(chan monitor.Event, 100)
	opts := Options{}
	opts.Monitor.OnEvent = func(e monitor.Event) { events <- e }
	r := supervise(t, "beat-once", opts)
	var kinds []monitor.EventKind
	deadline := time.After(10 * time.Second)
	for len(kinds) < 6 {
		select {
		case e := <-events:
			if e.Worker != r.name || e.Pid <= 1 {
				t.Errorf("event %+v: want worker %q and a pid", e, r.name)
			}
			if e.Kind == monitor.EventKill && e.Detail == "" {
				t.Errorf("kill event without the exit status")
			}
			kinds = append(kinds, e.Kind)
		case <-deadline:
			t.Fatalf("events so far %v", kinds)
		}
	}
	// The program beats once (ready), then never again.
	want := []monitor.EventKind{monitor.EventStart, monitor.EventReady, monitor.EventStall, monitor.EventAbnormal, monitor.EventKill,
		monitor.EventRestart}
	if !slices.Equal(kinds, want) {
		t.Errorf("events %v, want %v", kinds, want)
	}
}

// TestRestartGetsGrace: a restarted program that takes a while to beat is in its startup
// grace, not judged on the last program's sequence (3 stalls at 50ms would kill it long
// before its first beat at 400ms).
func TestRestartGetsGrace(t *testing.T) {
	r := supervise(t, "slow-start", Options{Backoff: 10 * time.Millisecond, BackoffMax: 10 * time.Millisecond, StartLimit: 100})
	testkit.WaitFor(t, 10*time.Second, "three runs", func() bool { return r.logs.Count("msg=started") >= 3 })
	if n := r.logs.Count("event=kill"); n != 0 || r.record().Record.Kills != 0 {
		t.Errorf("%d kill lines, %d kills recorded; want none (each run is in its grace until it beats)", n, r.record().Record.Kills)
	}
}

// TestOptionsValidate: the zero Options are valid (zero fields are the defaults, Always among
// them), but not as resolved; every field out of range is reported, naming it.
func TestOptionsValidate(t *testing.T) {
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("Options{}.Validate() = %v", err)
	}
	if d := (Options{}).WithDefaults(); d.Restart != Always || d.StartLimit != DefaultStartLimit || d.Signal != syscall.SIGTERM {
		t.Errorf("WithDefaults() = %+v", d)
	}
	if Policy(0).String() != "" {
		t.Errorf("the zero Policy prints as %q, want \"\"", Policy(0))
	}
	err := Options{Restart: Never, Backoff: time.Minute, BackoffMax: time.Second, Every: time.Microsecond}.WithDefaults().ValidateResolved()
	want := "supervise: backoff 1m0s must be at most backoff_max (1s)\nsupervise: every 1µs must be 0 (a resident worker) or at least 1ms"
	if err == nil || err.Error() != want {
		t.Errorf("have %v\nwant %s", err, want)
	}
	if err := (Options{}).ValidateResolved(); err == nil || !strings.Contains(err.Error(), "supervise: restart 0 is not a restart policy") {
		t.Errorf("Options{}.ValidateResolved() = %v, want every zero field refused", err)
	}
}
