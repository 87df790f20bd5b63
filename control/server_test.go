package control_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmmon/shmmon/control"
	"github.com/shmmon/shmmon/proc"
)

// serveFake serves a control socket in a new directory with h until the test ends.
func serveFake(t *testing.T, h control.HandlerFunc) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.sock")
	srv, err := control.Listen(path, control.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if _, err := os.Stat(path); err == nil {
			t.Error("the socket is still there after Serve returned")
		}
	})
	return path
}

// raw sends line as it is and returns serve's first answer line.
func raw(t *testing.T, path, line string) string {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(line))
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	b := make([]byte, 4096)
	n, _ := c.Read(b)
	return string(b[:n])
}

// TestRequests: a request that is not well-formed is answered as a usage error, without
// reaching the handler.
func TestRequests(t *testing.T) {
	var calls atomic.Int32
	path := serveFake(t, func(ctx context.Context, peer proc.Peer, req control.Request, line func(string) error) control.Answer {
		calls.Add(1)
		if peer.Pid != os.Getpid() || int(peer.Uid) != os.Geteuid() {
			return control.Failf("peer %+v", peer)
		}
		return control.Answer{OK: true}
	})
	tests := []struct{ name, line, want string }{
		{"not JSON", "status\n", "invalid request"},
		{"unknown action", `{"action":"frobnicate"}` + "\n", `unknown action \"frobnicate\" (want status, start, stop, restart, signal, reload, logs)`},
		{"unknown field", `{"action":"status","worker":["a"]}` + "\n", `unknown field \"worker\"`},
		{"no worker to stop", `{"action":"stop"}` + "\n", "stop: no worker named"},
		{"reload of a worker", `{"action":"reload","workers":["a"]}` + "\n", "reload takes no worker"},
		{"logs of two", `{"action":"logs","workers":["a","b"]}` + "\n", "want exactly one"},
		{"signal without one", `{"action":"signal","workers":["a"]}` + "\n", "no signal given"},
		{"lines of status", `{"action":"status","lines":3}` + "\n", "status takes no lines"},
		{"an empty name", `{"action":"start","workers":["a",""]}` + "\n", `worker 2 is named \"\"`},
		{"too long", `{"action":"status","workers":["` + strings.Repeat("a", control.MaxRequest) + `"]}` + "\n", "request longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := raw(t, path, tt.line)
			if !strings.HasPrefix(a, `{"ok":false,"error":"`) || !strings.Contains(a, tt.want) || !strings.Contains(a, `"usage":true`) {
				t.Errorf("answer %s, want a usage error saying %q", a, tt.want)
			}
		})
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the handler was called %d times for bad requests", n)
	}
	a, err := control.Do(context.Background(), path, control.Request{Action: control.ActionStatus}, nil)
	if err != nil || !a.OK || calls.Load() != 1 {
		t.Errorf("a good request: %+v, %v", a, err)
	}
}

// TestLogLines: the lines of "logs" come before the answer; a follow ends when its client
// goes.
func TestLogLines(t *testing.T) {
	ended := make(chan struct{})
	path := serveFake(t, func(ctx context.Context, peer proc.Peer, req control.Request, line func(string) error) control.Answer {
		for i := range *req.Lines {
			if err := line(fmt.Sprint("line ", i)); err != nil {
				return control.Failf("%v", err)
			}
		}
		if req.Follow {
			<-ctx.Done()
			close(ended)
		}
		return control.Answer{OK: true}
	})
	three := 3
	var got []string
	a, err := control.Do(context.Background(), path, control.Request{Action: control.ActionLogs, Workers: []string{"a"}, Lines: &three},
		func(l string) { got = append(got, l) })
	if err != nil || !a.OK || strings.Join(got, ",") != "line 0,line 1,line 2" {
		t.Errorf("logs: %q, %+v, %v", got, a, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	_, err = control.Do(ctx, path, control.Request{Action: control.ActionLogs, Workers: []string{"a"}, Lines: &three, Follow: true}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("a follow whose context ended: %v", err)
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Error("the follow did not end when its client went")
	}
}

// TestListen: what Listen refuses, and what it replaces.
func TestListen(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := control.Listen(file, control.Options{}); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("Listen at a regular file: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Error("Listen touched a regular file")
	}
	for _, p := range []string{"rel.sock", "/" + strings.Repeat("x", control.MaxPath)} {
		if _, err := control.Listen(p, control.Options{}); err == nil {
			t.Errorf("Listen(%.20q...): no error", p)
		}
	}
	// A stale socket (its listener gone) is replaced; a live one is ErrInUse.
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	srv, err := control.Listen(stale, control.Options{})
	if err != nil {
		t.Fatalf("Listen at a stale socket: %v", err)
	}
	defer srv.Close()
	if _, err := control.Listen(stale, control.Options{}); !errors.Is(err, control.ErrInUse) {
		t.Errorf("Listen at a live socket: %v, want ErrInUse", err)
	}
}
