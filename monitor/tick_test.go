package monitor

import (
	"testing"
	"time"
)

// TestGridTicker: ticks are never early (each comes at least one interval after the one
// before was due), come on the shared grid of slots, and a receiver that fell behind gets
// the next due time ahead, not a burst.
func TestGridTicker(t *testing.T) {
	const interval = 30 * time.Millisecond
	g := newGridTicker(interval)
	defer g.Stop()
	start := time.Now()
	for k := 1; k <= 3; k++ {
		<-g.C()
		if got, want := time.Since(start), time.Duration(k)*interval; got < want {
			t.Errorf("tick %d after %v, want at least %v", k, got, want)
		}
		g.Next()
		if at := g.at(); at%g.slot != 0 || at < g.due || at-g.due >= g.slot {
			t.Errorf("tick %d: next one due %v comes at %v: want the first multiple of the slot %v", k+1, g.due, at, g.slot)
		}
	}
	time.Sleep(4 * interval) // fall behind
	before := time.Since(clockBase)
	<-g.C()
	g.Next()
	if g.due <= before {
		t.Errorf("after falling behind, next due %v is not ahead of %v", g.due, before)
	}
}
