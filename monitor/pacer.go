package monitor

import (
	"math"
	"sync"
	"time"
)

// A pacer runs the checks of every watch loop of one interval on one goroutine, so
// thousands of watched workers cost one wake-up per slot, not a goroutine wake-up per check.
// A check is due one interval after the loop began, then every interval; it runs at the
// first boundary of the pacer's grid of slots (a tenth of the interval, at most 50ms,
// counted from clockBase) at or after its due time. Checks missed by a pacer that fell
// behind are dropped, as a time.Ticker drops ticks.
type pacer struct {
	interval time.Duration
	slot     time.Duration

	mu   sync.Mutex      // held while the checks run
	due  []time.Duration // due[i] is when ents[i] is next due, since clockBase
	ents []*paced

	kick chan struct{} // a loop was added: plan the next wake-up again
	quit chan struct{} // closed by the last loop to leave
	done chan struct{} // closed when run returns
}

// paced is one loop's place in a pacer.
type paced struct {
	p     *pacer
	i     int                      // index in p.ents
	check func(now time.Time) bool // true: the loop needs no more checks
	// observe, when set, gets each check's start and duration (see Options.OnCheck).
	observe func(start time.Time, took time.Duration)
}

// maxSlot bounds the delay the grid adds to a check.
const maxSlot = 50 * time.Millisecond

// never is the due time of a loop that needs no more checks.
const never = time.Duration(math.MaxInt64)

var (
	pacersMu sync.Mutex // guards pacers; taken before a pacer's mu
	pacers   = map[time.Duration]*pacer{}
)

// pace calls check every interval, the first time one interval from now, on the pacer of
// the interval, until check returns true; observe, when not nil, gets each check's start and
// duration. check must not block, nor call stop. The caller must call stop.
func pace(interval time.Duration, check func(now time.Time) bool, observe func(time.Time, time.Duration)) *paced {
	pacersMu.Lock()
	defer pacersMu.Unlock()
	p := pacers[interval]
	if p == nil {
		p = &pacer{interval: interval, slot: min(max(interval/10, 1), maxSlot),
			kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
		pacers[interval] = p
		go p.run()
	}
	e := &paced{p: p, check: check, observe: observe}
	p.mu.Lock()
	e.i = len(p.ents)
	p.ents = append(p.ents, e)
	p.due = append(p.due, time.Since(clockBase)+interval)
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
	return e
}

// stop ends the loop's checks; a check running now ends first. The last loop of a pacer
// stops its goroutine. stop must be called once.
func (e *paced) stop() {
	pacersMu.Lock()
	p := e.p
	p.mu.Lock()
	last := len(p.ents) - 1
	p.ents[e.i], p.due[e.i] = p.ents[last], p.due[last]
	p.ents[e.i].i = e.i
	p.ents, p.due = p.ents[:last], p.due[:last]
	empty := last == 0
	p.mu.Unlock()
	if empty {
		delete(pacers, p.interval)
	}
	pacersMu.Unlock()
	if empty {
		close(p.quit)
		<-p.done
	}
}

// run runs the checks as they come due until quit is closed.
func (p *pacer) run() {
	defer close(p.done)
	timer := time.NewTimer(p.interval)
	defer timer.Stop()
	next := never // the slot boundary the timer is set for
	for {
		select {
		case <-p.quit:
			return
		case <-p.kick:
		case <-timer.C:
			next = never
		}
		first := p.scan()
		if first == never {
			continue
		}
		if at := (first + p.slot - 1) / p.slot * p.slot; at != next {
			next = at
			timer.Reset(at - time.Since(clockBase))
		}
	}
}

// scan runs the checks that are due and returns the earliest due time left.
func (p *pacer) scan() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	wall := time.Now() // one clock read per scan: its checks share it
	now := wall.Sub(clockBase)
	first := never
	for i, due := range p.due {
		if due <= now {
			e := p.ents[i]
			stop := e.check(wall)
			if e.observe != nil {
				// An observed check's end is the next check's start: one more clock read
				// per check, and only while checks are observed.
				end := time.Now()
				e.observe(wall, end.Sub(wall))
				wall = end
			}
			if stop {
				due = never
			} else {
				due += p.interval
				if due <= now {
					due += (now - due + p.interval) / p.interval * p.interval
				}
			}
			p.due[i] = due
		}
		first = min(first, due)
	}
	return first
}
