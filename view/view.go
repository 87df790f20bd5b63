// Package view is the one view of a worker that shmmon prints: `shmmon ls --json`,
// `shmmon inspect --json` and serve's /status all show [Worker] values, so a field means the
// same everywhere, and states and counts have one vocabulary:
//
//   - state is the status record's: unknown, waiting, ok, stalled, abnormal, killed,
//     exited, running, starved (see shmobj.State); a process-table record is ok, abnormal (its
//     heartbeat timed out) or exited (its process is gone).
//   - kills and restarts are the counts of whoever knows most: serve's own (since it began
//     supervising the worker) in /status, the record's (since the object was published)
//     otherwise; record_kills and record_restarts are always the record's.
//   - times are RFC 3339 with nanoseconds, null when there is none yet.
//
// The JSON forms are stable: fields are only ever added. What only serve knows (whether it
// supervises the worker, its starts, how its last run ended, whether its loop is late) is in
// /status only ([Served]).
//
// It also holds what every printer of workers shares: the ranking of states, worst first,
// that `shmmon top` and serve's status page sort by ([Worst], [Rank]), and the one way a name
// read from /dev/shm is printed in a terminal ([Shown]).
package view

import (
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shmmon/shmmon/cgroup"
	"github.com/shmmon/shmmon/fleet"
	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/proctab"
	"github.com/shmmon/shmmon/shmobj"
)

// Worker is one worker (or object) as shmmon shows it.
type Worker struct {
	Name string `json:"name"`
	// Kind is how its beats arrive: shm, notify, socket, proctab (a program judged by its
	// process-table record, or a record of the table itself), none.
	Kind    string   `json:"kind"`
	Proctab *Proctab `json:"proctab,omitempty"` // a record of the System V process table (ls)

	// From the object (see package shmobj).
	Size         int64      `json:"size"`
	Seq          uint64     `json:"seq"`        // the heartbeat sequence now
	WorkerPid    int64      `json:"worker_pid"` // as the worker wrote it; 0 = unknown
	Shmmon       bool       `json:"shmmon"`     // the object holds a shmmon status record
	State        string     `json:"state"`
	Pid          int64      `json:"pid"`         // the watched pid, else the worker's own; 0 = unknown
	MonitorPid   int64      `json:"monitor_pid"` // the monitor that wrote the record
	MonitorAlive bool       `json:"monitor_alive"`
	WatchedPid   int64      `json:"watched_pid"`
	LastSeq      uint64     `json:"last_seq"`  // the sequence at the last check
	Stalls       uint32     `json:"stalls"`    // consecutive stalls
	Threshold    uint32     `json:"threshold"` // stalls that make the worker hung
	IntervalSec  float64    `json:"interval_seconds"`
	LastProgress *time.Time `json:"last_progress"`             // null before the first beat
	ProgressAge  *float64   `json:"last_progress_age_seconds"` // null before the first beat
	LastCheck    *time.Time `json:"last_check"`                // null before the first check
	Retired      bool       `json:"retired"`
	Kills        uint64     `json:"kills"`
	Restarts     uint64     `json:"restarts"`
	RecKills     uint64     `json:"record_kills"`
	RecRestarts  uint64     `json:"record_restarts"`
	StatusText   string     `json:"status_text"` // the worker's last STATUS= text; "" none
	Error        string     `json:"error,omitempty"`

	// Cgroup is the cgroup v2 of the worker's process (/proc/PID/cgroup: "/shmmon/db" for a
	// worker serve or run gave one), absent when unknown. MemoryBytes is the resident memory
	// of its processes: measured now by ls and inspect (its cgroup's, else its tree's), at the
	// last limit check in /status (absent for a worker without limits).
	Cgroup      string `json:"cgroup,omitempty"`
	MemoryBytes *int64 `json:"memory_bytes,omitempty"`

	*Serving // what serve knows: /status only
}

// Serving is what only serve knows of a worker (see [fleet.WorkerStatus]).
type Serving struct {
	Supervised bool       `json:"supervised"`
	Command    []string   `json:"command,omitempty"` // a supervised worker's argv
	Starts     uint64     `json:"starts"`
	LastExit   string     `json:"last_exit"`      // "exit 1", "signal killed", ...; "" none yet
	LastExitAt *time.Time `json:"last_exit_time"` // null before the first end
	Checking   bool       `json:"checking"`       // its loop checks the heartbeat now
	Late       bool       `json:"late"`           // checking, but past its deadline (see /healthz)
	Ready      bool       `json:"ready"`          // its run is ready (READY=1, a first beat; see /readyz)
	// DownForGood: nothing runs it again until someone acts (it gave up, finished after a
	// failed run, was stopped by ctl; see /healthz/NAME).
	DownForGood bool `json:"down_for_good"`

	// The worker's resource limits (0: none), what it used at its last limit check (CPU in
	// cores over stalls intervals; null before it is known), and the runs stopped over a
	// limit and the OOM kills in its cgroup.
	MemoryMax  int64    `json:"memory_max"`
	CPUMax     float64  `json:"cpu_max"`
	CPURatio   *float64 `json:"cpu_ratio"`
	LimitKills uint64   `json:"limit_kills"`
	OOMKills   uint64   `json:"oom_kills"`
	// StarvedSec is how long, in all, the worker's stalls were not counted because it waited
	// for a CPU (the starvation rule, package sched); LastStarved is what the rule found of the
	// last such stall (run delay, CPU, threads, pressure), absent before the first.
	StarvedSec  float64 `json:"starved_seconds"`
	LastStarved string  `json:"last_starved,omitempty"`
	// LastKillEvidence is what the process was doing at the last hang verdict, before the
	// kill (the event=evidence line: each thread's state, wait channel, system call, CPU and
	// run delay over the stall, kernel stack; resident memory; sequence), at
	// LastKillEvidenceAt; absent before the first.
	LastKillEvidence   string     `json:"last_kill_evidence,omitempty"`
	LastKillEvidenceAt *time.Time `json:"last_kill_evidence_time,omitempty"`
	// Supervision is where serve has the worker in its life ([Supervision]).
	Supervision  string     `json:"supervision"`
	BackoffUntil *time.Time `json:"backoff_until,omitempty"` // when a worker in backoff is started again
	Log          string     `json:"log,omitempty"`           // the program's log file; absent without one
	LogDropped   int64      `json:"log_dropped_bytes"`       // bytes of its output the log file dropped
	LogError     string     `json:"log_error,omitempty"`     // why the log file cannot be written now
	// WaitingFor are the workers a worker in supervision "waiting" waits for (its after and
	// binds_to not ready yet; "db (given up)" for one that will not be without an operator);
	// absent otherwise.
	WaitingFor []string `json:"waiting_for,omitempty"`
}

// Supervision names where serve has a worker in its life, from its phase: "running" (its
// program runs, or its process is watched), "stopping", "stopped" (by shmmon ctl stop, until
// ctl start), "backoff" (waiting to be restarted, until backoff_until), "gave-up" (it failed
// too often), "finished" (its restart policy does not start it again), "idle" (a watched
// worker waiting for its process), "down" (the moment between a run's end and what follows),
// "waiting" (for its dependencies: [Serving].WaitingFor; [Served] says so, not the phase).
func Supervision(p monitor.Phase) string {
	if p == monitor.Held {
		return "stopped"
	}
	return p.String()
}

// Proctab is one record of a System V process table.
type Proctab struct {
	Slot       int       `json:"slot"`
	Pid        int       `json:"pid"`
	Name       string    `json:"name"`
	TimeoutSec float64   `json:"timeout_seconds"`
	Atime      time.Time `json:"atime"`     // its last heartbeat
	LastBeat   time.Time `json:"last_beat"` // the same
	AgeSec     float64   `json:"age_seconds"`
	Alive      bool      `json:"alive"`     // its process runs
	TimedOut   bool      `json:"timed_out"` // its heartbeat is older than its timeout
	State      string    `json:"state"`     // ok, abnormal (timed out) or exited (no such process)
}

// Object returns the view of the object name as read into s (err: why it could not be read)
// at now, with nothing of serve's.
func Object(name string, s shmobj.Snapshot, err error, now time.Time) Worker {
	v := Worker{Name: name, Kind: shmobj.KindShm.String(), Size: s.Size, Seq: s.Seq, WorkerPid: s.WorkerPid,
		Pid: s.WorkerPid, Shmmon: s.HasRecord, State: shmobj.StateUnknown.String()}
	if err != nil {
		v.Error = err.Error()
	}
	if !s.HasRecord {
		return v
	}
	r := s.Record
	v.Kind, v.StatusText, v.State = r.Kind.String(), s.StatusText, r.State.String()
	v.MonitorPid, v.WatchedPid = r.MonitorPid, r.WatchedPid
	v.MonitorAlive = proc.Alive(int(r.MonitorPid))
	if r.WatchedPid != 0 {
		v.Pid = r.WatchedPid
	}
	if v.MonitorAlive && v.Pid > 1 {
		v.Cgroup, _ = cgroup.Of(int(v.Pid))
	}
	v.LastSeq, v.Stalls, v.Threshold = r.LastSeq, r.Stalls, r.Threshold
	v.IntervalSec = r.Interval.Seconds()
	v.Retired = r.Retired
	v.Kills, v.Restarts, v.RecKills, v.RecRestarts = r.Kills, r.Restarts, r.Kills, r.Restarts
	if r.LastProgress != 0 {
		at := time.Unix(0, r.LastProgress)
		age := now.Sub(at).Seconds()
		v.LastProgress, v.ProgressAge = &at, &age
	}
	if r.LastCheck != 0 {
		at := time.Unix(0, r.LastCheck)
		v.LastCheck = &at
	}
	return v
}

// Measured returns v with MemoryBytes measured now: the resident memory of its process's tree
// (proc.TreeUsage), when its monitor is alive and its pid known. ls and inspect show it.
func Measured(v Worker) Worker {
	if v.MonitorAlive && v.Pid > 1 {
		if u, err := proc.TreeUsage(int(v.Pid)); err == nil {
			v.MemoryBytes = &u.Memory
		}
	}
	return v
}

// Served returns the view of a worker of serve's, at now: its object, and serve's books.
func Served(ws fleet.WorkerStatus, now time.Time) Worker {
	v := Object(ws.Worker.Name, ws.Snapshot, ws.Err, now)
	v.Kills, v.Restarts = ws.Kills, ws.Restarts
	v.Serving = &Serving{Supervised: ws.Worker.Supervised(), Command: ws.Worker.Command, Starts: ws.Starts,
		LastExit: ws.LastExit, Checking: ws.Checking, Late: ws.Late(now), Ready: ws.Ready, DownForGood: ws.DownForGood(),
		Supervision: Supervision(ws.Phase), Log: ws.Worker.Log, LogDropped: ws.LogDropped, LogError: ws.LogError,
		MemoryMax: int64(ws.Worker.MemoryMax), CPUMax: ws.Worker.CPUMax.Ratio(), LimitKills: ws.LimitKills, OOMKills: ws.OOMKills,
		StarvedSec: ws.Starved.Seconds()}
	if ws.WaitingFor != nil {
		v.Supervision, v.WaitingFor = "waiting", ws.WaitingFor
	}
	if ws.Evidence != "" {
		at := ws.EvidenceAt
		v.LastKillEvidence, v.LastKillEvidenceAt = ws.Evidence, &at
	}
	if ws.Starvation.Why != "" {
		v.LastStarved = ws.Starvation.At.UTC().Format(time.RFC3339) + ": " + ws.Starvation.Detail()
	}
	// serve's own facts win over what Object read from /proc: a supervised run's cgroup (none:
	// its process group only), the last measure.
	if ws.Worker.Supervised() {
		v.Cgroup = ws.Cgroup
	}
	if !ws.Measured.IsZero() {
		mem := ws.Memory
		v.MemoryBytes = &mem
	}
	if ws.CPUKnown {
		cpu := ws.CPU
		v.CPURatio = &cpu
	}
	if !ws.BackoffUntil.IsZero() {
		at := ws.BackoffUntil
		v.BackoffUntil = &at
	}
	if !ws.LastExitAt.IsZero() {
		at := ws.LastExitAt
		v.LastExitAt = &at
	}
	return v
}

// Record returns the view of one record of a process table at now.
func Record(r proctab.Record, now time.Time) Proctab {
	p := Proctab{Slot: r.Slot, Pid: r.Pid, Name: r.Name, TimeoutSec: r.Timeout.Seconds(), Atime: r.Atime,
		LastBeat: r.Atime, AgeSec: now.Sub(r.Atime).Seconds(), Alive: proc.Alive(r.Pid), TimedOut: r.TimedOut(now)}
	p.State = RecordState(p).String()
	return p
}

// RecordState is the state of a process-table record, in the words of a status record: ok,
// abnormal (its heartbeat timed out) or exited (its process is gone).
func RecordState(p Proctab) shmobj.State {
	switch {
	case !p.Alive:
		return shmobj.StateExited
	case p.TimedOut:
		return shmobj.StateAbnormal
	}
	return shmobj.StateOK
}

// OfRecord returns the view of a process-table record as a worker of kind proctab (ls --json
// lists them after the objects).
func OfRecord(p Proctab) Worker {
	return Worker{Name: p.Name, Kind: shmobj.KindProctab.String(), Proctab: &p, WorkerPid: int64(p.Pid),
		Pid: int64(p.Pid), State: p.State}
}

// Shown returns a name read from /dev/shm or from the process table as it may be printed in a
// terminal: as it is when every character is a printable one other than a space, a quote or a
// backslash, else quoted as a Go string, so that no escape sequence, newline or tab in another
// user's name can forge rows or drive the terminal.
func Shown(name string) string {
	for _, r := range name {
		if !unicode.IsPrint(r) || r == ' ' || r == '"' || r == '\\' || r == utf8.RuneError {
			return strconv.Quote(name)
		}
	}
	if name == "" {
		return `""`
	}
	return name
}
