package view

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/fleet"
	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/proctab"
	"github.com/shmmon/shmmon/shmobj"
)

// The field names of the JSON forms before they became one view: ls --json and inspect
// --json, and /status. Fields are only ever added: every one stays.
var (
	lsFields = []string{"name", "kind", "size", "seq", "worker_pid", "shmmon", "state", "monitor_pid",
		"monitor_alive", "watched_pid", "last_seq", "stalls", "threshold", "interval_seconds", "last_progress",
		"last_check", "last_progress_age_seconds", "retired", "kills", "restarts", "status_text"}
	statusFields = []string{"name", "kind", "supervised", "command", "pid", "worker_pid", "monitor_pid", "state",
		"seq", "last_seq", "stalls", "threshold", "interval_seconds", "last_progress", "last_progress_age_seconds",
		"last_check", "record_kills", "record_restarts", "status_text", "starts", "restarts", "kills", "last_exit",
		"last_exit_time", "checking", "late"}
	lsProctabFields     = []string{"slot", "pid", "name", "timeout_seconds", "atime", "age_seconds", "alive", "timed_out"}
	statusProctabFields = []string{"slot", "pid", "name", "timeout_seconds", "last_beat", "age_seconds", "state"}
)

func keys(t *testing.T, v any) []string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func checkFields(t *testing.T, what string, v any, want ...[]string) {
	t.Helper()
	have := keys(t, v)
	for _, w := range want {
		for _, k := range w {
			if !slices.Contains(have, k) {
				t.Errorf("%s has no field %q (fields are only ever added)", what, k)
			}
		}
	}
}

func snapshot(now time.Time) shmobj.Snapshot {
	return shmobj.Snapshot{Size: 4096, Seq: 9, WorkerPid: 42, HasRecord: true, Record: shmobj.Record{
		MonitorPid: int64(os.Getpid()), WatchedPid: 43, LastSeq: 9, LastProgress: now.Add(-time.Second).UnixNano(),
		LastCheck: now.UnixNano(), Interval: time.Second, Stalls: 1, Threshold: 3, State: shmobj.StateStalled,
		Kills: 2, Restarts: 3, Kind: shmobj.KindNotify}, StatusText: "busy"}
}

// TestObject: the view of an object has every field ls and inspect had, in the one
// vocabulary: the record's state, its counts, the watched pid as the pid.
func TestObject(t *testing.T) {
	now := time.Now()
	v := Object("w", snapshot(now), nil, now)
	checkFields(t, "the view of an object", v, lsFields, []string{"pid", "record_kills", "record_restarts"})
	if v.Serving != nil {
		t.Error("the view of an object has serve's fields")
	}
	if v.State != "stalled" || v.Kind != "notify" || v.Pid != 43 || v.Kills != 2 || v.RecKills != 2 || v.Restarts != 3 ||
		!v.MonitorAlive || v.ProgressAge == nil || *v.ProgressAge < 0.9 || v.StatusText != "busy" {
		t.Errorf("view %+v", v)
	}
	plain := Object("boost", shmobj.Snapshot{Size: 4096, Seq: 5}, nil, now)
	if plain.Shmmon || plain.State != "unknown" || plain.LastProgress != nil || plain.Pid != 0 {
		t.Errorf("the view of a plain Boost object: %+v", plain)
	}
}

// TestServed: a worker of serve's has every field /status had; its kills and restarts are
// serve's, record_kills and record_restarts the record's.
func TestServed(t *testing.T) {
	now := time.Now()
	ws := fleet.WorkerStatus{Worker: config.Worker{Name: "w", Command: []string{"prog"}}, Snapshot: snapshot(now),
		Books:    monitor.Books{Starts: 5, Restarts: 4, Kills: 1, LastExit: "exit 1", LastExitAt: now, Ready: true},
		Checking: true, Deadline: now.Add(time.Hour)}
	v := Served(ws, now)
	checkFields(t, "the view of a worker of serve's", v, statusFields, lsFields)
	if v.Kills != 1 || v.Restarts != 4 || v.RecKills != 2 || v.RecRestarts != 3 || !v.Supervised || v.Starts != 5 ||
		v.LastExitAt == nil || v.Late || !v.Checking || !v.Ready {
		t.Errorf("view %+v, serving %+v", v, *v.Serving)
	}
}

// TestServedWaiting: a worker waiting for its dependencies is in supervision "waiting", with
// their names; one that waits for nothing has no waiting_for.
func TestServedWaiting(t *testing.T) {
	now := time.Now()
	ws := fleet.WorkerStatus{Worker: config.Worker{Name: "w", Command: []string{"prog"}},
		Books: monitor.Books{Phase: monitor.Held}, WaitingFor: []string{"db", "cache (given up)"}}
	if v := Served(ws, now); v.Supervision != "waiting" || !slices.Equal(v.WaitingFor, ws.WaitingFor) {
		t.Errorf("waiting: supervision %q, waiting for %q", v.Supervision, v.WaitingFor)
	}
	ws.WaitingFor = nil
	if v := Served(ws, now); v.Supervision != "stopped" || v.WaitingFor != nil {
		t.Errorf("held by a control stop: supervision %q, waiting for %q", v.Supervision, v.WaitingFor)
	}
}

// TestRecord: a process-table record has the fields of both its old forms, and one
// vocabulary of states: ok, abnormal (timed out), exited (no such process).
func TestRecord(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name string
		r    proctab.Record
		want string
	}{
		{"alive", proctab.Record{Pid: os.Getpid(), Timeout: time.Minute, Atime: now}, "ok"},
		{"timed out", proctab.Record{Pid: os.Getpid(), Timeout: time.Second, Atime: now.Add(-time.Minute)}, "abnormal"},
		{"gone", proctab.Record{Pid: 1<<22 + 1, Timeout: time.Minute, Atime: now}, "exited"},
	} {
		p := Record(tc.r, now)
		if p.State != tc.want {
			t.Errorf("%s: state %q, want %q", tc.name, p.State, tc.want)
		}
		checkFields(t, "a record", p, lsProctabFields, statusProctabFields)
		if w := OfRecord(p); w.Kind != "proctab" || w.State != tc.want || w.Proctab == nil {
			t.Errorf("%s: as a worker: %+v", tc.name, w)
		}
	}
}
