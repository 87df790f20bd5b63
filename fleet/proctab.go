package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/proctab"
)

// sweeper sweeps a System V process table on its own goroutine.
type sweeper struct {
	cfg    config.Proctab
	cancel context.CancelFunc
	done   chan struct{}
}

// ProctabHealth is how the sweep of the process table goes (see [Fleet.ProctabHealth]).
type ProctabHealth struct {
	Sweeping bool // a process table is configured
	// LockTimeouts counts the passes skipped because the table's lock was not free within
	// proctab.LockTimeout, since the fleet began (a reload keeps the count).
	LockTimeouts uint64
	// Err says why the last pass failed: the table could not be opened, its lock not taken,
	// ... nil when it swept the table, and before the first pass.
	Err error
	// Since is when the passes began to fail; zero when Err is nil.
	Since time.Time
}

// SetProctab makes the fleet sweep the table pt describes every pt.Every, as
// `shmmon checkproc --every` does; nil stops sweeping. An unchanged pt leaves the running
// sweeper alone.
//
// Each pass opens the table if it is not open yet (creating it, pt.Create, with pt.Mode and
// pt.Group; or attaching it only, so a table its clients have not created yet is looked for
// again every pass), then sweeps it. A pass that cannot take the table's lock in time is
// logged (event=lock-timeout), counted and skipped; a pass that fails otherwise detaches the
// table, to open it again at the next. [Fleet.ProctabHealth] tells how the last pass went.
func (f *Fleet) SetProctab(pt *config.Proctab) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bmu.Lock()
	f.proctab = pt
	f.bmu.Unlock()
	if pt != nil && f.sweeper != nil && *pt == f.sweeper.cfg {
		return
	}
	f.stopSweeper()
	f.sweptProctab(nil) // a new table, or none: no trouble yet
	if pt == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &sweeper{cfg: *pt, cancel: cancel, done: make(chan struct{})}
	f.sweeper = s
	go func() {
		defer close(s.done)
		f.sweep(ctx, *pt, f.log.With("key", fmt.Sprintf("%#x", pt.Key)))
	}()
}

// proctabOptions returns the options of the table the fleet sweeps, the one heartbeat
// "proctab" reads; nil when there is none.
func (f *Fleet) proctabOptions() *proctab.Options {
	f.bmu.Lock()
	defer f.bmu.Unlock()
	if f.proctab == nil {
		return nil
	}
	o := f.proctab.Options()
	return &o
}

// judgedByRecord reports whether pid belongs to a running program of heartbeat "proctab":
// its record is its heartbeat, judged (and its program killed and restarted) by its
// supervisor, not by the sweep.
func (f *Fleet) judgedByRecord(pid int) bool {
	f.bmu.Lock()
	var roots []int
	for _, e := range f.entries {
		if e.w.Heartbeat == "proctab" && e.cur != nil {
			if mw := e.cur.worker(); mw != nil && mw.Pid() > 0 {
				roots = append(roots, int(mw.Pid()))
			}
		}
	}
	f.bmu.Unlock()
	for _, root := range roots {
		if proc.InTree(pid, root) {
			return true
		}
	}
	return false
}

// sweep is the sweeper's goroutine: a pass every pt.Every until ctx is done.
func (f *Fleet) sweep(ctx context.Context, pt config.Proctab, log *slog.Logger) {
	var tab *proctab.Table
	defer func() {
		if tab != nil {
			tab.Close()
		}
	}()
	open := proctab.Attach
	if pt.Create {
		open = proctab.Open
	}
	opts := proctab.SweepOptions{Signal: pt.Signal, KillAfter: pt.KillAfter, Logger: log, Skip: f.judgedByRecord}
	t := time.NewTicker(pt.Every)
	defer t.Stop()
	var openErr string // the last error of opening, logged once
	for {
		var err error
		if tab == nil {
			if tab, err = open(pt.Options()); err != nil {
				if err.Error() != openErr {
					log.Error("cannot open the process table; trying again every pass", "event", "proctab-open-failed", "err", err)
					openErr = err.Error()
				}
			} else {
				log.Info("sweeping the process table", "every", pt.Every, "event", "proctab")
			}
		}
		if tab != nil {
			var res proctab.SweepResult
			res, err = tab.Sweep(ctx, opts)
			switch {
			case ctx.Err() != nil:
				return
			case errors.Is(err, proctab.ErrLockTimeout):
				f.bmu.Lock()
				f.ptHealth.LockTimeouts++
				f.bmu.Unlock()
				log.Error("the process table's lock is not free; skipping this pass", "event", "lock-timeout", "err", err)
			case err != nil:
				log.Error("cannot sweep the process table; opening it again next pass", "event", "sweep-failed", "err", err)
				tab.Close()
				tab, openErr = nil, ""
			case res.Cleared > 0 || res.Killed > 0:
				log.Info("swept the process table", "checked", res.Checked, "cleared", res.Cleared, "refused", res.Refused,
					"killed", res.Killed, "event", "sweep")
			}
		}
		f.sweptProctab(err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweptProctab records how a pass went: err is nil when it swept the table.
func (f *Fleet) sweptProctab(err error) {
	f.bmu.Lock()
	defer f.bmu.Unlock()
	h := &f.ptHealth
	switch {
	case err == nil:
		h.Err, h.Since = nil, time.Time{}
	case h.Err == nil:
		h.Err, h.Since = err, time.Now()
	default:
		h.Err = err
	}
}

// stopSweeper stops the running sweeper, if any. f.mu must be held.
func (f *Fleet) stopSweeper() {
	if f.sweeper != nil {
		f.sweeper.cancel()
		<-f.sweeper.done
		f.sweeper = nil
	}
}

// ProctabHealth tells how the sweep of the process table goes. It does not block.
func (f *Fleet) ProctabHealth() ProctabHealth {
	f.bmu.Lock()
	defer f.bmu.Unlock()
	h := f.ptHealth
	h.Sweeping = f.proctab != nil
	return h
}

// ProctabRecords returns the records of the process table the fleet sweeps: nil and no
// error when it sweeps none, an error when the table cannot be read (it does not exist yet,
// for one, or its lock is not free within proctab.LockTimeout).
func (f *Fleet) ProctabRecords() ([]proctab.Record, error) {
	f.bmu.Lock()
	pt := f.proctab
	f.bmu.Unlock()
	if pt == nil {
		return nil, nil
	}
	tab, err := proctab.Attach(pt.Options())
	if err != nil {
		return nil, err
	}
	defer tab.Close()
	return tab.List()
}
