package proctab

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/shmmon/shmmon/proc"
)

// SweepOptions configure [Table.Sweep]. The zero value sends SIGTERM, waits 5 s, then
// SIGKILL, and logs to slog.Default().
type SweepOptions struct {
	Signal    syscall.Signal // first signal; 0 = SIGTERM
	KillAfter time.Duration  // then SIGKILL; 0 = proc.DefaultKillAfter
	Logger    *slog.Logger
}

// SweepResult counts what one sweep did.
type SweepResult struct {
	Checked int // records in use
	Cleared int // records cleared without a signal (gone, stale, refused pid)
	Killed  int // processes killed because their heartbeat timed out
}

// Sweep is one pass of checkproc over the table. For each record in use:
//
//   - pid <= 1, or this process: never signalled; the record is cleared.
//   - no such process: the record is cleared.
//   - the pid names a process that started after the record's last heartbeat (the pid was
//     reused): the record is cleared, the process left alone.
//   - the heartbeat is older than the timeout (now - atime > timeout in whole seconds: atime
//     has whole seconds, and a beat within the timeout must never kill): the record is read
//     again, and if it still holds the same process and has not beaten since, the process
//     is killed (Signal, then SIGKILL after KillAfter) through a pidfd and the record cleared.
//
// The lock is held only to read and to clear records, never while a process is being
// killed; a record that changed meanwhile (re-registered, or a new heartbeat) is not cleared.
func (t *Table) Sweep(ctx context.Context, opts SweepOptions) (SweepResult, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	recs, err := t.List()
	if err != nil {
		return SweepResult{}, err
	}
	res := SweepResult{Checked: len(recs)}
	self := os.Getpid()
	for _, r := range recs {
		if ctx.Err() != nil {
			break
		}
		attrs := []any{"slot", r.Slot, "pid", r.Pid, "name", r.Name, "timeout", r.Timeout, "age", time.Since(r.Atime).Round(time.Second)}
		atime := r.Atime.Unix()
		clearRec := func(msg string) {
			if err := t.clearIf(r.Slot, int32(r.Pid), &atime); err != nil {
				log.Error("clearing record", append(attrs, "err", err)...)
				return
			}
			res.Cleared++
			log.Warn(msg, attrs...)
		}
		if r.Pid <= 1 || r.Pid == self {
			clearRec("refusing to signal this pid; record cleared")
			continue
		}
		// Hold the process through a pidfd before judging it, so the process judged is the
		// one signalled.
		p, err := proc.Open(r.Pid)
		if errors.Is(err, proc.ErrNotExist) {
			clearRec("process gone; record cleared")
			continue
		} else if err != nil {
			log.Error("cannot check process", append(attrs, "err", err)...)
			continue
		}
		outcome := t.judge(ctx, p, r, atime, opts, log, attrs, clearRec)
		p.Close()
		if outcome {
			res.Killed++
		}
	}
	return res, ctx.Err()
}

// judge decides about one live process and reports whether it was killed.
func (t *Table) judge(ctx context.Context, p *proc.Process, r Record, atime int64, opts SweepOptions,
	log *slog.Logger, attrs []any, clearRec func(string)) bool {
	// atime has whole seconds: a process that started more than a second after it did not
	// write that heartbeat.
	if start, err := proc.StartTime(r.Pid); err == nil && start.After(r.Atime.Add(time.Second)) {
		clearRec("pid reused by a process that started after the last heartbeat; record cleared, process left alone")
		return false
	}
	// Judge the record as it is now, not as the pass read it: killing another process may
	// have taken seconds, and this one may have beaten meanwhile.
	cur, ok := t.record(r.Slot)
	if !ok || cur.Pid != r.Pid || !cur.TimedOut(time.Now()) {
		return false
	}
	atime = cur.Atime.Unix()
	log.Warn("heartbeat timed out: killing", attrs...)
	term, err := p.Terminate(ctx, proc.TerminateOptions{
		Signal:    opts.Signal,
		KillAfter: opts.KillAfter,
		Log: func(step string, a ...any) {
			log.Warn("kill step", append([]any{"slot", r.Slot, "name", r.Name, "event", step}, a...)...)
		},
	})
	if err != nil {
		log.Error("killing", append(attrs, "err", err)...)
		return false
	}
	if err := t.clearIf(r.Slot, int32(r.Pid), &atime); err != nil {
		log.Error("clearing record", append(attrs, "err", err)...)
	}
	return term.Signalled
}

// TimedOut reports whether r's heartbeat is certainly older than its timeout at now. atime
// has whole seconds: the beat happened somewhere in [atime, atime+1s), so the original's
// now-atime >= timeout would kill a process that beat less than timeout ago. Requiring more
// than timeout whole seconds means the real age is above timeout.
func (r Record) TimedOut(now time.Time) bool {
	return now.Unix()-r.Atime.Unix() > int64(r.Timeout/time.Second)
}
