package sched_test

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/sched"
)

// TestMain lets the test binary be the process judged: SHMMON_TEST_MODE "tick" wakes every
// 20 ms like a worker that beats, "read" blocks reading its standard input, "spin" keeps a
// core busy, "deadlock" blocks on a mutex it holds.
func TestMain(m *testing.M) {
	if os.Getenv("SHMMON_TEST_MODE") != "" {
		time.AfterFunc(time.Minute, func() { os.Exit(1) }) // every mode ends within a minute
	}
	switch os.Getenv("SHMMON_TEST_MODE") {
	case "tick":
		for n := 0; ; n++ {
			time.Sleep(20 * time.Millisecond)
		}
	case "read":
		bufio.NewReader(os.Stdin).ReadByte()
		os.Exit(0)
	case "spin":
		for n := 0; ; n++ {
		}
	case "deadlock":
		var mu sync.Mutex
		mu.Lock()
		go func() {
			for {
				time.Sleep(time.Hour)
			}
		}()
		mu.Lock()
	}
	os.Exit(m.Run())
}

// start runs the test binary in mode, under SCHED_IDLE with idle, and returns its pid.
func start(t *testing.T, mode string, idle bool) *testkit.Process {
	t.Helper()
	args := []string{os.Args[0], "-test.run=^$"}
	if idle {
		args = append([]string{"chrt", "-i", "0"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "SHMMON_TEST_MODE="+mode)
	if mode == "read" {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		defer r.Close()
		cmd.Stdin = r
	}
	return testkit.Start(t, mode, cmd)
}

// judge reads the process twice, window apart, and judges it.
func judge(t *testing.T, pid int, window time.Duration) sched.Verdict {
	t.Helper()
	a, err := sched.Read(pid, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(window)
	b, err := sched.Read(pid, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return sched.Judge(a, b)
}

// TestJudge judges real processes next to busy loops on every core: a worker under
// SCHED_IDLE waits for a CPU (starved); at the default priority, a stopped one, one blocked in
// read(2) or on a mutex, and one that spins are stalls that count.
func TestJudge(t *testing.T) {
	for _, c := range []struct {
		name, mode string
		idle, stop bool
		want       string
	}{
		{"starved", "tick", true, false, "starved"},
		{"stopped", "tick", false, true, "stopped"},
		{"read", "read", false, false, "blocked"},
		{"deadlock", "deadlock", false, false, "blocked"},
		{"busy loop", "spin", false, false, "running"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Three busy loops a core starve a SCHED_IDLE process; one a core leaves a process
			// at the default priority its share even on a machine busy with other work.
			if c.idle {
				testkit.Load(t, 3)
			} else {
				testkit.Load(t, 1)
			}
			p := start(t, c.mode, c.idle)
			pid := p.Cmd.Process.Pid
			time.Sleep(300 * time.Millisecond) // into its mode
			if c.stop {
				syscall.Kill(pid, syscall.SIGSTOP)
				if !testkit.Poll(5*time.Second, func() bool {
					s, err := sched.Read(pid, time.Now())
					return err == nil && s.States() != "" && !strings.ContainsAny(s.States(), "RSD")
				}) {
					t.Fatalf("%s did not stop", p.Label)
				}
			}
			// A starved process may get a slice now and then: 2 of 3 windows must say so. A
			// stall that counts must count in every window.
			got := 0
			for range 3 {
				v := judge(t, pid, 400*time.Millisecond)
				t.Logf("%+v", v)
				if v.Why == c.want {
					got++
				}
				if c.want != "starved" && v.Starved {
					t.Errorf("judged starved: %+v; want %s", v, c.want)
				}
			}
			if got < 2 {
				t.Errorf("%d of 3 windows judged %s; want at least 2", got, c.want)
			}
		})
	}
}

func TestReadGone(t *testing.T) {
	p := start(t, "tick", false)
	pid := p.Cmd.Process.Pid
	p.Cmd.Process.Kill()
	p.Cmd.Process.Wait()
	if _, err := sched.Read(pid, time.Now()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read of a reaped process: %v; want fs.ErrNotExist", err)
	}
}

func TestJudgeRules(t *testing.T) {
	at := time.Unix(1000, 0)
	th := func(st byte, cpu, delay time.Duration, runs uint64) sched.Thread {
		return sched.Thread{TID: 7, State: st, CPU: cpu, Delay: delay, Runs: runs}
	}
	ms := time.Millisecond
	for _, c := range []struct {
		name   string
		before sched.Thread
		after  sched.Thread
		want   string
	}{
		{"waited, little CPU", th('R', 0, 0, 5), th('R', 5*ms, 600*ms, 9), "starved"},
		{"queued all along", th('R', 0, 0, 5), th('R', 0, 0, 5), "starved"},
		{"a twentieth of a core", th('R', 0, 0, 5), th('R', 50*ms, 900*ms, 9), "running"},
		{"less", th('R', 0, 0, 5), th('R', 49*ms, 900*ms, 9), "starved"},
		{"half waiting", th('R', 0, 0, 5), th('R', 0, 500*ms, 6), "waiting"},
		{"woke just now", th('S', 0, 0, 5), th('R', 0, 0, 5), "waiting"},
		{"stopped", th('R', 0, 0, 5), th('T', 0, 900*ms, 6), "stopped"},
		{"blocked", th('R', 0, 0, 5), th('D', 0, 900*ms, 6), "blocked"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := sched.Judge(sched.Sample{At: at, Threads: []sched.Thread{c.before}},
				sched.Sample{At: at.Add(time.Second), Threads: []sched.Thread{c.after}})
			if v.Why != c.want || v.Starved != (c.want == "starved") {
				t.Errorf("have %+v; want %s", v, c.want)
			}
		})
	}
}
