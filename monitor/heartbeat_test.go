package monitor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
)

// testHeartbeat publishes the heartbeat of an object of the test's own with opts at now; it is
// closed and the object removed when the test ends.
func testHeartbeat(t *testing.T, opts Options, now time.Time) (name string, h *Heartbeat) {
	t.Helper()
	name = testkit.Name(t, "shmmon-hb")
	t.Cleanup(func() { shmobj.Remove(name) })
	h, err := publish(name, opts, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(true) })
	return name, h
}

// TestCheckWritesRecord follows the status record through progress, stalls and a verdict.
func TestCheckWritesRecord(t *testing.T) {
	start := time.Now()
	name, h := testHeartbeat(t, Options{Config: Config{Interval: time.Second, Stalls: 2}, WatchedPid: 77}, start)
	w, err := shmobj.Attach(name)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	read := func() shmobj.Record {
		t.Helper()
		snap, err := shmobj.Read(name)
		if err != nil || !snap.HasRecord {
			t.Fatalf("Read = %+v, %v", snap, err)
		}
		return snap.Record
	}
	if r := read(); r.State != shmobj.StateWaiting || r.WatchedPid != 77 || r.Threshold != 2 || r.Interval != time.Second {
		t.Fatalf("fresh record %+v", r)
	}

	steps := []struct {
		beats  int
		want   Result
		state  shmobj.State
		stalls uint32
		seq    uint64
	}{
		{2, OK, shmobj.StateOK, 0, 2},
		{0, Stalled, shmobj.StateStalled, 1, 2},
		{0, Abnormal, shmobj.StateAbnormal, 2, 2},
		{1, OK, shmobj.StateOK, 0, 3},
	}
	now := start
	for i, s := range steps {
		for range s.beats {
			w.Beat()
		}
		now = now.Add(time.Second)
		r, err := h.Check(now)
		if err != nil || r != s.want {
			t.Fatalf("step %d: Check = %v, %v, want %v", i, r, err, s.want)
		}
		rec := read()
		if rec.State != s.state || rec.Stalls != s.stalls || rec.LastSeq != s.seq || rec.LastCheck != now.UnixNano() {
			t.Fatalf("step %d: record %+v, want state %v stalls %d seq %d check %d", i, rec, s.state, s.stalls, s.seq, now.UnixNano())
		}
		if s.want == OK && rec.LastProgress != now.UnixNano() {
			t.Fatalf("step %d: last progress %d, want %d", i, rec.LastProgress, now.UnixNano())
		}
	}

	// Counters survive a re-publication; the rules start over.
	h.seg.AddKill()
	if err := h.republish(now); err != nil {
		t.Fatal(err)
	}
	if rec := read(); rec.Kills != 1 || rec.State != shmobj.StateWaiting || rec.LastSeq != 0 {
		t.Errorf("after Republish: %+v", rec)
	}
	if retired, _ := w.Retired(); !retired {
		t.Error("the replaced object is not marked retired")
	}
	if (&h.chk).Stalls() != 0 || (&h.chk).Beaten() {
		t.Error("rules did not start over")
	}
}

func TestCheckFault(t *testing.T) {
	name, h := testHeartbeat(t, Options{}, time.Now())
	o, err := shmobj.Open(name, shmobj.OpenOnly, 0)
	if err != nil {
		t.Fatal(err)
	}
	o.Truncate(0)
	o.Close()
	r, err := h.Check(time.Now())
	if !errors.Is(err, shmobj.ErrFault) || r != OK {
		t.Fatalf("Check of a truncated object = %v, %v, want OK and ErrFault", r, err)
	}
	if err := h.Verify(); !errors.Is(err, shmobj.ErrTruncated) {
		t.Errorf("Verify = %v, want ErrTruncated", err)
	}
	if err := h.republish(time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Check(time.Now()); err != nil {
		t.Errorf("Check after Republish: %v", err)
	}
}

// TestHeartbeatNotifyAdjustments: a new interval and watched pid reach the status record; a
// trigger makes the worker abnormal at once, logged and emitted once.
func TestHeartbeatNotifyAdjustments(t *testing.T) {
	name := fmt.Sprintf("shmmon-hb-test-%d-notify", os.Getpid())
	defer shmobj.Remove(name)
	var events []Event
	var logs strings.Builder
	start := time.Now()
	w, _, err := OpenWorker(name, Options{Config: Config{Interval: time.Second}, WatchedPid: 77,
		OnEvent: func(e Event) { events = append(events, e) }}, WorkerOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, start)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(true)
	h := &w.h
	if err := w.SetInterval(0, start); err == nil {
		t.Error("SetInterval(0) accepted")
	}
	if err := w.SetInterval(250*time.Millisecond, start); err != nil {
		t.Fatal(err)
	}
	w.SetMain(78)
	snap, _ := shmobj.Read(name)
	if snap.Record.Interval != 250*time.Millisecond || snap.Record.WatchedPid != 78 || h.pid() != 78 {
		t.Errorf("record interval %v watched %d, pid %d; want 250ms and 78", snap.Record.Interval, snap.Record.WatchedPid, h.pid())
	}
	w.Trigger(start)
	w.Trigger(start)
	snap, _ = shmobj.Read(name)
	if snap.Record.State != shmobj.StateAbnormal || (&h.chk).State() != shmobj.StateAbnormal {
		t.Errorf("state after a trigger: record %v, checker %v", snap.Record.State, (&h.chk).State())
	}
	if n := strings.Count(logs.String(), "state=abnormal"); n != 1 {
		t.Errorf("%d state lines for two triggers, want 1:\n%s", n, logs.String())
	}
	if len(events) != 1 || events[0].Kind != EventAbnormal || events[0].Detail != "trigger" || events[0].Pid != 78 {
		t.Errorf("events %+v, want one abnormal (trigger) of pid 78", events)
	}
}

// TestVerifyMode: a chmod of the object under the monitor is noticed (a worker started next,
// as another user, could not open it) and Step re-publishes it with its mode.
func TestVerifyMode(t *testing.T) {
	name, h := testHeartbeat(t, Options{Mode: 0o660}, time.Now())
	if err := h.Verify(); err != nil {
		t.Fatalf("Verify of a fresh object = %v", err)
	}
	if err := os.Chmod(shmobj.Path(name), 0); err != nil {
		t.Fatal(err)
	}
	if err := h.Verify(); !errors.Is(err, shmobj.ErrModeChanged) {
		t.Fatalf("Verify after chmod 0 = %v, want ErrModeChanged", err)
	}
	var logs strings.Builder
	h.step(time.Now(), slog.New(slog.NewTextHandler(&logs, nil)))
	if !strings.Contains(logs.String(), "event=object-mode-changed") {
		t.Errorf("Step logged %q, want event=object-mode-changed", logs.String())
	}
	fi, err := os.Stat(shmobj.Path(name))
	if err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("after Step: %v, %v; want the object re-published with mode 0660", fi.Mode(), err)
	}
	if err := h.Verify(); err != nil {
		t.Errorf("Verify after the re-publish = %v", err)
	}
}

// TestCheckOwner: an object is refused as watched by another shmmon only when its record
// names a live process of the same program that maps this very object, and the object is
// this user's or root's: anyone who may write the object can write any pid into its record.
func TestCheckOwner(t *testing.T) {
	tests := []struct {
		name    string
		maps    bool // the process named maps the object
		another bool // the object belongs to another user
		refused bool
	}{
		{"named process maps it", true, false, true},
		{"named process does not map it", false, false, false},
		{"another user owns it", true, true, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.another && os.Geteuid() != 0 {
				t.Skip("giving an object to another user needs root")
			}
			name := fmt.Sprintf("shmmon-owner-test-%d-%d", os.Getpid(), i)
			t.Cleanup(func() { shmobj.Remove(name) })
			seg, err := shmobj.Publish(name, shmobj.PublishOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer seg.Close()
			target := name // what the named process maps
			if !tt.maps {
				target = name + "-other"
				other, err := shmobj.Publish(target, shmobj.PublishOptions{})
				if err != nil {
					t.Fatal(err)
				}
				other.Close()
				t.Cleanup(func() { shmobj.Remove(target) })
			}
			cmd, _ := startChild(t, "map", "SHMMON_TEST_OBJECT="+target)
			waitMapped(t, cmd.Process.Pid, target)
			setMonitorPid(t, name, seg.Size(), cmd.Process.Pid)
			if tt.another {
				if err := os.Chown(shmobj.Path(name), 65534, 65534); err != nil {
					t.Fatal(err)
				}
			}
			h, err := publish(name, Options{}, time.Now())
			if tt.refused {
				if !errors.Is(err, ErrWatched) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d watches", cmd.Process.Pid)) {
					t.Errorf("Publish = %v, want ErrWatched naming pid %d", err, cmd.Process.Pid)
				}
				return
			}
			if err != nil {
				t.Fatalf("Publish = %v, want the stale object taken over", err)
			}
			h.Close(true)
		})
	}
}

// waitMapped waits until the process pid maps the object name.
func waitMapped(t *testing.T, pid int, name string) {
	t.Helper()
	_, fi, err := shmobj.Inspect(name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := proc.Open(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ok, err := p.MapsFile(fi.ID.Dev, fi.ID.Ino); ok {
			return
		} else if err != nil || time.Now().After(deadline) {
			t.Fatalf("pid %d does not map %s: %v", pid, name, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// setMonitorPid writes pid as the monitor of the object name (of size bytes) into its file,
// as anyone who may write the object can.
func setMonitorPid(t *testing.T, name string, size, pid int) {
	t.Helper()
	f, err := os.OpenFile(shmobj.Path(name), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(binary.NativeEndian.AppendUint64(nil, uint64(pid)), int64(size/2+shmobj.RecMonitorPid)); err != nil {
		t.Fatal(err)
	}
}
