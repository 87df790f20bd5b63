package serve

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
)

// TestRunJoinsEverything: serve with a worker, a process table's sweep, the TCP watchdog, the
// HTTP endpoint and systemd's watchdog ends when its context does, and leaves no goroutine of
// its own behind; systemd is told READY=1, WATCHDOG=1, then STOPPING=1.
func TestRunJoinsEverything(t *testing.T) {
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	// The package proc's exit watcher and os/signal's loop live as long as the process: start
	// them before counting.
	if p, err := proc.Open(sleeper.Process.Pid); err == nil {
		p.Close()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR2)
	signal.Stop(sig)
	name := testkit.Name(t, "shmmon-serve")
	t.Cleanup(func() { shmobj.Remove(name) })
	key := 0x7a000000 | os.Getpid()&0xffffff
	path := filepath.Join(t.TempDir(), "shmmon.toml")
	tcp := testkit.FreeAddr(t) // the TCP watchdog wants a fixed port
	conf := fmt.Sprintf("[serve]\nlisten = \"127.0.0.1:0\"\n\n[tcp_watchdog]\nlisten = %q\n\n"+
		"[proctab]\nkey = %d\nevery = \"100ms\"\n\n[[worker]]\nname = %q\npid = %d\ninterval = \"100ms\"\ngrace = \"1m\"\n",
		tcp, key, name, sleeper.Process.Pid)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("ipcrm", "-M", fmt.Sprint(key), "-S", fmt.Sprint(key)).Run() })
	// Under systemd: serve's READY=1, WATCHDOG=1 and STOPPING=1 come to this socket.
	sd, told := testkit.NotifySocket(t)
	t.Setenv("NOTIFY_SOCKET", sd)
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	before := runtime.NumGoroutine()
	var logs testkit.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Options{Config: path, Logger: slog.New(slog.NewTextHandler(&logs, nil))}) }()
	testkit.WaitFor(t, 10*time.Second, "the worker watched", func() bool {
		select {
		case err := <-done:
			t.Fatalf("Run = %v at once\n%s", err, logs.String())
		default:
		}
		snap, err := shmobj.Read(name)
		return err == nil && snap.HasRecord
	})
	testkit.WaitLine(t, &logs, 10*time.Second, "event=proctab")
	testkit.WaitLine(t, told, 10*time.Second, "WATCHDOG=1")
	cancel()
	if err := testkit.Receive(t, done, 10*time.Second, "Run to return after its context ended"); err != nil {
		t.Fatalf("Run = %v\n%s", err, logs.String())
	}
	testkit.Poll(5*time.Second, func() bool { return runtime.NumGoroutine() <= before })
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after Run returned, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
	if _, err := os.Stat(shmobj.Path(name)); err == nil {
		t.Error("the worker's object is still there after serve ended")
	}
	said := told.Lines()
	if len(said) < 3 || said[0] != "READY=1" || said[len(said)-1] != "STOPPING=1" {
		t.Errorf("told systemd %q: want READY=1 first, WATCHDOG=1, STOPPING=1 last", said)
	}
}
