package proctab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Guard sweeps one table over and over, as the original framework's guardian does: the loop
// of `shmmon checkproc --every` and of serve's [proctab] table. Set its fields, then call
// [Guard.Run] once; [Guard.Health] may be called from any goroutine.
type Guard struct {
	Options Options       // the table
	Create  bool          // create the table (Open) when it does not exist; else attach it only
	Every   time.Duration // time between passes (at least MinEvery)
	Sweep   SweepOptions  // how each pass judges; its Logger logs the passes too
	// Quiet logs only the passes that cleared, killed or spared a starved process (event=sweep),
	// not every pass.
	Quiet bool

	mu     sync.Mutex
	health Health
}

// Health is how the passes of a [Guard] go.
type Health struct {
	// LockTimeouts counts the passes skipped because the table's lock was not free within
	// LockTimeout.
	LockTimeouts uint64
	// Err says why the last pass failed: the table could not be opened, its lock not taken,
	// ...; nil when it swept the table, and before the first pass.
	Err error
	// Since is when the passes began to fail; zero when Err is nil.
	Since time.Time
}

// Run sweeps until ctx is done. tab is the table when the caller opened it already (Run then
// owns it), or nil. Each pass opens the table if it is not open yet — a table its clients
// have not created is looked for again every pass, its failure logged once
// (event=proctab-open-failed) — then sweeps it. A pass that cannot take the table's lock in
// time is logged (event=lock-timeout), counted and skipped; a pass that fails otherwise is
// logged (event=sweep-failed) and detaches the table, to open it again at the next.
func (g *Guard) Run(ctx context.Context, tab *Table) {
	log := g.Sweep.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("key", fmt.Sprintf("%#x", g.Options.Key))
	defer func() {
		if tab != nil {
			tab.Close()
		}
	}()
	open := Attach
	if g.Create {
		open = Open
	}
	t := time.NewTicker(max(g.Every, MinEvery))
	defer t.Stop()
	var openErr string // the last error of opening, logged once
	for {
		var err error
		if tab == nil {
			if tab, err = open(g.Options); err != nil {
				if err.Error() != openErr {
					log.Error("cannot open the process table; trying again every pass", "event", "proctab-open-failed", "err", err)
					openErr = err.Error()
				}
			} else {
				log.Info("sweeping the process table", "every", g.Every, "event", "proctab")
			}
		}
		if tab != nil {
			var res SweepResult
			res, err = tab.Sweep(ctx, g.Sweep)
			switch {
			case ctx.Err() != nil:
				return
			case errors.Is(err, ErrLockTimeout):
				log.Error("the process table's lock is not free; skipping this pass", "event", "lock-timeout", "err", err)
			case err != nil:
				log.Error("cannot sweep the process table; opening it again next pass", "event", "sweep-failed", "err", err)
				tab.Close()
				tab, openErr = nil, ""
			case !g.Quiet || res.Cleared > 0 || res.Killed > 0 || res.Starved > 0:
				log.Info("swept the process table", "checked", res.Checked, "cleared", res.Cleared, "refused", res.Refused,
					"killed", res.Killed, "starved", res.Starved, "event", "sweep")
			}
		}
		g.record(err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// record records how a pass went: err is nil when it swept the table.
func (g *Guard) record(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := &g.health
	if errors.Is(err, ErrLockTimeout) {
		h.LockTimeouts++
	}
	switch {
	case err == nil:
		h.Err, h.Since = nil, time.Time{}
	case h.Err == nil:
		h.Err, h.Since = err, time.Now()
	default:
		h.Err = err
	}
}

// Health tells how the passes go. It does not block on the table.
func (g *Guard) Health() Health {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.health
}
