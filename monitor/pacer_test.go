package monitor

import (
	"sync"
	"testing"
	"time"
)

// TestPacer: loops of one interval share a pacer; a check is never early (the first one
// interval after the loop began, each next one at least an interval after the one before was
// due); a check that returns true gets no more calls; the last
// stop ends the pacer.
func TestPacer(t *testing.T) {
	const interval = 30 * time.Millisecond
	var mu sync.Mutex
	var a, b []time.Time
	// record is a check that records when it was called in calls and returns done.
	record := func(calls *[]time.Time, done bool) func(time.Time) bool {
		return func(now time.Time) bool {
			mu.Lock()
			defer mu.Unlock()
			*calls = append(*calls, now)
			return done
		}
	}
	start := time.Now()
	ea := pace(interval, record(&a, false), nil)
	eb := pace(interval, record(&b, true), nil)
	if ea.p != eb.p {
		t.Error("two loops of one interval have a pacer each")
	}
	time.Sleep(10 * interval)
	ea.stop()
	eb.stop()
	mu.Lock()
	defer mu.Unlock()
	if len(b) != 1 {
		t.Errorf("a check that returned true was called %d times, want 1", len(b))
	}
	if len(a) < 3 {
		t.Fatalf("%d checks in 10 intervals, want at least 3", len(a))
	}
	for k, at := range a {
		if min := time.Duration(k+1) * interval; at.Sub(start) < min {
			t.Errorf("check %d after %v, want at least %v", k+1, at.Sub(start), min)
		}
	}
	pacersMu.Lock()
	defer pacersMu.Unlock()
	if _, ok := pacers[interval]; ok {
		t.Error("the pacer outlived its last loop")
	}
	select {
	case <-ea.p.done:
	default:
		t.Error("the pacer's goroutine still runs after the last stop")
	}
}
