package monitor

import "time"

// gridTicker is the clock of a watch loop: it ticks every interval, like a time.Ticker, but
// on a grid of slots shared by every loop of the process (multiples of the slot size from
// clockBase). Loops with the same interval then wake together, a batch per slot, instead of
// each at its own moment: thousands of watched workers cost a few thread wake-ups a second,
// not one per check. A tick comes at most one slot (a tenth of the interval, at most 50ms)
// after the interval's due time; ticks missed by a slow receiver are dropped.
type gridTicker struct {
	timer    *time.Timer
	interval time.Duration
	slot     time.Duration
	due      time.Duration // the next tick's due time, since clockBase
}

// maxSlot bounds the delay the grid adds to a tick.
const maxSlot = 50 * time.Millisecond

// newGridTicker starts a ticker whose first tick is due one interval from now.
func newGridTicker(interval time.Duration) *gridTicker {
	g := &gridTicker{interval: interval, slot: min(max(interval/10, 1), maxSlot)}
	g.due = time.Since(clockBase) + interval
	g.timer = time.NewTimer(g.wait())
	return g
}

// C returns the channel the ticks arrive on.
func (g *gridTicker) C() <-chan time.Time { return g.timer.C }

// Next schedules the tick after the one just received: one interval after it was due, or,
// when the receiver fell behind, the first due time still ahead.
func (g *gridTicker) Next() {
	g.due += g.interval
	if now := time.Since(clockBase); g.due <= now {
		g.due += (now - g.due + g.interval) / g.interval * g.interval
	}
	g.timer.Reset(g.wait())
}

// Stop stops the ticker.
func (g *gridTicker) Stop() { g.timer.Stop() }

// wait is the time from now to the next tick.
func (g *gridTicker) wait() time.Duration { return g.at() - time.Since(clockBase) }

// at is when the next tick comes, since clockBase: the first slot boundary at or after the
// due time.
func (g *gridTicker) at() time.Duration { return (g.due + g.slot - 1) / g.slot * g.slot }
