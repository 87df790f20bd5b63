package supervise

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/source"
)

// notifyMain is the test binary as a client of the notify protocol, through go-systemd's
// daemon package. It first checks the handshake: daemon.SdWatchdogEnabled must return the
// interval of SHMMON_INTERVAL (so WATCHDOG_PID is its own pid); exit 9 if not. Modes:
//
//   - notify: READY=1 and STATUS=up, then WATCHDOG=1 every half interval.
//   - notify-ready: READY=1, never a beat.
//   - notify-trigger: beat 5 times, then WATCHDOG=trigger, then beat on.
//   - notify-interval: WATCHDOG_USEC=400000, then a beat every 250ms.
//   - notify-stopping: beat 5 times, STOPPING=1, no beat for 1s, exit 0.
//   - notify-stuck: beat 5 times, STOPPING=1, hang.
//   - notify-extend: EXTEND_TIMEOUT_USEC=5000000, no beat for 3s, then beat.
//   - notify-main: start a grandchild (mode notify-grandchild) and hang; the grandchild
//     sends MAINPID= with its own pid and beats.
//   - notify-badmain: MAINPID= with its parent's pid, then MAINPID=1, then beat.
func notifyMain(mode string) int {
	d, err := daemon.SdWatchdogEnabled(false)
	want, _ := time.ParseDuration(os.Getenv(EnvInterval))
	if mode != "notify-grandchild" && (err != nil || d != want || os.Getenv("WATCHDOG_PID") != strconv.Itoa(os.Getpid())) {
		fmt.Fprintf(os.Stderr, "notify client: SdWatchdogEnabled = %v, %v, want %v (WATCHDOG_PID=%s, pid %d)\n",
			d, err, want, os.Getenv("WATCHDOG_PID"), os.Getpid())
		return 9
	}
	send := func(s string) {
		if ok, err := daemon.SdNotify(false, s); !ok || err != nil {
			fmt.Fprintf(os.Stderr, "notify client: SdNotify(%q) = %v, %v\n", s, ok, err)
			os.Exit(8)
		}
	}
	beat := func(n int, every time.Duration) {
		for i := 0; n < 0 || i < n; i++ {
			send(daemon.SdNotifyWatchdog)
			time.Sleep(every)
		}
	}
	hang := func() int { time.Sleep(5 * time.Minute); return 0 }
	switch mode {
	case "notify":
		send("READY=1\nSTATUS=up")
		beat(-1, d/2)
	case "notify-ready":
		send(daemon.SdNotifyReady)
		return hang()
	case "notify-trigger":
		beat(5, d/2)
		send("WATCHDOG=trigger")
		beat(-1, d/2)
	case "notify-interval":
		send("WATCHDOG_USEC=400000")
		beat(-1, 250*time.Millisecond)
	case "notify-stopping", "notify-stuck":
		beat(5, d/2)
		send(daemon.SdNotifyStopping)
		if mode == "notify-stuck" {
			return hang()
		}
		time.Sleep(time.Second)
		return 0
	case "notify-extend":
		send("EXTEND_TIMEOUT_USEC=5000000")
		time.Sleep(3 * time.Second)
		beat(-1, d/2)
	case "notify-main":
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), modeEnv+"=notify-grandchild")
		if err := cmd.Start(); err != nil {
			return 5
		}
		return hang()
	case "notify-grandchild":
		send(fmt.Sprintf("MAINPID=%d", os.Getpid()))
		beat(-1, want/2)
	case "notify-badmain":
		send(fmt.Sprintf("MAINPID=%d", os.Getppid()))
		send("MAINPID=1")
		beat(-1, d/2)
	}
	return 7
}

func TestNotifyWorker(t *testing.T) {
	r := supervise(t, "notify", Options{})
	first := r.beatingPid(t, 0)
	snap := r.record()
	if snap.Record.Kind != shmobj.KindNotify || snap.StatusText != "up" {
		t.Errorf("kind %v status %q, want notify and %q", snap.Record.Kind, snap.StatusText, "up")
	}
	// The program runs exactly the command, not the shell that set WATCHDOG_PID.
	if args, err := proc.Cmdline(int(first)); err != nil || !slices.Equal(args, r.s.opts.Command) {
		t.Errorf("program's command line %q, %v; want %q", args, err, r.s.opts.Command)
	}
	if !proc.HasEnv(int(first), "WATCHDOG_PID="+strconv.Itoa(int(first))) || !proc.HasEnv(int(first), "WATCHDOG_USEC=50000") {
		t.Errorf("WATCHDOG_PID or WATCHDOG_USEC missing from the program's environment")
	}
	// It hangs: killed and restarted, and the new one beats through the same socket.
	syscall.Kill(int(first), syscall.SIGSTOP)
	second := r.beatingPid(t, first)
	if got := r.logs.Count("event=kill reason=kill"); got != 1 {
		t.Errorf("%d SIGKILL steps, want 1", got)
	}
	if !proc.HasEnv(int(second), "WATCHDOG_PID="+strconv.Itoa(int(second))) {
		t.Errorf("the restarted program has another WATCHDOG_PID")
	}
}

func TestNotifyReadyEndsGrace(t *testing.T) {
	opts := Options{Restart: Never}
	opts.Monitor.Config = monitor.Config{Interval: 50 * time.Millisecond, Stalls: 3, Grace: time.Minute}
	r := supervise(t, "notify-ready", opts)
	start := time.Now()
	r.wait(t, 45*time.Second)
	if r.out != Hung {
		t.Errorf("Run = %v, want hung", r.out)
	}
	// Judged from READY=1 (3 stalls of 50ms), not after the minute of grace.
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("killed after %v: READY=1 did not end the grace", took)
	}
	if !strings.Contains(r.logs.String(), "event=ready") {
		t.Error("READY=1 not logged")
	}
}

func TestNotifyTrigger(t *testing.T) {
	r := supervise(t, "notify-trigger", Options{Restart: Never, Keep: true})
	r.wait(t, 30*time.Second)
	log := r.logs.String()
	if r.out != Hung || !strings.Contains(log, "event=trigger") || strings.Contains(log, "killing hung worker") {
		t.Errorf("Run = %v; want hung, killed on its trigger, not as stalled", r.out)
	}
	if snap := r.record(); snap.Record.Kills != 1 {
		t.Errorf("kills %d, want 1", snap.Record.Kills)
	}
}

func TestNotifyInterval(t *testing.T) {
	r := supervise(t, "notify-interval", Options{})
	pid := r.beatingPid(t, 0)
	testkit.WaitFor(t, 10*time.Second, "the new interval", func() bool { return r.record().Record.Interval == 400*time.Millisecond })
	// Beats 250ms apart would be 5 stalls at 50ms; at 400ms they are on time.
	time.Sleep(2 * time.Second)
	if snap := r.record(); snap.Record.WatchedPid != pid || snap.Record.Kills != 0 {
		t.Errorf("watched %d kills %d: the program was killed at its new interval", snap.Record.WatchedPid, snap.Record.Kills)
	}
	if !strings.Contains(r.logs.String(), "event=interval interval=400ms") {
		t.Error("interval change not logged")
	}
}

func TestNotifyStopping(t *testing.T) {
	t.Run("shuts down", func(t *testing.T) {
		r := supervise(t, "notify-stopping", Options{Restart: Never})
		r.wait(t, 30*time.Second)
		if r.out != Finished || strings.Contains(r.logs.String(), "state=stalled") {
			t.Errorf("Run = %v; want finished, never stalled while stopping", r.out)
		}
	})
	t.Run("stuck", func(t *testing.T) {
		r := supervise(t, "notify-stuck", Options{Restart: Never})
		testkit.WaitFor(t, 10*time.Second, "stopping", func() bool { return strings.Contains(r.logs.String(), "event=stopping") })
		start := time.Now()
		r.wait(t, 30*time.Second)
		// Suspended for the grace (2s), then 3 stalls.
		if took := time.Since(start); r.out != Hung || took < 1500*time.Millisecond {
			t.Errorf("Run = %v after %v, want hung once the grace is over", r.out, took)
		}
	})
}

func TestNotifyExtend(t *testing.T) {
	r := supervise(t, "notify-extend", Options{})
	r.beatingPid(t, 0)
	if snap := r.record(); snap.Record.Kills != 0 || snap.Record.Restarts != 0 {
		t.Errorf("kills %d restarts %d: EXTEND_TIMEOUT_USEC did not extend the 2s grace", snap.Record.Kills, snap.Record.Restarts)
	}
}

func TestNotifyMainPid(t *testing.T) {
	t.Run("accepted", func(t *testing.T) {
		r := supervise(t, "notify-main", Options{})
		var first, main int64
		testkit.WaitFor(t, 10*time.Second, "the main process watched", func() bool {
			s := r.record()
			first, main = 0, s.Record.WatchedPid
			if w := r.s.Worker(); w != nil {
				first = w.Pid()
			}
			return first != 0 && main != 0 && main != first && s.Seq > 0
		})
		if ppid, _ := proc.Ppid(int(main)); ppid != int(first) {
			t.Fatalf("watched %d, whose parent is %d, want a child of %d", main, ppid, first)
		}
		// The main process dies: the run ends, the program is stopped and restarted.
		syscall.Kill(int(main), syscall.SIGKILL)
		testkit.WaitFor(t, 10*time.Second, "a restart", func() bool { return r.logs.Count("msg=started") >= 2 })
		if !strings.Contains(r.logs.String(), "event=main-exit") {
			t.Error("the end of the main process is not logged")
		}
		if proc.Alive(int(first)) {
			t.Errorf("program %d still running after its main process died", first)
		}
	})
	t.Run("refused", func(t *testing.T) {
		r := supervise(t, "notify-badmain", Options{})
		pid := r.beatingPid(t, 0)
		testkit.WaitFor(t, 10*time.Second, "two refusals", func() bool { return r.logs.Count("event=mainpid-refused") == 2 })
		if snap := r.record(); snap.Record.WatchedPid != pid {
			t.Errorf("watched pid %d, want the program %d", snap.Record.WatchedPid, pid)
		}
	})
}

// TestNotifyUnrelatedSender: datagrams to the program's socket from a process outside its
// tree (this test) do not count.
func TestNotifyUnrelatedSender(t *testing.T) {
	r := supervise(t, "sleep", Options{})
	pid := r.program(t, "sleep")
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	var addr string
	for kv := range strings.SplitSeq(string(env), "\x00") {
		if v, ok := strings.CutPrefix(kv, "NOTIFY_SOCKET="); ok {
			addr = v
		}
	}
	if addr != source.NotifyAddr(r.name) {
		t.Fatalf("NOTIFY_SOCKET=%q, want %q", addr, source.NotifyAddr(r.name))
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 5 {
		if _, err := c.Write([]byte("WATCHDOG=1\nSTATUS=forged\nMAINPID=1")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if snap := r.record(); snap.Seq != 0 || snap.StatusText != "" || snap.Record.Kind != shmobj.KindShm || snap.Record.WatchedPid != int64(pid) {
		t.Errorf("seq %d status %q kind %v watched %d: a stranger's datagram counted", snap.Seq, snap.StatusText, snap.Record.Kind, snap.Record.WatchedPid)
	}
}
