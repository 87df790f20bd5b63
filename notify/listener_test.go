//go:build linux

package notify

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/shmmon/shmmon/internal/testkit"
)

// TestMain lets the test binary be a sender: with NOTIFY_TEST_SEND set it sends that text to
// $NOTIFY_SOCKET through go-systemd's daemon.SdNotify and exits.
func TestMain(m *testing.M) {
	if msg, ok := os.LookupEnv("NOTIFY_TEST_SEND"); ok {
		sent, err := daemon.SdNotify(false, msg)
		if !sent || err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// listen starts a listener closed by the test's end, logging at debug level into logs.
func listen(t *testing.T, opts Options) (*Listener, *testkit.Buffer) {
	t.Helper()
	logs := &testkit.Buffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l, err := Listen(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l, logs
}

// send sends b to addr from this process.
func send(t *testing.T, addr string, b []byte) {
	t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// sendFrom sends text to addr from a new process (this test binary) and returns its pid.
func sendFrom(t *testing.T, addr, text string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+addr, "NOTIFY_TEST_SEND="+text, "GORACE=atexit_sleep_ms=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sender: %v\n%s", err, out)
	}
	return cmd.Process.Pid
}

// next returns the next message, failing after 5 s.
func next(t *testing.T, l *Listener) Message {
	t.Helper()
	select {
	case m := <-l.Messages():
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return Message{}
	}
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	for _, addr := range []string{"", "@shmmon-notify-test/" + t.Name(), path} {
		t.Run(addr, func(t *testing.T) {
			l, _ := listen(t, Options{Addr: addr})
			if addr == "" && !strings.HasPrefix(l.Addr(), "@shmmon-notify/") {
				t.Errorf("random address %q", l.Addr())
			} else if addr != "" && l.Addr() != addr {
				t.Errorf("Addr() = %q, want %q", l.Addr(), addr)
			}
			send(t, l.Addr(), []byte("WATCHDOG=1\nSTATUS=up"))
			m := next(t, l)
			if !m.Watchdog || m.Status != "up" || m.Pid != os.Getpid() || m.UID != os.Getuid() || m.GID != os.Getgid() {
				t.Errorf("got %+v, want a beat with status from pid %d uid %d", m, os.Getpid(), os.Getuid())
			}
			// A real client, in another process: its own pid is attached by the kernel.
			pid := sendFrom(t, l.Addr(), "READY=1")
			if m := next(t, l); !m.Ready || m.Pid != pid {
				t.Errorf("got %+v, want READY=1 from pid %d", m, pid)
			}
		})
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left after Close: %v", err)
	}
}

func TestDropped(t *testing.T) {
	allow := func(pid int) bool { return pid == os.Getpid() }
	// Each bad datagram is followed by a good one: the good one must be the next delivered.
	for _, tt := range []struct {
		name string
		send func(addr string)
		why  string
	}{
		{"oversized", func(addr string) { send(t, addr, bytes.Repeat([]byte("x"), MaxSize+1)) }, "longer than 4096 bytes"},
		{"nul", func(addr string) { send(t, addr, []byte("READY=1\x00")) }, "NUL byte"},
		{"unrelated sender", func(addr string) { sendFrom(t, addr, "STATUS=not me") }, "sender not allowed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, logs := listen(t, Options{Allow: allow})
			tt.send(l.Addr())
			send(t, l.Addr(), []byte("STATUS="+tt.name))
			if m := next(t, l); m.Status != tt.name {
				t.Errorf("got %+v, want the good message after the bad one", m)
			}
			if !strings.Contains(logs.String(), tt.why) || !strings.Contains(logs.String(), "level=DEBUG") {
				t.Errorf("no debug line %q:\n%s", tt.why, logs)
			}
		})
	}
	// A message at the limit is kept.
	l, _ := listen(t, Options{})
	send(t, l.Addr(), append([]byte("STATUS="), bytes.Repeat([]byte("z"), MaxSize-len("STATUS="))...))
	if m := next(t, l); len(m.Status) != MaxSize-len("STATUS=") {
		t.Errorf("a %d-byte message was not kept whole: status of %d bytes", MaxSize, len(m.Status))
	}
}

func TestDropLogIsRateLimited(t *testing.T) {
	l, logs := listen(t, Options{Allow: func(int) bool { return false }})
	for range 200 {
		send(t, l.Addr(), []byte("WATCHDOG=1"))
	}
	send(t, l.Addr(), []byte("WATCHDOG=1"))
	time.Sleep(200 * time.Millisecond)
	if n := logs.Count("notify message dropped"); n < 1 || n > 2 {
		t.Errorf("%d drop lines for 201 drops within a second, want 1 or 2", n)
	}
}

func TestFdsAreClosed(t *testing.T) {
	l, _ := listen(t, Options{})
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	f, err := os.CreateTemp(t.TempDir(), "fd")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before := openFds(t)
	for range 10 {
		if err := unix.Sendmsg(fd, []byte("FDSTORE=1\nWATCHDOG=1"), unix.UnixRights(int(f.Fd())), &unix.SockaddrUnix{Name: l.Addr()}, 0); err != nil {
			t.Fatal(err)
		}
		if m := next(t, l); !m.Watchdog {
			t.Fatalf("got %+v", m)
		}
	}
	if after := openFds(t); after > before {
		t.Errorf("%d open descriptors after 10 messages with one each, %d before", after, before)
	}
}

func openFds(t *testing.T) int {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func TestCloseTwiceAndAddrInUse(t *testing.T) {
	addr := "@shmmon-notify-test/inuse/" + t.Name()
	l, _ := listen(t, Options{Addr: addr})
	if _, err := Listen(Options{Addr: addr}); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second Listen on %s: %v, want EADDRINUSE", addr, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, ok := <-l.Messages(); ok {
		t.Error("Messages not closed after Close")
	}
	// The address is free again.
	listen(t, Options{Addr: addr})
}
