package fleet

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/tcpwd"
	"github.com/shmmon/shmmon/worker"
)

// shortName returns a name for the object of a test that fits a TCP watchdog packet (9
// bytes), removed when the test ends.
func shortName(t *testing.T, tag string) string {
	t.Helper()
	name := "f" + strconv.FormatInt(int64(os.Getpid()), 36) + tag
	if err := tcpwd.ValidateName(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove("/dev/shm/" + name) })
	return name
}

// startHolder starts the test binary beating the object name, holding a copy of c (a
// connection of this test's): for the TCP watchdog, c is then a connection of that process.
// The test kills and reaps it at the end.
func startHolder(t *testing.T, name string, c net.Conn) *exec.Cmd {
	t.Helper()
	f, err := c.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envMode+"=beat", worker.EnvName+"="+name, "GORACE=atexit_sleep_ms=0")
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { cmd.Wait(); close(waited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-waited })
	// Passing the copy made the socket blocking (File.Fd does), and this test's reads with a
	// deadline need it non-blocking again.
	rc, err := c.(*net.TCPConn).SyscallConn()
	var nerr error
	if err == nil {
		err = rc.Control(func(fd uintptr) { nerr = syscall.SetNonblock(int(fd), true) })
	}
	if err = errors.Join(err, nerr); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// TestTCPWatchdog: the server accepts the registration of a connection held by the process
// a worker watches, survives an unchanged config, refuses the name once the worker has left
// the config, and listens again when its address changes.
func TestTCPWatchdog(t *testing.T) {
	var log testkit.Buffer
	f := New(slog.New(slog.NewTextHandler(&log, nil)))
	defer f.Stop()
	name := shortName(t, "tw")
	first := &config.TCPWatchdog{Listen: testkit.FreeAddr(t), MaxConnections: 10}
	if err := f.SetTCPWatchdog(first); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", first.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	holder := startHolder(t, name, c)
	f.Apply([]config.Worker{watchedWorker(t, name, "pid = "+strconv.Itoa(holder.Process.Pid), "3s")})
	testkit.WaitFor(t, 5*time.Second, "the watched process as the worker's root", func() bool {
		root, ok := workerRoot(f, name)
		return ok && root == holder.Process.Pid
	})

	b, _ := tcpwd.Packet{Cmd: tcpwd.CmdReceive, Source: name}.MarshalBinary()
	c.Write(b)
	testkit.WaitFor(t, 5*time.Second, "the registration", func() bool { return strings.Contains(log.String(), "event=tcp-receiver") })
	if err := f.SetTCPWatchdog(&config.TCPWatchdog{Listen: first.Listen, MaxConnections: 10}); err != nil {
		t.Fatal(err)
	}
	if !testkit.StillOpen(c) {
		t.Fatal("an unchanged [tcp_watchdog] closed the connection")
	}

	// The worker leaves the config: its name is refused.
	f.Apply(nil)
	c.Write(b)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("read after a refused name: %v, want EOF", err)
	}

	// A new address, for one client: the old listener goes, a second client is closed.
	second := &config.TCPWatchdog{Listen: testkit.FreeAddr(t), MaxConnections: 1}
	if err := f.SetTCPWatchdog(second); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", first.Listen); err == nil {
		c.Close()
		t.Error("the old address still accepts connections")
	}
	var clients [2]net.Conn
	for i := range clients {
		if clients[i], err = net.Dial("tcp", second.Listen); err != nil {
			t.Fatal(err)
		}
		defer clients[i].Close()
	}
	// The server accepts in order: the first client is counted before the second comes.
	if !testkit.StillOpen(clients[0]) {
		t.Error("the first client was closed")
	}
	clients[1].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := clients[1].Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("read of a client over max_connections 1: %v, want EOF", err)
	}
	// Taken: an error, and no server.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if err := f.SetTCPWatchdog(&config.TCPWatchdog{Listen: busy.Addr().String(), MaxConnections: 10}); err == nil {
		t.Error("listening on a busy port did not fail")
	}
	if err := f.SetTCPWatchdog(nil); err != nil {
		t.Error(err)
	}
}

// TestWorkerRoot: the root of a worker's tree is the process its supervisor started, a new
// one after a restart, the process a watched worker watches, and 0 while none runs.
// workerRoot is the root the TCP watchdog's registry gives for name, and whether it has
// the name.
func workerRoot(f *Fleet, name string) (int, bool) {
	t, ok := f.tcp.Lookup(name)
	if !ok {
		return 0, false
	}
	return t.Root(), true
}

func TestWorkerRoot(t *testing.T) {
	f, log := newFleet(t)
	supervised, watched := objectName(t), objectName(t)+"-w"
	t.Cleanup(func() { os.Remove("/dev/shm/" + watched) })
	if _, ok := workerRoot(f, supervised); ok {
		t.Fatal("a worker before any config")
	}
	beater := startBeater(t, watched)
	f.Apply([]config.Worker{testWorker(t, supervised, "hang-once", ""),
		watchedWorker(t, watched, "pid = "+strconv.Itoa(beater.Process.Pid), "3s")})
	startedPid := func(n int) int {
		var pids []int
		for _, l := range log.Lines() {
			if strings.Contains(l, "worker="+supervised+" ") && strings.Contains(l, "event=start ") {
				_, rest, _ := strings.Cut(l, " pid=")
				pid, _ := strconv.Atoi(strings.Fields(rest)[0])
				pids = append(pids, pid)
			}
		}
		if len(pids) < n {
			return 0
		}
		return pids[n-1]
	}
	rootIs := func(name string, want func() int) func() bool {
		return func() bool {
			root, ok := workerRoot(f, name)
			return ok && root != 0 && root == want()
		}
	}
	testkit.WaitFor(t, 10*time.Second, "the first program as the root", rootIs(supervised, func() int { return startedPid(1) }))
	testkit.WaitFor(t, 10*time.Second, "the watched process as the root", rootIs(watched, func() int { return beater.Process.Pid }))
	testkit.WaitFor(t, 20*time.Second, "the restarted program as the root", rootIs(supervised, func() int { return startedPid(2) }))
	if startedPid(1) == startedPid(2) {
		t.Fatalf("the restart kept pid %d", startedPid(1))
	}

	beater.Process.Kill()
	testkit.WaitFor(t, 5*time.Second, "no root once the watched process ended", func() bool {
		root, ok := workerRoot(f, watched)
		return ok && root == 0
	})
	f.Apply([]config.Worker{watchedWorker(t, watched, "pid = "+strconv.Itoa(beater.Process.Pid), "3s")})
	if root, ok := workerRoot(f, supervised); ok || root != 0 {
		t.Errorf("WorkerRoot of a removed worker = %d, %v; want 0, false", root, ok)
	}
}
