// Package monitor judges heartbeats and owns each worker's state: it checks a worker's
// sequence, counts consecutive stalls, keeps the status record of the object up to date, and
// runs the watch loop that kills a hung worker.
//
//   - [Checker] is the check rules, pure: a sequence and a time in, a verdict out.
//   - [Heartbeat] is one published object and its Checker: [Heartbeat.Check] reads the
//     sequence and writes the record, with no system call and no allocation.
//   - [Worker] is the one owner of a worker's state: its Heartbeat, where it is in its life
//     (a [Phase]: the table of events in its doc), its books, and one announcement per change
//     (the record, the counts, one log line, an [Event] for hooks and metrics). Its owner —
//     a [Watch] for a process started elsewhere, a supervisor for a program it runs (package
//     supervise) — tells it what happened: a start, a check, a kill, the end of a run
//     ([End]).
//   - [Watch] is the watch loop of `shmmon watch` and of serve's watched workers: its checks
//     run with every other of its interval on one goroutine (a pacer), its end on one of
//     its own.
//
// # Check results
//
// [Checker.Observe] and [Heartbeat.Check] return the codes of the Boost C++
// SharedMemoryChecker:
//
//   - [OK] (0): the sequence moved (s > last); or the worker restarted and its counter
//     began again (0 < s < last: last is rebased, stalls reset); or no beat was seen yet and
//     the startup grace is running; or the check came late (more than 2 intervals after the
//     previous one, by the monotonic clock: the monitor itself was stopped or starved), which
//     is not judged — the stall count stays and last follows the sequence; nor is any check
//     less than one interval after such a late one, so a worker paused along with the
//     monitor (the machine slept) gets a full interval to beat again.
//   - [Stalled] (-1): no progress (s == last, or s == 0 after a beat was seen, or s == 0 after
//     the grace), below the threshold.
//   - [Abnormal] (-2): the consecutive stall count reached the threshold: the worker is hung
//     and must be killed. Progress resets the count, so it is never reached by scattered
//     hiccups.
//
// A freshly published object starts the rules over: last = 0, no stalls, a new grace.
//
// # The starvation rule
//
// A stall counts only when the worker could have beaten. [Worker.Check] applies the rule of
// package sched to every stall ([Stalled] or [Abnormal] from the rules above) of a worker whose
// process is known (Options.WatchedPid: the watched pid, the program started, its MAINPID=; the
// pid a worker writes into its object is not trusted for this), and to nothing else:
// [Heartbeat.Check] and a healthy check read no file. The first stall of a streak reads the
// process's threads (sched.Read) and is counted as usual; each later one is judged over the
// window since the previous reading (sched.Judge). A starved stall (runnable, waiting for a
// CPU more than half of the window, on one less than a twentieth of it) is taken back: the count
// stays where it was, the state is [shmobj.StateStarved], the result [Stalled]; one line
// (event=starved) and one [EventStarved] per streak, with the run delay, CPU time, threads and
// CPU pressure; the time is added to Books.Starved. A stopped, sleeping or blocked process, or
// one that ran without beating, counts. The rule is bounded by Config.StarvedMax (default 10
// intervals, at least 10s): once the sequence stood still for longer, stalls count again
// (event=starved-max, once). [StarvationOff] turns the rule off.
//
// # Evidence before the kill
//
// At the hang verdict ([Abnormal], or a trigger), before its owner sends any signal, a Worker
// whose process is known records what the process was doing (sched.Collect): one line
// (event=evidence) with each thread's state, wait channel, system call, CPU time and run delay
// since the stall's first check, and kernel stack when readable, the resident memory, the last
// sequence and how long it stood still; the books keep it (Books.Evidence: /status's last kill),
// and EventAbnormal and EventKill carry the full report (Event.Evidence: the hooks'
// SHMMON_EVIDENCE). [Worker.Terminate] sends the owner's dump signal
// (proc.TerminateOptions.Dump: SIGQUIT makes a Go program print its goroutines) first, for a
// kill only; the exit it causes ends the run as the kill it is.
//
// # What a worker may ask for
//
// A supervisor that speaks the notify protocol (package notify) lets its worker adjust the
// rules: [Checker.Ready] ends the grace early (READY=1), [Checker.Extend] prolongs it
// (EXTEND_TIMEOUT_USEC=), [Checker.Suspend] stops judging for at most the grace while the
// worker shuts down (STOPPING=1), [Checker.Trigger] makes it abnormal at once
// (WATCHDOG=trigger) and [Checker.SetInterval] changes the interval (WATCHDOG_USEC=).
//
// # Resource limits
//
// A worker with [Limits] (Options.Limits: memory_max, cpu_max) is measured by its owner once
// per check interval, next to the heartbeat's check and on the same goroutine — no timer of
// its own — with a [Meter]: its cgroup's usage, or proc.TreeUsage of its process tree. A
// worker without limits is never measured; [Heartbeat.Check] and the workers' beats are the
// same with or without them. [Worker.CheckLimits] judges the measure:
//
//   - memory (resident, of all its processes) over MemoryMax at stalls checks in a row;
//   - CPU (of all its processes, in cores) over CPUMax on average over the last stalls
//     intervals: a burst shorter than that is not enough;
//   - a worker with a heartbeat is judged from its first beat on (its startup grace bounds
//     its start: a program's start often takes a burst of CPU).
//
// A worker over a limit is logged (event=limit, with the resource, its value and its limit),
// emitted as [EventLimit] (the on_limit hook), and stopped by its owner as a hung one is
// (Signal, then SIGKILL after KillAfter) with [EndLimit]: a failure for a supervisor's restart
// policy and backoff; a watched process is killed ([OverLimit]). The kernel's OOM kills in a
// worker's cgroup are reported with [Worker.OOM] ([EventOOM]).
package monitor
