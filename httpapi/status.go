package httpapi

import (
	"time"

	"github.com/shmmon/shmmon/fleet"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/proctab"
	"github.com/shmmon/shmmon/shmobj"
)

// Status is the body of /status. Its JSON is stable: fields are only ever added.
type Status struct {
	Time    time.Time       `json:"time"`              // when it was taken
	Workers []Worker        `json:"workers"`           // every configured worker, by name
	Proctab []ProctabRecord `json:"proctab,omitempty"` // the swept process table's records, when there is one
	// ProctabError says why the process table could not be read, when it could not.
	ProctabError string `json:"proctab_error,omitempty"`
}

// Worker is one worker in /status: its status record as read from its object, and the
// fleet's books.
type Worker struct {
	Name       string   `json:"name"`
	Kind       string   `json:"kind"` // how beats arrive: shm, notify or socket
	Supervised bool     `json:"supervised"`
	Command    []string `json:"command,omitempty"` // a supervised worker's argv

	// From the object (see package shmobj).
	Pid          int64      `json:"pid"`                       // the watched pid, else the worker's own; 0 = unknown
	WorkerPid    int64      `json:"worker_pid"`                // as the worker wrote it; 0 = unknown
	MonitorPid   int64      `json:"monitor_pid"`               // the monitor that wrote the record
	State        string     `json:"state"`                     // unknown, waiting, ok, stalled, abnormal, killed, exited
	Seq          uint64     `json:"seq"`                       // the heartbeat sequence now
	LastSeq      uint64     `json:"last_seq"`                  // the sequence at the last check
	Stalls       uint32     `json:"stalls"`                    // consecutive stalls
	Threshold    uint32     `json:"threshold"`                 // stalls that make the worker hung
	IntervalSec  float64    `json:"interval_seconds"`          // check interval
	LastProgress *time.Time `json:"last_progress"`             // null before the first beat
	ProgressAge  *float64   `json:"last_progress_age_seconds"` // null before the first beat
	LastCheck    *time.Time `json:"last_check"`                // the record's last check; null before it
	RecKills     uint64     `json:"record_kills"`              // kills the record counts (since the object was published)
	RecRestarts  uint64     `json:"record_restarts"`           // restarts the record counts
	StatusText   string     `json:"status_text"`               // the worker's last STATUS= text; "" none
	Error        string     `json:"error,omitempty"`           // the object could not be read

	// The fleet's books (see fleet.WorkerStatus).
	Starts     uint64     `json:"starts"`
	Restarts   uint64     `json:"restarts"`
	Kills      uint64     `json:"kills"`
	LastExit   string     `json:"last_exit"`      // "exit 1", "signal killed", ...; "" none yet
	LastExitAt *time.Time `json:"last_exit_time"` // null before the first end
	Checking   bool       `json:"checking"`       // its loop checks the heartbeat now
	Late       bool       `json:"late"`           // checking, but past its deadline (see /healthz)
}

// ProctabRecord is one record of the swept System V process table in /status.
type ProctabRecord struct {
	Slot       int       `json:"slot"`
	Pid        int       `json:"pid"`
	Name       string    `json:"name"`
	TimeoutSec float64   `json:"timeout_seconds"`
	LastBeat   time.Time `json:"last_beat"`
	AgeSec     float64   `json:"age_seconds"`
	State      string    `json:"state"` // ok, abnormal (timed out) or exited (no such process)
}

// NewStatus takes the status of src at now.
func NewStatus(src Source, now time.Time) Status {
	st := Status{Time: now, Workers: []Worker{}}
	for _, ws := range src.Status() {
		st.Workers = append(st.Workers, newWorker(ws, now))
	}
	recs, err := src.ProctabRecords()
	if err != nil {
		st.ProctabError = err.Error()
	}
	for _, r := range recs {
		st.Proctab = append(st.Proctab, ProctabRecord{Slot: r.Slot, Pid: r.Pid, Name: r.Name, TimeoutSec: r.Timeout.Seconds(),
			LastBeat: r.Atime, AgeSec: now.Sub(r.Atime).Seconds(), State: proctabState(r, now).String()})
	}
	return st
}

func newWorker(ws fleet.WorkerStatus, now time.Time) Worker {
	s, r := ws.Snapshot, ws.Snapshot.Record
	w := Worker{Name: ws.Worker.Name, Kind: kind(ws), Supervised: ws.Worker.Supervised(), Command: ws.Worker.Command,
		Pid: pid(ws), WorkerPid: s.WorkerPid, MonitorPid: r.MonitorPid, State: state(ws).String(), Seq: s.Seq,
		LastSeq: r.LastSeq, Stalls: r.Stalls, Threshold: r.Threshold, IntervalSec: r.Interval.Seconds(),
		RecKills: r.Kills, RecRestarts: r.Restarts, StatusText: s.StatusText,
		Starts: ws.Starts, Restarts: ws.Restarts, Kills: ws.Kills, LastExit: ws.LastExit,
		Checking: ws.Checking, Late: ws.Late(now)}
	if ws.Err != nil {
		w.Error = ws.Err.Error()
	}
	if r.LastProgress != 0 {
		at := timeNs(r.LastProgress)
		age := now.Sub(at).Seconds()
		w.LastProgress, w.ProgressAge = &at, &age
	}
	if r.LastCheck != 0 {
		at := timeNs(r.LastCheck)
		w.LastCheck = &at
	}
	if !ws.LastExitAt.IsZero() {
		at := ws.LastExitAt
		w.LastExitAt = &at
	}
	return w
}

// kind is how the worker's beats arrive, from its record: shm when it has none yet.
func kind(ws fleet.WorkerStatus) string {
	if ws.Snapshot.HasRecord {
		return ws.Snapshot.Record.Kind.String()
	}
	return shmobj.KindShm.String()
}

// state is the worker's state from its record; unknown when it has none.
func state(ws fleet.WorkerStatus) shmobj.State {
	if ws.Snapshot.HasRecord {
		return ws.Snapshot.Record.State
	}
	return shmobj.StateUnknown
}

// pid is the worker's pid: the watched one, else the one it wrote.
func pid(ws fleet.WorkerStatus) int64 {
	if p := ws.Snapshot.Record.WatchedPid; p != 0 {
		return p
	}
	return ws.Snapshot.WorkerPid
}

// up reports whether the worker runs and is judged alive.
func up(st shmobj.State) bool {
	return st == shmobj.StateWaiting || st == shmobj.StateOK || st == shmobj.StateStalled
}

// proctabState maps a process table record to the states of a status record: ok, abnormal
// (its heartbeat timed out) or exited (its process is gone).
func proctabState(r proctab.Record, now time.Time) shmobj.State {
	switch {
	case !proc.Alive(r.Pid):
		return shmobj.StateExited
	case r.TimedOut(now):
		return shmobj.StateAbnormal
	}
	return shmobj.StateOK
}

// timeNs converts Unix nanoseconds to a time.
func timeNs(ns int64) time.Time { return time.Unix(0, ns) }
