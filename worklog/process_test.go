package worklog

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
)

// open opens the log at path for the test, closing it when the test ends.
func open(t *testing.T, opts Options) *Log {
	t.Helper()
	l, err := Open(opts, "w", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// startWriter runs the shell script with stdout and stderr given by l's new pipes.
func startWriter(t *testing.T, l *Log, script string) *testkit.Process {
	t.Helper()
	out, errw, err := l.Pipes()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", script)
	cmd.Stdout, cmd.Stderr = out, errw
	p := testkit.Start(t, "writer", cmd)
	out.Close()
	errw.Close()
	return p
}

// waitFile waits until the file at path holds a line containing each of want.
func waitFile(t *testing.T, path string, want ...string) []byte {
	t.Helper()
	var data []byte
	testkit.WaitFor(t, 10*time.Second, fmt.Sprintf("%s to hold %q", path, want), func() bool {
		data, _ = os.ReadFile(path)
		for _, w := range want {
			if !bytes.Contains(data, []byte(w)) {
				return false
			}
		}
		return true
	})
	return data
}

// TestLogProcess: both streams of a program are in the file, tagged; once the program ended
// and its Log was closed, the log process it started is gone.
func TestLogProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.log")
	l := open(t, Options{Path: path, Keep: 1})
	w := startWriter(t, l, `for i in 1 2 3; do echo "out $i"; echo "err $i" >&2; done; printf 'no newline'`)
	w.Wait(t, 10*time.Second)
	data := waitFile(t, path, " out out 3", " err err 3", " out no newline")
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		ts, rest, _ := strings.Cut(l, " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.HasPrefix(rest, "out ") && !strings.HasPrefix(rest, "err ") {
			t.Errorf("line %q: want an RFC 3339 time, then out or err", l)
		}
	}
	child := l.child
	if child == nil {
		t.Fatal("Open did not start a log process")
	}
	l.Close()
	select {
	case <-child.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the log process still runs after its program ended and its Log closed")
	}
	if _, _, err := l.Pipes(); err == nil {
		t.Error("Pipes after Close: no error")
	}
}

// TestLogFoundAgain: a starter that goes away (serve SIGKILLed) leaves the log process
// reading what its program writes: the program neither blocks nor dies of SIGPIPE, and the
// next starter finds the same log process at the file's address.
func TestLogFoundAgain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.log")
	l := open(t, Options{Path: path})
	// Far more than a pipe holds (64 KiB) while nobody of the starter's side is connected.
	w := startWriter(t, l, `i=0; while [ $i -lt 40000 ]; do echo "line $i of a program that keeps writing"; i=$((i+1)); done; exec sleep 60`)
	child := l.child
	l.mu.Lock()
	l.conn.Close() // as a SIGKILLed serve's end would
	l.mu.Unlock()
	waitFile(t, path, "line 39999 of")
	if !w.Running() {
		t.Fatal("the writer died while its log process had no starter")
	}
	l2 := open(t, Options{Path: path})
	if l2.child != nil {
		t.Fatal("Open started a second log process for the file instead of finding the first")
	}
	w2 := startWriter(t, l2, `echo "second run"`)
	w2.Wait(t, 10*time.Second)
	data := waitFile(t, path, "second run")
	if n := bytes.Count(data, []byte(" of a program")); n != 40000 || bytes.Contains(data, []byte("dropped")) {
		t.Errorf("%d lines of the first run, want 40000 and none dropped", n)
	}
	w.Signal(t, syscall.SIGKILL)
	w.Wait(t, 10*time.Second)
	l2.Close()
	select {
	case <-child.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the log process still runs after every program ended and every Log closed")
	}
}

// TestLogDiskFull: a file on a full filesystem drops and counts, never stalls the program;
// once there is room again, the file is written again, the drop noted in it.
func TestLogDiskFull(t *testing.T) {
	testkit.Require(t, os.Geteuid() == 0, "mounting a small tmpfs needs root")
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		testkit.Require(t, false, fmt.Sprintf("mount -t tmpfs: %v: %s", err, out))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	path := filepath.Join(dir, "w.log")
	l := open(t, Options{Path: path})
	w := startWriter(t, l, `i=0; while [ $i -lt 20000 ]; do echo "line $i of a program that fills the disk"; i=$((i+1)); done; exec sleep 60`)
	testkit.WaitFor(t, 20*time.Second, "the file to fail and drops to be counted", func() bool {
		return strings.Contains(l.Err(), "no space left") && l.Dropped() > 0
	})
	// Its loop ends (in sleep) without ever waiting for the full disk.
	testkit.WaitFor(t, 20*time.Second, "the writer to finish its lines", func() bool {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", w.Pid()))
		return string(comm) == "sleep\n"
	})
	// ... and the log process is through what it read (it dropped it): the count stands.
	var dropped int64
	testkit.WaitFor(t, 20*time.Second, "the count to stand", func() bool {
		before := l.Dropped()
		time.Sleep(time.Second)
		dropped = l.Dropped()
		return dropped == before
	})
	if !w.Running() {
		t.Fatal("the writer died of its full log")
	}
	// Room again: the next lines go to a new file, which says what was dropped.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	w2 := startWriter(t, l, `echo "after the disk was freed"`)
	w2.Wait(t, 10*time.Second)
	data := waitFile(t, path, "after the disk was freed", "bytes dropped")
	testkit.WaitFor(t, 5*time.Second, "the error to clear", func() bool { return l.Err() == "" })
	if !bytes.Contains(data, []byte(" log … ")) {
		t.Errorf("the drop is not noted as the log's own line:\n%s", data)
	}
	t.Logf("dropped %d bytes while the disk was full", dropped)
}

func TestFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.log")
	appendLines := func(name string, ls ...string) {
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, l := range ls {
			f.WriteString(l)
		}
	}
	appendLines(path, "old 1\n", "old 2\n")
	_, pos, err := Tail(path, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var got []string
	done := make(chan error, 1)
	go func() {
		done <- Follow(ctx, path, pos, func(l string) error {
			mu.Lock()
			got = append(got, l)
			mu.Unlock()
			return nil
		})
	}()
	have := func(n int) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= n }
	}
	appendLines(path, "new 1\n", "new ")
	testkit.WaitFor(t, 5*time.Second, "the first new line", have(1))
	appendLines(path, "2\n")
	testkit.WaitFor(t, 5*time.Second, "the second new line", have(2))
	// Rotated: the rest of the old file, then the new one from its start.
	appendLines(path, "new 3\n")
	if err := os.Rename(path, OldFile(path, 1)); err != nil {
		t.Fatal(err)
	}
	appendLines(path, "rotated 1\n")
	testkit.WaitFor(t, 5*time.Second, "the lines of the new file", have(4))
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if want := "new 1,new 2,new 3,rotated 1"; strings.Join(got, ",") != want {
		t.Errorf("followed %q, want %q", got, want)
	}
}

// TestLogOptionsFollow: a Log that finds the log process of another rotation (its
// configuration changed) has it rotate as it says from then on.
func TestLogOptionsFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.log")
	l := open(t, Options{Path: path, MaxSize: 10 << 20, Keep: 5})
	w := startWriter(t, l, `exec sleep 60`) // holds the log process
	l2 := open(t, Options{Path: path, MaxSize: MinMaxSize, Keep: 1})
	if l2.child != nil {
		t.Fatal("a second log process was started")
	}
	// About 240 KB: the file is rotated before a write once it is past its size, and one
	// write is at most a pipe's worth (64 KiB), so this is past MinMaxSize at a write's start
	// at least once, however the reads fall.
	w2 := startWriter(t, l2, `i=0; while [ $i -lt 6000 ]; do echo "line $i of 40 bytes or so, to rotate"; i=$((i+1)); done`)
	w2.Wait(t, 10*time.Second)
	waitFile(t, path, "line 5999 of")
	if _, err := os.Stat(OldFile(path, 1)); err != nil {
		t.Errorf("not rotated at the new log_max_size: %v", err)
	}
	if _, err := os.Stat(OldFile(path, 2)); err == nil {
		t.Error("more old files than the new log_keep (1)")
	}
	w.Signal(t, syscall.SIGKILL)
}
