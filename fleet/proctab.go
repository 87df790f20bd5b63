package fleet

import (
	"context"

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

// ProctabHealth is how the sweep of the process table goes (see [Fleet.ProctabHealth]): the
// Health of its proctab.Guard, counted since the fleet began (a reload keeps the count).
type ProctabHealth struct {
	Sweeping bool // a process table is configured
	proctab.Health
}

// SetProctab makes the fleet sweep the table pt describes every pt.Every, as
// `shmmon checkproc --every` does (a proctab.Guard: a table that is not there yet is looked
// for again every pass, a pass that cannot take the lock in time is skipped); nil stops
// sweeping. An unchanged pt leaves the running sweeper alone. The sweep leaves alone the
// records of programs of heartbeat "proctab", which their supervisors judge.
func (f *Fleet) SetProctab(pt *config.Proctab) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if pt != nil && f.sweeper != nil && *pt == f.sweeper.cfg {
		return
	}
	f.stopSweeper()
	f.bmu.Lock()
	f.proctab = pt
	f.bmu.Unlock()
	if pt == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &proctab.Guard{Options: pt.Options(), Create: pt.Create, Every: pt.Every, Quiet: true,
		Sweep: proctab.SweepOptions{Signal: pt.Signal, KillAfter: pt.KillAfter, Logger: f.log, Skip: f.judgedByRecord}}
	s := &sweeper{cfg: *pt, cancel: cancel, done: make(chan struct{})}
	f.sweeper = s
	f.bmu.Lock()
	f.guard = g
	f.bmu.Unlock()
	go func() {
		defer close(s.done)
		g.Run(ctx, nil)
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

// stopSweeper stops the running sweeper, if any, keeping its count of lock timeouts. f.mu
// must be held.
func (f *Fleet) stopSweeper() {
	if f.sweeper != nil {
		f.sweeper.cancel()
		<-f.sweeper.done
		f.bmu.Lock()
		f.lockTimeouts += f.guard.Health().LockTimeouts
		f.guard = nil
		f.bmu.Unlock()
		f.sweeper = nil
	}
}

// ProctabHealth tells how the sweep of the process table goes. It does not block.
func (f *Fleet) ProctabHealth() ProctabHealth {
	f.bmu.Lock()
	defer f.bmu.Unlock()
	h := ProctabHealth{Sweeping: f.proctab != nil}
	if f.guard != nil {
		h.Health = f.guard.Health()
	}
	h.LockTimeouts += f.lockTimeouts
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
