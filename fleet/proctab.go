package fleet

import (
	"context"
	"fmt"
	"time"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/proctab"
)

// sweeper sweeps a System V process table on its own goroutine.
type sweeper struct {
	cfg    config.Proctab
	cancel context.CancelFunc
	done   chan struct{}
}

// SetProctab makes the fleet sweep the table pt describes every pt.Every, as
// `shmmon checkproc --every` does; nil stops sweeping. An unchanged pt leaves the running
// sweeper alone.
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
	if pt == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &sweeper{cfg: *pt, cancel: cancel, done: make(chan struct{})}
	f.sweeper = s
	log := f.log.With("key", fmt.Sprintf("%#x", pt.Key))
	go func() {
		defer close(s.done)
		tab, err := proctab.Open(pt.Options())
		if err != nil {
			log.Error("cannot open the process table; not sweeping it", "err", err)
			return
		}
		defer tab.Close()
		log.Info("sweeping the process table", "every", pt.Every, "event", "proctab")
		opts := proctab.SweepOptions{Signal: pt.Signal, KillAfter: pt.KillAfter, Logger: log}
		t := time.NewTicker(pt.Every)
		defer t.Stop()
		for {
			if res, err := tab.Sweep(ctx, opts); err == nil && (res.Cleared > 0 || res.Killed > 0) {
				log.Info("swept the process table", "checked", res.Checked, "cleared", res.Cleared, "killed", res.Killed, "event", "sweep")
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// stopSweeper stops the running sweeper, if any. f.mu must be held.
func (f *Fleet) stopSweeper() {
	if f.sweeper != nil {
		f.sweeper.cancel()
		<-f.sweeper.done
		f.sweeper = nil
	}
}

// ProctabRecords returns the records of the process table the fleet sweeps: nil and no
// error when it sweeps none, an error when the table cannot be read (it does not exist yet,
// for one).
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
