// Package sched reads what the kernel's scheduler knows of a process — for each of its
// threads the state, the time on a CPU and the time it was runnable but waiting for one (run
// delay) — and owns the starvation rule built on it: whether a process whose heartbeat
// stalled could have beaten.
//
// # The starvation rule
//
// [Judge] compares two readings of a process ([Read], from /proc/PID/task/TID/stat and
// /proc/PID/task/TID/schedstat), taken a window apart over a stall, summing over the threads
// present in both. The process was starved — it waited for a CPU, it did not hang — when all
// of these hold:
//
//   - at the second reading at least one of its threads is runnable (state R);
//   - its run delay grew by more than half of the window: it was mostly runnable and waiting;
//   - its time on a CPU grew by less than a twentieth of the window: it got little CPU (a
//     worker that got that much would have beaten: a beat takes microseconds).
//
// Anything else is a stall that counts, and [Verdict.Why] says which it is:
//
//   - "stopped": no thread is runnable and one is stopped or traced (T, t: SIGSTOP, a debugger);
//   - "blocked": no thread is runnable: all sleep or wait (S, D: a deadlock, a read that never
//     returns) or are gone (Z, X);
//   - "running": it got a twentieth of the window on a CPU or more without beating (a busy
//     loop);
//   - "waiting": runnable, but its run delay grew by half of the window or less: it was not
//     mostly waiting for a CPU.
//
// The rule is bounded: a process starved for longer than its bound is judged as usual, since a
// service that never gets a CPU is down all the same. [DefaultBound] is the bound unless
// configured: 10 intervals between judgements, but at least [MinBound].
//
// The rule's owners read these files only once a stall was seen, never on a healthy check.
// [Pressure] reads the host's CPU pressure (/proc/pressure/cpu) and the process's cgroup's
// (cpu.pressure), which are logged with a decision but never decide it.
//
// Every function here needs Linux; elsewhere they return an error matching
// errors.ErrUnsupported.
package sched

import (
	"fmt"
	"strings"
	"time"
)

// MinBound is the shortest default bound of the rule (see [DefaultBound]).
const MinBound = 10 * time.Second

// DefaultBound returns the bound of the rule for a process judged every interval: the longer
// of 10 intervals and [MinBound].
func DefaultBound(interval time.Duration) time.Duration { return max(10*interval, MinBound) }

// Thread is one thread of a process as one [Read] saw it.
type Thread struct {
	TID   int
	State byte          // as /proc shows it: 'R' runnable, 'S' sleeping, 'D' blocked, 'T' stopped, 't' traced, 'Z' zombie, ...
	CPU   time.Duration // time on a CPU since the thread started
	Delay time.Duration // time runnable but waiting for a CPU since the thread started, up to its last time on a CPU
	Runs  uint64        // times it got on a CPU
}

// Sample is one reading of a process's threads.
type Sample struct {
	Pid     int
	At      time.Time // when it was read
	Threads []Thread
}

// States counts the sample's threads by state, in words and in the order of the states'
// letters: "R1 S4", "T3". It is "" for a sample without threads.
func (s Sample) States() string {
	var n [256]int
	for _, t := range s.Threads {
		n[t.State]++
	}
	var b strings.Builder
	for st, c := range n {
		if c > 0 {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%c%d", st, c)
		}
	}
	return b.String()
}

// Verdict is what [Judge] decided of a stalled process over a window.
type Verdict struct {
	// Starved says the process waited for a CPU over the window: the stall must not count.
	Starved bool
	// Why names the rule that decided: "starved", or for a stall that counts "stopped",
	// "blocked", "running" or "waiting" (see the package doc).
	Why    string
	Window time.Duration // between the two readings
	// CPU and Delay are how much the threads' time on a CPU and run delay grew over the window,
	// summed over the threads in both readings.
	CPU, Delay time.Duration
	States     string // the threads by state at the second reading (see [Sample.States])
}

// Judge applies the starvation rule (see the package doc) to two readings of one process,
// before and after, taken in that order.
func Judge(before, after Sample) Verdict {
	v := Verdict{Window: after.At.Sub(before.At), States: after.States()}
	old := make(map[int]Thread, len(before.Threads))
	for _, t := range before.Threads {
		old[t.TID] = t
	}
	runnable, stopped := false, false
	for _, t := range after.Threads {
		switch t.State {
		case 'R':
			runnable = true
		case 'T', 't':
			stopped = true
		}
		o, ok := old[t.TID]
		if !ok {
			continue
		}
		v.CPU += max(t.CPU-o.CPU, 0)
		v.Delay += max(t.Delay-o.Delay, 0)
		if o.State == 'R' && t.State == 'R' && o.Runs == t.Runs {
			// Runnable at both readings and never on a CPU in between (a thread can only go to
			// sleep or stop by running): it waited the whole window. The kernel adds a wait to
			// the run delay only when the wait ends, so the delay shows none of it yet.
			v.Delay += v.Window
		}
	}
	switch {
	case !runnable && stopped:
		v.Why = "stopped"
	case !runnable:
		v.Why = "blocked"
	case v.Window <= 0 || v.CPU*20 >= v.Window:
		v.Why = "running"
	case v.Delay*2 <= v.Window:
		v.Why = "waiting"
	default:
		v.Starved, v.Why = true, "starved"
	}
	return v
}

// CPUPressure is the share of time some runnable task waited for a CPU, over the last 10
// seconds, in percent, as /proc/pressure/cpu ("some avg10") and a cgroup's cpu.pressure say.
// Known is false when it could not be read (a kernel without PSI, a process without a cgroup
// file).
type CPUPressure struct {
	Host, Cgroup           float64
	HostKnown, CgroupKnown bool
}

// String writes the pressure as the log lines show it: "host 35.2% cgroup 12.0%", with "?"
// for a figure that could not be read.
func (p CPUPressure) String() string {
	f := func(v float64, ok bool) string {
		if !ok {
			return "?"
		}
		return fmt.Sprintf("%.1f%%", v)
	}
	return "host " + f(p.Host, p.HostKnown) + " cgroup " + f(p.Cgroup, p.CgroupKnown)
}

// ThreadEvidence is what one thread was doing when its process was judged hung.
type ThreadEvidence struct {
	TID     int
	State   byte
	Wchan   string // the kernel function it waits in ("futex_wait_queue", "pipe_read"); "" when running or unknown
	Syscall string // /proc/PID/task/TID/syscall: the number of the system call it is in and its arguments, "running", or "" when unreadable
	// CPU and Delay are its time on a CPU and its run delay over the stall (since the reading
	// given to [Collect]; since the thread started when it was not in that reading).
	CPU, Delay time.Duration
	Stack      []string // its kernel stack, innermost first (/proc/PID/task/TID/stack), when readable
}

// Evidence is what a process was doing when it was judged hung, as [Collect] reads it.
type Evidence struct {
	Pid     int
	At      time.Time
	Over    time.Duration // the window CPU and Delay cover
	RSS     int64         // resident memory in bytes; 0 when unknown
	Threads []ThreadEvidence
}

// String writes the threads on one line, as the evidence log line shows them:
// "4242 S futex_wait_queue syscall=202 cpu=0s delay=0s stack=futex_wait_queue<futex_wait<...; 4243 R ...".
func (e Evidence) String() string {
	var b strings.Builder
	for i, t := range e.Threads {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%d %c", t.TID, t.State)
		if t.Wchan != "" {
			b.WriteString(" " + t.Wchan)
		}
		if t.Syscall != "" {
			sc, _, _ := strings.Cut(t.Syscall, " ")
			b.WriteString(" syscall=" + sc)
		}
		fmt.Fprintf(&b, " cpu=%v delay=%v", t.CPU.Round(time.Microsecond), t.Delay.Round(time.Microsecond))
		if len(t.Stack) > 0 {
			b.WriteString(" stack=" + strings.Join(t.Stack, "<"))
		}
	}
	return b.String()
}

// Report writes the evidence in full, one thread a paragraph with its kernel stack, as the
// file hooks get (SHMMON_EVIDENCE).
func (e Evidence) Report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pid %d at %s, rss %d bytes, cpu and run delay over the last %v\n", e.Pid,
		e.At.UTC().Format(time.RFC3339Nano), e.RSS, e.Over.Round(time.Millisecond))
	for _, t := range e.Threads {
		fmt.Fprintf(&b, "\nthread %d state %c wchan %q syscall %q cpu %v run delay %v\n", t.TID, t.State, t.Wchan, t.Syscall,
			t.CPU.Round(time.Microsecond), t.Delay.Round(time.Microsecond))
		for _, f := range t.Stack {
			b.WriteString("  " + f + "\n")
		}
	}
	return b.String()
}
