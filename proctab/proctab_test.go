//go:build linux

package proctab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
)

// TestMain lets the test binary be a helper process: PROCTAB_TEST=sleep blocks;
// PROCTAB_TEST=attach-spin KEY SLOTS attaches it and keeps a core busy for a minute;
// PROCTAB_TEST=hold-lock KEY takes the lock of the table with that key, prints "locked" and
// blocks; PROCTAB_TEST=attach KEY SLOTS attaches that table (a client of it), prints
// "attached" and blocks; PROCTAB_TEST=attach-ro KEY attaches its segment read-only.
func TestMain(m *testing.M) {
	mode, arg, _ := strings.Cut(os.Getenv("PROCTAB_TEST"), " ")
	switch mode {
	case "":
		code := m.Run()
		testkit.Cleanup()
		os.Exit(code)
	case "sleep":
		time.Sleep(5 * time.Minute)
	case "exit":
		os.Exit(0)
	case "hold-lock":
		key, _ := strconv.Atoi(arg)
		t, err := Attach(Options{Key: key, SemKey: key, Slots: 4})
		if err != nil {
			os.Exit(3)
		}
		semTake(t.semid, time.Hour)
		os.Stdout.WriteString("locked\n")
		time.Sleep(5 * time.Minute)
	case "attach", "attach-ro", "attach-spin":
		key, slots, _ := strings.Cut(arg, " ")
		k, _ := strconv.Atoi(key)
		n, _ := strconv.Atoi(slots)
		if err := attachHelper(k, n, mode == "attach-ro"); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(3)
		}
		os.Stdout.WriteString("attached\n")
		if mode == "attach-spin" {
			time.AfterFunc(time.Minute, func() { os.Exit(1) })
			for n := 0; ; n++ {
			}
		}
		time.Sleep(5 * time.Minute)
	}
	os.Exit(2)
}

var keySeq atomic.Int32

// testTable opens a table with a key of its own (never the default) and removes it at the
// end of the test.
func testTable(t *testing.T, slots int) *Table {
	t.Helper()
	key := 0x7e000000 | (os.Getpid()&0xffff)<<8 | int(keySeq.Add(1))
	tab, err := Open(Options{Key: key, SemKey: key, Slots: slots})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tab.Remove(); err != nil {
			t.Errorf("removing the table: %v", err)
		}
		tab.Close()
	})
	return tab
}

// child starts the test binary in mode and kills and reaps it when the test ends.
func child(t *testing.T, mode string) *exec.Cmd {
	t.Helper()
	return startChild(t, exec.Command(os.Args[0]), mode)
}

// startChild starts cmd, the test binary, in mode; a mode that attaches a table has
// attached it when startChild returns. The child is killed and reaped when the test ends.
func startChild(t *testing.T, cmd *exec.Cmd, mode string) *exec.Cmd {
	t.Helper()
	cmd.Env = append(os.Environ(), "PROCTAB_TEST="+mode)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if strings.HasPrefix(mode, "attach") {
		if line, _ := bufio.NewReader(out).ReadString('\n'); line != "attached\n" {
			t.Fatalf("child %q said %q", mode, line)
		}
	}
	return cmd
}

// client starts a child that has tab attached.
func client(t *testing.T, tab *Table) *exec.Cmd {
	t.Helper()
	return child(t, fmt.Sprintf("attach %d %d", tab.opts.Key, tab.opts.Slots))
}

func TestLayout(t *testing.T) {
	var r record
	if unsafe.Sizeof(r) != RecordSize {
		t.Errorf("sizeof(record) = %d, want %d", unsafe.Sizeof(r), RecordSize)
	}
	for _, o := range []struct {
		field      string
		have, want uintptr
	}{
		{"pid", unsafe.Offsetof(r.pid), OffPid},
		{"name", unsafe.Offsetof(r.name), OffName},
		{"timeout", unsafe.Offsetof(r.timeout), OffTimeout},
		{"atime", unsafe.Offsetof(r.atime), OffAtime},
	} {
		if o.have != o.want {
			t.Errorf("offset of %s = %d, want %d", o.field, o.have, o.want)
		}
	}
}

func TestRegister(t *testing.T) {
	tab := testTable(t, 8)
	s, err := tab.Register("go-client", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := tab.List()
	if len(recs) != 1 || recs[0].Pid != os.Getpid() || recs[0].Name != "go-client" || recs[0].Timeout != 2*time.Second || time.Since(recs[0].Atime) > 2*time.Second {
		t.Fatalf("List = %+v", recs)
	}
	// Registering again reuses the record of this pid.
	again, err := tab.Register("renamed", 3*time.Second)
	if err != nil || again.Index() != s.Index() {
		t.Fatalf("second Register: slot %d, %v; want slot %d", again.Index(), err, s.Index())
	}
	tab.recs[s.Index()].atime.Store(1)
	s.Update()
	if recs, _ := tab.List(); len(recs) != 1 || recs[0].Name != "renamed" || time.Since(recs[0].Atime) > 2*time.Second {
		t.Errorf("after Update: %+v", recs)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if recs, _ := tab.List(); len(recs) != 0 {
		t.Errorf("after Close: %+v", recs)
	}
	for _, bad := range []struct {
		name    string
		timeout time.Duration
	}{{"", time.Second}, {strings.Repeat("n", 51), time.Second}, {"a\x00b", time.Second}, {"ok", 0}, {"ok", 500 * time.Millisecond}} {
		if _, err := tab.Register(bad.name, bad.timeout); err == nil {
			t.Errorf("Register(%q, %v) succeeded", bad.name, bad.timeout)
		}
	}
	// The longest name fits with its NUL.
	long := strings.Repeat("n", MaxNameLen)
	if s, err := tab.Register(long, time.Second); err != nil {
		t.Error(err)
	} else if recs, _ := tab.List(); recs[0].Name != long {
		t.Errorf("name %q, want %q", recs[0].Name, long)
	} else {
		s.Close()
	}
}

func TestFull(t *testing.T) {
	tab := testTable(t, 2)
	a, b := child(t, "sleep"), child(t, "sleep")
	for _, c := range []*exec.Cmd{a, b} {
		if _, err := tab.put(c.Process.Pid, "x", time.Minute, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	_, err := tab.Register("third", time.Minute)
	if !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "2 slots") {
		t.Errorf("Register in a full table = %v, want ErrFull naming the size", err)
	}
}

func TestAttachMissing(t *testing.T) {
	if _, err := Attach(Options{Key: 0x7e7e7e01, SemKey: 0x7e7e7e01}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Attach of a missing table = %v, want fs.ErrNotExist", err)
	}
}

func TestSweep(t *testing.T) {
	tab := testTable(t, 16)
	healthy, hung, reused := client(t, tab), client(t, tab), client(t, tab)
	gone := exec.Command(os.Args[0])
	gone.Env = append(os.Environ(), "PROCTAB_TEST=exit")
	gone.Run()

	// Let the children's start times fall clearly before the heartbeats written now.
	time.Sleep(1100 * time.Millisecond)
	now := time.Now()
	put := func(pid int, name string, timeout time.Duration, atime time.Time) {
		t.Helper()
		if _, err := tab.put(pid, name, timeout, atime); err != nil {
			t.Fatal(err)
		}
	}
	put(healthy.Process.Pid, "healthy", time.Minute, now)
	put(hung.Process.Pid, "hung", time.Second, now.Add(-time.Second))   // after its start
	put(reused.Process.Pid, "reused", time.Second, now.Add(-time.Hour)) // heartbeat older than the process
	put(gone.Process.Pid, "gone", time.Minute, now)
	put(1, "init", time.Second, now.Add(-time.Hour))
	put(os.Getpid(), "self", time.Second, now.Add(-time.Hour))
	tab.recs[15].pid.Store(0) // a free slot is skipped

	// hung's heartbeat times out: more than its timeout in whole seconds.
	time.Sleep(1100 * time.Millisecond)
	var logs bytes.Buffer
	res, err := tab.Sweep(context.Background(), SweepOptions{KillAfter: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if res != (SweepResult{Checked: 6, Cleared: 4, Refused: 2, Killed: 1}) {
		t.Errorf("Sweep = %+v, want checked 6, cleared 4 (2 refused), killed 1\n%s", res, &logs)
	}
	recs, _ := tab.List()
	if len(recs) != 1 || recs[0].Name != "healthy" {
		t.Errorf("records left: %+v, want only the healthy one", recs)
	}
	hungP, _ := proc.Open(hung.Process.Pid)
	if hungP == nil || !hungP.WaitExit(context.Background(), 5*time.Second) {
		t.Error("the hung process was not killed")
	}
	for _, c := range []*exec.Cmd{healthy, reused} {
		if !proc.Alive(c.Process.Pid) {
			t.Errorf("pid %d was killed", c.Process.Pid)
		}
	}
	for _, want := range []string{"pid reused", "process gone", "why=\"pid 1 or less", "why=\"it is this sweeper's own pid\""} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, &logs)
		}
	}
	// A second pass over the healthy table changes nothing.
	if res, _ := tab.Sweep(context.Background(), SweepOptions{Logger: slog.New(slog.DiscardHandler)}); res != (SweepResult{Checked: 1}) {
		t.Errorf("second Sweep = %+v", res)
	}
}

// TestLockReleasedWhenHolderDies: the holder of the lock is SIGKILLed; SEM_UNDO gives the
// lock back, and registering works.
func TestTimedOut(t *testing.T) {
	beat := time.Unix(100, 0) // the record says second 100: the beat was in [100, 101)
	for _, tc := range []struct {
		now  time.Time
		want bool
	}{
		{time.Unix(101, 0), false},           // could be a beat at 100.999: 1 ms old
		{time.Unix(101, 999_000_000), false}, // still possibly under 1 s
		{time.Unix(102, 0), true},            // at least 1 s old
		{time.Unix(100, 500_000_000), false},
	} {
		if got := (Record{Atime: beat, Timeout: time.Second}).TimedOut(tc.now); got != tc.want {
			t.Errorf("timeout 1s, atime 100, now %v: timed out %v, want %v", tc.now.Sub(beat), got, tc.want)
		}
	}
}

func TestLockReleasedWhenHolderDies(t *testing.T) {
	tab := testTable(t, 4)
	holder := exec.Command(os.Args[0])
	holder.Env = append(os.Environ(), "PROCTAB_TEST=hold-lock "+strconv.Itoa(tab.opts.Key))
	out, _ := holder.StdoutPipe()
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
		t.Fatalf("holder said %q", line)
	}
	done := make(chan error, 1)
	go func() { _, err := tab.Register("waiting", time.Minute); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("Register did not wait for the lock: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	holder.Process.Kill()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the lock was not released when its holder died")
	}
}
