package monitor

import (
	"bufio"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
)

// beatThenHang is the test binary as a worker: it beats the object name every 20 ms until
// SIGUSR1, then hangs as hang says: "spin" keeps a core busy, "read" blocks reading its
// standard input, "deadlock" blocks on a mutex; anything else goes on beating. It ends by
// itself after a minute.
func beatThenHang(name, hang string) {
	time.AfterFunc(time.Minute, func() { os.Exit(1) })
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	var seg *shmobj.Segment
	for {
		select {
		case <-usr1:
			switch hang {
			case "spin":
				for n := 0; ; n++ {
				}
			case "read":
				bufio.NewReader(os.Stdin).ReadByte()
			case "deadlock":
				var mu sync.Mutex
				mu.Lock()
				mu.Lock()
			}
		case <-time.After(20 * time.Millisecond):
		}
		if seg == nil {
			seg, _ = shmobj.Attach(name)
		}
		if seg != nil {
			seg.Beat()
		}
	}
}

// starveCase is one watch of a worker next to busy loops on every core.
type starveCase struct {
	idle       bool          // the worker runs under SCHED_IDLE once it beats (testkit.SchedIdle): starved
	hang       string        // how it hangs after SIGUSR1 (see beatThenHang), or "stop" (SIGSTOP)
	starvedMax time.Duration // Config.StarvedMax
	run        time.Duration // how long the watch may take
	quiet      bool          // no busy loops
	onEvent    func(Event)   // Options.OnEvent
}

// watchStarved watches the test binary as a worker (see beatThenHang) with interval 100ms
// and 3 stalls: once it beats, every core gets busy loops (unless quiet) until the hang
// verdict, then it is made to hang. It returns the outcome, how long after the hang it came, and the log.
func watchStarved(t *testing.T, c starveCase) (Outcome, time.Duration, string) {
	t.Helper()
	name := testkit.Name(t, "shmmon-starve")
	t.Cleanup(func() { shmobj.Remove(name) })
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SHMMON_TEST_MODE=beat", "SHMMON_TEST_OBJECT="+name, "SHMMON_TEST_HANG="+c.hang)
	r, wr, err := os.Pipe() // the standard input of a worker that hangs in read
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wr.Close() })
	cmd.Stdin = r
	worker := testkit.Start(t, "worker", cmd)
	r.Close()
	p, err := proc.Open(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })

	logs, log := newLog()
	cfg := Config{Interval: 100 * time.Millisecond, Stalls: 3, Grace: 5 * time.Second, StarvedMax: c.starvedMax}
	// Once the worker is judged hung, the loops stop: a SCHED_IDLE worker beside them would
	// not get a CPU even to end, and the kill's wait for its end would run out.
	var loadMu sync.Mutex
	var stopLoad func()
	onEvent := func(e Event) {
		if e.Kind == EventAbnormal {
			loadMu.Lock()
			if stopLoad != nil {
				stopLoad()
			}
			loadMu.Unlock()
		}
		if c.onEvent != nil {
			c.onEvent(e)
		}
	}
	w := &Watch{Name: name, Options: Options{Config: cfg, OnEvent: onEvent}, Process: p, KillAfter: 300 * time.Millisecond, Logger: log}
	type result struct {
		out Outcome
		err error
	}
	done := make(chan result, 1)
	stop, err := w.Start(func(out Outcome, err error) { done <- result{out, err} })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if !testkit.Poll(10*time.Second, func() bool { return w.Worker().Books().Ready }) {
		t.Fatalf("%s never beat; log:\n%s", worker.Label, logs)
	}
	if c.idle {
		testkit.SchedIdle(t, cmd.Process.Pid, true)
		testkit.Pin(t, cmd.Process.Pid, 0)
	}
	if !c.quiet {
		// Three busy loops a core starve a SCHED_IDLE worker kept on one core; one a core
		// leaves a worker at the default priority its share even on a machine busy with other
		// work.
		perCore := 1
		if c.idle {
			perCore = 3
		}
		loadMu.Lock()
		stopLoad = testkit.Load(t, perCore)
		loadMu.Unlock()
		time.Sleep(200 * time.Millisecond)
	}
	hung := time.Now()
	if c.hang == "stop" {
		syscall.Kill(cmd.Process.Pid, syscall.SIGSTOP)
	} else if c.hang != "" {
		syscall.Kill(cmd.Process.Pid, syscall.SIGUSR1)
	}
	select {
	case res := <-done:
		if res.err != nil {
			t.Fatal(res.err)
		}
		return res.out, time.Since(hung), logs.String()
	case <-time.After(c.run):
		stop()
		res := <-done
		return res.out, time.Since(hung), logs.String()
	}
}

// TestStarvedNotKilled: a healthy worker under SCHED_IDLE next to busy loops on every core
// waits for a CPU for many intervals; its stalls are not counted, event=starved is logged
// once per streak, and it is never killed. It runs 15 s: on a machine busy with other work
// too, the worker's starved streaks (two stalls in a row at least) come less often.
func TestStarvedNotKilled(t *testing.T) {
	out, _, logs := watchStarved(t, starveCase{idle: true, starvedMax: time.Minute, run: 15 * time.Second})
	if out != Stopped {
		t.Fatalf("outcome %v, want the watch still running (stopped by the test); log:\n%s", out, logs)
	}
	if !strings.Contains(logs, "event=starved") || !strings.Contains(logs, "run_delay=") || !strings.Contains(logs, "pressure=") {
		t.Errorf("no event=starved line with its figures; log:\n%s", logs)
	}
	t.Log(strings.Join(testkit.LinesWith(strings.Split(logs, "\n"), "starved"), "\n"))
	if strings.Contains(logs, "state=abnormal") {
		t.Errorf("a starved worker was judged hung; log:\n%s", logs)
	}
}

// TestStarvedMax: a worker starved for longer than StarvedMax is judged as usual. The worker
// spins under SCHED_IDLE, never beating again: starved by the rule, hung in fact.
func TestStarvedMax(t *testing.T) {
	const bound = 1500 * time.Millisecond
	out, took, logs := watchStarved(t, starveCase{idle: true, hang: "spin", starvedMax: bound, run: 20 * time.Second})
	if out != Killed {
		t.Fatalf("outcome %v, want killed; log:\n%s", out, logs)
	}
	for _, want := range []string{"event=starved ", "event=starved-max", "state=abnormal"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if took < bound {
		t.Errorf("killed %v after the hang, before starved_max %v; log:\n%s", took, bound, logs)
	}
}

// TestStarvationOff: with the rule off, the same worker is killed at the stall threshold,
// and no stall is excused.
func TestStarvationOff(t *testing.T) {
	out, took, logs := watchStarved(t, starveCase{idle: true, hang: "spin", starvedMax: StarvationOff, run: 20 * time.Second})
	if out != Killed {
		t.Fatalf("outcome %v, want killed; log:\n%s", out, logs)
	}
	if strings.Contains(logs, "event=starved") {
		t.Errorf("a stall was excused with the rule off; log:\n%s", logs)
	}
	// Judged at the threshold (3 intervals); its end takes longer on a loaded machine: a
	// SCHED_IDLE process under busy loops waits for a CPU even to exit. Generous, under the
	// 20 s the case runs.
	if took > 15*time.Second {
		t.Errorf("killed %v after the hang; want about 3 intervals", took)
	}
}

// TestRealHangsCounted: next to the same busy loops, a worker at the default priority that is
// stopped, blocked in read(2), deadlocked or spinning without beating is killed at the stall
// threshold, as without the rule: the rule never hides a real hang.
func TestRealHangsCounted(t *testing.T) {
	for _, hang := range []string{"stop", "read", "deadlock", "spin"} {
		t.Run(hang, func(t *testing.T) {
			out, took, logs := watchStarved(t, starveCase{hang: hang, starvedMax: time.Minute, run: 20 * time.Second})
			if out != Killed {
				t.Fatalf("outcome %v, want killed; log:\n%s", out, logs)
			}
			if strings.Contains(logs, "event=starved") {
				t.Errorf("a real hang was excused as starvation; log:\n%s", logs)
			}
			// 3 intervals of 100ms, a check slot, the kill; generous for a loaded machine.
			if took > 5*time.Second {
				t.Errorf("killed %v after the hang", took)
			}
		})
	}
}

// TestEvidence: at the hang verdict of a deadlocked worker, before the kill, one
// event=evidence line names each thread's state and wait channel, the books keep it, and the
// abnormal and kill events carry the full report.
func TestEvidence(t *testing.T) {
	var mu sync.Mutex
	var events []Event
	out, _, logs := watchStarved(t, starveCase{hang: "deadlock", quiet: true, run: 20 * time.Second, onEvent: func(e Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}})
	if out != Killed {
		t.Fatalf("outcome %v, want killed; log:\n%s", out, logs)
	}
	lines := testkit.LinesWith(strings.Split(logs, "\n"), "event=evidence")
	if len(lines) != 1 {
		t.Fatalf("%d event=evidence lines, want 1; log:\n%s", len(lines), logs)
	}
	line := lines[0]
	t.Log(line)
	for _, want := range []string{"threads=", " S ", "futex", "rss=", "stalled_for=", "seq=", "syscall="} {
		if !strings.Contains(line, want) {
			t.Errorf("the evidence lacks %q: %s", want, line)
		}
	}
	if ev, sig := strings.Index(logs, "event=evidence"), strings.Index(logs, "event=signal"); ev < 0 || sig < 0 || ev > sig {
		t.Errorf("the evidence must come before the first signal; log:\n%s", logs)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, kind := range []EventKind{EventAbnormal, EventKill} {
		i := slices.IndexFunc(events, func(e Event) bool { return e.Kind == kind })
		if i < 0 || !strings.Contains(events[i].Evidence, "wchan") {
			t.Errorf("the %s event lacks the evidence: %+v", kind, events)
		}
	}
}
