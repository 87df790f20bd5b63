package monitor

import "time"

// EventKind names something that happened to a worker.
type EventKind string

// The events a monitor reports through [Options.OnEvent].
const (
	EventStall    EventKind = "stall"    // the sequence stopped moving (the first stall of a run)
	EventAbnormal EventKind = "abnormal" // the threshold was reached: the worker is hung
	EventKill     EventKind = "kill"     // the hung worker was killed
	EventExit     EventKind = "exit"     // the worker ended by itself (Detail: how)
	EventStart    EventKind = "start"    // a supervised worker was started (or adopted)
	EventRestart  EventKind = "restart"  // a supervised worker was started again
	EventGiveUp   EventKind = "give-up"  // a supervised worker failed too often: no more restarts
	EventReady    EventKind = "ready"    // the run is ready (see Books.Ready): once a run
	EventLimit    EventKind = "limit"    // the worker went over a resource limit: it is stopped (Detail: which, by how much)
	EventOOM      EventKind = "oom"      // the kernel's OOM killer killed a process of the worker's cgroup (Detail: how many)
	EventStarved  EventKind = "starved"  // the worker stalled while it waited for a CPU: not counted (once per streak; Detail: the figures)
)

// Event is one thing that happened to a worker, as reported to [Options.OnEvent].
type Event struct {
	Kind   EventKind
	Worker string    // the object's name
	Pid    int64     // the worker's pid; 0 = unknown
	Seq    uint64    // the last sequence the monitor saw
	Stalls int       // consecutive stalls at the time
	Time   time.Time // when it happened
	// Evidence is what the worker's process was doing at its hang verdict (see package sched's
	// Evidence, in full), for EventAbnormal and EventKill; "" for other events, or when its
	// process is not known.
	Evidence string
	Detail   string // how it ended for EventExit and EventKill ("exit 1", "signal killed"), why for EventGiveUp, the breach for EventLimit, the figures for EventStarved
}

// emit reports e through opts.OnEvent, when set.
func (o *Options) emit(e Event) {
	if o.OnEvent != nil {
		o.OnEvent(e)
	}
}
