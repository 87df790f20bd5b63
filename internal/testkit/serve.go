package testkit

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmmon/shmmon/shmobj"
)

// Worker is one [[worker]] table of a serve config written by [WriteConfig].
type Worker struct {
	Name    string
	Command []string
	Extra   string // more TOML lines of the table, each ending in a newline
}

// WriteConfig writes a serve config to path as an editor saves a file (a new file renamed over
// the old one, so that a running serve never reads half of it): head (a [defaults] table,
// say), a [[worker]] table for each of ws, then tail.
func WriteConfig(t testing.TB, path, head string, ws []Worker, tail string) {
	t.Helper()
	var b strings.Builder
	b.WriteString(head)
	for _, w := range ws {
		q := make([]string, len(w.Command))
		for i, a := range w.Command {
			q[i] = strconv.Quote(a)
		}
		fmt.Fprintf(&b, "\n[[worker]]\nname = %q\ncommand = [%s]\n%s", w.Name, strings.Join(q, ", "), w.Extra)
	}
	b.WriteString(tail)
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// WaitBeating waits up to timeout until the object name is watched by a monitor whose worker
// is not the process not (0: any), is in state ok and has beaten, and returns the worker's pid.
func WaitBeating(t testing.TB, timeout time.Duration, name string, not int) int {
	t.Helper()
	var pid int
	WaitFor(t, timeout, name+": a worker beating", func() bool {
		snap, err := shmobj.Read(name)
		pid = int(snap.Record.WatchedPid)
		return err == nil && pid != 0 && pid != not && snap.Seq > 0 && snap.Record.State == shmobj.StateOK
	})
	return pid
}

// NotifySocket listens on a datagram socket as systemd's notify socket does, for a program
// under test told its path by NOTIFY_SOCKET: every message it gets lands in msgs, followed by a
// newline. The socket is closed when the test ends.
func NotifySocket(t testing.TB) (path string, msgs *Buffer) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	msgs = &Buffer{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msgs.Write(append(buf[:n:n], '\n'))
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return path, msgs
}
