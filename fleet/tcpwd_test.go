package fleet

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/internal/testlog"
	"github.com/shmmon/shmmon/tcpwd"
)

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// open reports whether the server still holds c open: a read times out rather than ending.
func open(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestTCPWatchdog: the server names the fleet's current workers, survives an unchanged
// config and listens again when its address changes.
func TestTCPWatchdog(t *testing.T) {
	var log testlog.Buffer
	f := New(slog.New(slog.NewTextHandler(&log, nil)))
	defer f.Stop()
	name := "f" + strconv.FormatInt(int64(os.Getpid()), 36)
	// A watched worker whose pidfile does not exist: in the config, never started.
	w := config.Worker{Name: name, PidFile: filepath.Join(t.TempDir(), "none.pid"), Interval: 50 * time.Millisecond, Stalls: 3}
	if f.IsWorker(name) {
		t.Fatal("IsWorker before any config")
	}
	first := &config.TCPWatchdog{Listen: freeAddr(t)}
	if err := f.SetTCPWatchdog(first); err != nil {
		t.Fatal(err)
	}
	f.Apply([]config.Worker{w})
	if !f.IsWorker(name) || f.IsWorker("other") {
		t.Errorf("IsWorker(%q) = %v, IsWorker(other) = %v; want true, false", name, f.IsWorker(name), f.IsWorker("other"))
	}

	c, err := net.Dial("tcp", first.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, _ := tcpwd.Packet{Cmd: tcpwd.CmdReceive, Source: name}.MarshalBinary()
	c.Write(b)
	if err := f.SetTCPWatchdog(&config.TCPWatchdog{Listen: first.Listen}); err != nil {
		t.Fatal(err)
	}
	if !open(t, c) {
		t.Fatal("an unchanged [tcp_watchdog] closed the connection")
	}

	// The worker leaves the config: its name is refused.
	f.Apply(nil)
	c.Write(b)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("read after a refused name: %v, want EOF", err)
	}

	// A new address: the old listener goes.
	if err := f.SetTCPWatchdog(&config.TCPWatchdog{Listen: freeAddr(t)}); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", first.Listen); err == nil {
		c.Close()
		t.Error("the old address still accepts connections")
	}
	// Taken: an error, and no server.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if err := f.SetTCPWatchdog(&config.TCPWatchdog{Listen: busy.Addr().String()}); err == nil {
		t.Error("listening on a busy port did not fail")
	}
	if err := f.SetTCPWatchdog(nil); err != nil {
		t.Error(err)
	}
}
