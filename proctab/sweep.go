package proctab

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/sched"
)

// SweepOptions configure [Table.Sweep]. The zero value sends SIGTERM, waits 5 s, then
// SIGKILL, and logs to slog.Default().
type SweepOptions struct {
	Signal    syscall.Signal // first signal; 0 = SIGTERM
	KillAfter time.Duration  // then SIGKILL; 0 = proc.DefaultKillAfter
	Logger    *slog.Logger
	// Skip, when set, names the records the sweep leaves alone, by their pid: those of
	// programs another monitor judges by their record (serve's heartbeat "proctab"), which
	// that monitor kills and restarts itself.
	Skip func(pid int) bool
	// StarvedMax bounds the starvation rule (see package sched): a timed-out record whose
	// process waits for a CPU is left alone while its heartbeat is late by no more than this;
	// 0 means [sched.MinBound], a negative value turns the rule off (every timed-out record is
	// acted on).
	StarvedMax time.Duration
}

// starveProbe is the window over which a sweep judges whether a timed-out record's process
// waits for a CPU: a pass has no earlier reading of it (reading every healthy record's threads
// would make a sweep of a thousand records costly), so it reads the threads twice this far
// apart, only for a record that timed out.
const starveProbe = 100 * time.Millisecond

// SweepResult counts what one sweep did.
type SweepResult struct {
	Checked int // records in use
	Cleared int // records cleared without a signal (gone, stale, refused)
	Refused int // of the cleared records, those refused (see [Table.Sweep])
	Killed  int // processes killed because their heartbeat timed out
	Starved int // timed-out records left alone because their process waits for a CPU
}

// Sweep is one pass of checkproc over the table. For each record in use:
//
//   - pid <= 1, or this process: never signalled; the record is refused.
//   - a bad record: a timeout under 1 s (a negative one would be timed out forever), or a
//     heartbeat more than a second in the future: refused, whatever process it names.
//   - no such process: the record is cleared.
//   - the pid names a process that started after the record's last heartbeat (the pid was
//     reused): the record is cleared, the process left alone.
//   - the heartbeat is within the timeout: left alone. This costs one read of
//     /proc/PID/stat, so that a sweep of a thousand healthy records stays cheap.
//   - the heartbeat is older than the timeout (now - atime > timeout in whole seconds: atime
//     has whole seconds, and a beat within the timeout must never kill): the process is held
//     through a pidfd, so the process judged is the one signalled, and the record is read
//     again. If it still holds the same process and has not beaten since, the record must be
//     trusted to name that process: the process has this table attached (its
//     /proc/PID/maps shows this segment: nobody can make another process attach one), and its
//     user may write the table (the segment's owner, group and mode, as the kernel judges
//     them; root always may). Anyone who may write the table may write any record, so a
//     record naming a process that is not a client of the table, or whose user could not have
//     written it, is refused. A trusted one's process is judged by the starvation rule
//     (package sched: its threads are read twice, 100ms apart): one that waits for a CPU is
//     left alone, logged with event=starved and counted in Starved, while its heartbeat is
//     late by no more than StarvedMax; otherwise it is killed (Signal, then SIGKILL after
//     KillAfter) and the record cleared.
//
// A refused record is cleared, never acted on, and logged at warning level with
// event=record-refused, its pid, the uid of its process (when one was held) and why; it counts
// in Cleared and in Refused.
//
// The lock is held only to read and to clear records, never while a process is being
// killed; a record that changed meanwhile (re-registered, or a new heartbeat) is not cleared.
// Every wait for the lock is bounded: a pass that cannot take it within [LockTimeout] ends
// there, with what it did so far and an error matching [ErrLockTimeout]. A pass ends early,
// with ctx's error, when ctx is done.
func (t *Table) Sweep(ctx context.Context, opts SweepOptions) (SweepResult, error) {
	recs, err := t.list(ctx)
	if err != nil {
		return SweepResult{}, err
	}
	segment, err := shmStat(t.shmid)
	if err != nil {
		return SweepResult{}, fmt.Errorf("proctab: segment %#x: %w", t.opts.Key, err)
	}
	s := &pass{t: t, ctx: ctx, opts: opts, log: cmp.Or(opts.Logger, slog.Default()), segment: segment, self: os.Getpid()}
	s.res.Checked = len(recs)
	for _, r := range recs {
		if ctx.Err() != nil {
			break
		}
		if opts.Skip != nil && opts.Skip(r.Pid) {
			continue
		}
		if err := s.sweep(r); err != nil {
			return s.res, err
		}
	}
	return s.res, ctx.Err()
}

// pass is one [Table.Sweep].
type pass struct {
	t       *Table
	ctx     context.Context
	opts    SweepOptions
	log     *slog.Logger
	segment perm // the segment's permissions, read once per pass
	self    int
	res     SweepResult
}

// sweep judges one record. Its error (a wait for the lock that failed) ends the pass.
func (s *pass) sweep(r Record) error {
	attrs := []any{"slot", r.Slot, "pid", r.Pid, "name", r.Name, "timeout", r.Timeout, "age", time.Since(r.Atime).Round(time.Second)}
	switch {
	case r.Pid <= 1:
		return s.refuse(r, attrs, "pid 1 or less names no single process")
	case r.Pid == s.self:
		return s.refuse(r, attrs, "it is this sweeper's own pid")
	}
	now := time.Now()
	bad := r.problem(now)
	if bad == "" && !r.TimedOut(now) {
		switch start, err := proc.StartTime(r.Pid); {
		case errors.Is(err, proc.ErrNotExist):
			return s.clear(r, attrs, "process gone; record cleared")
		case err == nil && reused(start, r):
			return s.clear(r, attrs, "pid reused by a process that started after the last heartbeat; record cleared, process left alone")
		}
		return nil
	}

	p, err := proc.Open(r.Pid)
	if errors.Is(err, proc.ErrNotExist) {
		return s.clear(r, attrs, "process gone; record cleared")
	} else if err != nil {
		s.log.Error("cannot check process", append(attrs, "err", err)...)
		return nil
	}
	defer p.Close()
	cred, credErr := p.Credentials()
	if errors.Is(credErr, os.ErrProcessDone) {
		return s.clear(r, attrs, "process gone; record cleared")
	} else if credErr == nil {
		attrs = append(attrs, "uid", cred.Uid)
	}
	if bad != "" {
		return s.refuse(r, attrs, bad)
	}
	if start, err := proc.StartTime(r.Pid); err == nil && reused(start, r) {
		return s.clear(r, attrs, "pid reused by a process that started after the last heartbeat; record cleared, process left alone")
	}
	// Judge the record as it is now, not as the pass read it: killing another process may
	// have taken seconds, and this one may have beaten meanwhile.
	cur, ok, err := s.t.record(s.ctx, r.Slot)
	if err != nil {
		return err
	}
	if !ok || cur.Pid != r.Pid || !cur.TimedOut(time.Now()) {
		return nil
	}
	if credErr != nil {
		return s.refuse(cur, attrs, fmt.Sprintf("cannot read its credentials: %v", credErr))
	}
	if why := s.t.distrust(p, cred, s.segment); why != "" {
		return s.refuse(cur, attrs, why)
	}
	if s.starved(cur, attrs) {
		return nil
	}
	return s.kill(p, cur, attrs)
}

// starved applies the starvation rule to the process of r, whose heartbeat timed out: it
// reports whether the process waits for a CPU and its heartbeat is late by no more than the
// bound, logging it (event=starved) or, past the bound, that it is killed all the same
// (event=starved-max).
func (s *pass) starved(r Record, attrs []any) bool {
	bound := cmp.Or(s.opts.StarvedMax, sched.MinBound)
	if bound < 0 {
		return false
	}
	a, err := sched.Read(r.Pid, time.Now())
	if err != nil {
		return false
	}
	select {
	case <-time.After(starveProbe):
	case <-s.ctx.Done():
		return false
	}
	b, err := sched.Read(r.Pid, time.Now())
	if err != nil {
		return false
	}
	v := sched.Judge(a, b)
	if !v.Starved {
		return false
	}
	late := time.Since(r.Atime) - r.Timeout
	figures := []any{"run_delay", v.Delay.Round(time.Millisecond), "cpu", v.CPU.Round(time.Microsecond),
		"window", v.Window.Round(time.Millisecond), "threads", v.States, "pressure", sched.Pressure(r.Pid).String()}
	if late > bound {
		s.log.Warn("heartbeat timed out; its process waits for a CPU, but for longer than starved_max: killing it",
			append(append(attrs, "event", "starved-max", "starved_max", bound), figures...)...)
		return false
	}
	s.log.Warn("heartbeat timed out, but its process waits for a CPU: left alone",
		append(append(attrs, "event", "starved"), figures...)...)
	s.res.Starved++
	return true
}

// reused reports whether a process that started at start cannot have written r's heartbeat:
// atime has whole seconds, so a process that started more than a second after it did not.
func reused(start time.Time, r Record) bool { return start.After(r.Atime.Add(time.Second)) }

// kill runs the kill escalation on p, whose record r timed out, and clears the record.
func (s *pass) kill(p *proc.Process, r Record, attrs []any) error {
	s.log.Warn("heartbeat timed out: killing", attrs...)
	term, err := p.Terminate(s.ctx, proc.TerminateOptions{
		Signal:    s.opts.Signal,
		KillAfter: s.opts.KillAfter,
		Log: func(step string, a ...any) {
			s.log.Warn("kill step", append([]any{"slot", r.Slot, "name", r.Name, "event", step}, a...)...)
		},
	})
	if err != nil {
		s.log.Error("killing", append(attrs, "err", err)...)
		return nil
	}
	if term.Signalled {
		s.res.Killed++
	}
	atime := r.Atime.Unix()
	return s.t.clearIf(s.ctx, r.Slot, int32(r.Pid), &atime)
}

// clear clears r's slot, if it still holds r's pid and heartbeat, and logs msg.
func (s *pass) clear(r Record, attrs []any, msg string, more ...any) error {
	atime := r.Atime.Unix()
	if err := s.t.clearIf(s.ctx, r.Slot, int32(r.Pid), &atime); err != nil {
		return err
	}
	s.res.Cleared++
	s.log.Warn(msg, append(attrs, more...)...)
	return nil
}

// refuse clears r as a record that must not be acted on, saying why.
func (s *pass) refuse(r Record, attrs []any, why string) error {
	if err := s.clear(r, attrs, "record refused: cleared, its process left alone", "event", "record-refused", "why", why); err != nil {
		return err
	}
	s.res.Refused++
	return nil
}

// TimedOut reports whether r's heartbeat is certainly older than its timeout at now. atime
// has whole seconds: the beat happened somewhere in [atime, atime+1s), so the original's
// now-atime >= timeout would kill a process that beat less than timeout ago. Requiring more
// than timeout whole seconds means the real age is above timeout.
func (r Record) TimedOut(now time.Time) bool {
	return now.Unix()-r.Atime.Unix() > int64(r.Timeout/time.Second)
}
