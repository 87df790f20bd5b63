package fleet

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/supervise"
)

// The dependencies of the workers (config.Deps) order their starts and stops:
//
//   - A supervised worker that needs others (after, binds_to) is started held
//     (supervise.Options.Held): its object is published, its program is not started until
//     every worker it needs is ready (monitor.Books.Ready: READY=1, a first beat, a run
//     without a hang verdict). Meanwhile its status says waiting, with the names it waits
//     for ([WorkerStatus.WaitingFor]) — a dependency that gave up reads "db (given up)" —
//     and so does its object's status text (shmmon ls). A dependency not ready within its
//     ready_timeout of its start (or of the wait's) is logged once a run (event=not-ready);
//     the worker keeps waiting.
//   - binds_to: once the worker runs, the end of a run of a worker it is bound to (killed as
//     hung, exited, stopped, given up) stops it (event=dependency-stop) and parks it again:
//     it is started once that worker is ready again. Without binds_to, a dependency's
//     restart leaves its dependents alone.
//   - Stops go in reverse: serve's stop and a reload stop a worker only once the workers
//     that need it and are stopped with it have stopped ([Fleet.StopOrder] orders those of
//     shmmon ctl stop).
//   - A control action takes precedence: a worker stopped with shmmon ctl stop is not started
//     by its dependencies; ctl start (or restart) starts a waiting worker at once.
//
// One goroutine, the orderer's, looks at the workers that need others whenever a worker's
// event may change a readiness, and every [orderTick]; its starts and stops run on
// goroutines of their own, one at a time per worker (with the control actions).

// orderTick is how often the orderer looks at the workers even without an event: for the
// ready timeouts, and readiness that changed without one (the end of a run).
const orderTick = 100 * time.Millisecond

// gate is where the dependencies have a supervised member; its member's gmu guards it.
type gate struct {
	parked bool      // held until what it needs is ready: the orderer starts it
	since  time.Time // when it began to wait
	opHeld bool      // stopped by a control action: the orderer starts nothing
	busy   bool      // a start or stop of the orderer's is under way
	// bound is the run (its start time) of each worker it is bound to, as it was when it
	// was started: another run, or none ready, means that run ended.
	bound map[string]time.Time
	told  map[string]time.Time // the run of each dependency whose lateness was logged
}

// orderer starts the workers waiting for their dependencies and stops those bound to a
// worker whose run ended (see the comment above).
type orderer struct {
	f       *Fleet
	kick    chan struct{} // buffered: a pass is due
	halting atomic.Bool   // serve is stopping: start nothing
	once    sync.Once
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{} // closed once the loop returned
	acts    sync.WaitGroup
}

func newOrderer(f *Fleet) *orderer {
	ctx, cancel := context.WithCancel(context.Background())
	return &orderer{f: f, kick: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// ensure starts the loop, once, and asks for a pass.
func (o *orderer) ensure() {
	o.once.Do(func() { go o.loop() })
	o.poke()
}

// poke asks for a pass; it never blocks.
func (o *orderer) poke() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// stop ends the loop and waits for it and its actions. Call it once the members have
// stopped (their supervisors' ends answer the actions' requests).
func (o *orderer) stop() {
	o.halting.Store(true)
	o.once.Do(func() { close(o.done) }) // never started: nothing to wait for
	o.cancel()
	<-o.done
	o.acts.Wait()
}

func (o *orderer) loop() {
	defer close(o.done)
	t := time.NewTicker(orderTick)
	defer t.Stop()
	for {
		select {
		case <-o.ctx.Done():
			return
		case <-o.kick:
		case <-t.C:
		}
		o.pass(time.Now())
	}
}

// action is a start or a stop the orderer decided.
type action struct {
	name  string
	m     *member
	start bool
	bound map[string]time.Time // start: the runs it is bound to
	dep   string               // stop: the worker whose run ended
}

// pass looks at every worker that needs others, and acts.
func (o *orderer) pass(now time.Time) {
	f := o.f
	if o.halting.Load() {
		return
	}
	var acts []action
	f.bmu.Lock()
	for name, e := range f.entries {
		needs := e.w.Needs()
		m := e.cur
		if m == nil || m.sup == nil {
			e.setWaiting(nil)
			continue
		}
		if len(needs) == 0 {
			// Needs nothing: only one parked before a reload took its dependencies away
			// is of the orderer's.
			m.gmu.Lock()
			parked := m.gate.parked
			m.gmu.Unlock()
			if !parked {
				e.setWaiting(nil)
				continue
			}
		}
		mw := m.worker()
		if mw == nil {
			continue // not published yet
		}
		b := mw.Books()
		m.gmu.Lock()
		g := &m.gate
		switch {
		case g.busy:
		case g.parked && b.Checking():
			g.parked = false // started by a control action
			e.setWaiting(nil)
		case g.parked && g.opHeld:
			e.setWaiting(nil)
		case g.parked:
			missing := f.missing(name, needs, g, now)
			e.setWaiting(missing)
			if len(missing) == 0 {
				g.busy = true
				acts = append(acts, action{name: name, m: m, start: true, bound: f.runs(e.w.BindsTo)})
			}
		default:
			e.setWaiting(nil)
			if !b.Checking() && b.Phase != monitor.Down && b.Phase != monitor.Backoff {
				break // not running, and not about to: nothing to stop
			}
			if g.bound == nil {
				g.bound = map[string]time.Time{}
			}
			for _, d := range e.w.BindsTo {
				db := f.booksOf(d)
				run, ok := g.bound[d]
				switch {
				case ok && (!db.Ready || !db.Since.Equal(run)):
					g.busy = true
					acts = append(acts, action{name: name, m: m, dep: d})
				case !ok && db.Ready:
					g.bound[d] = db.Since // bound from now on (started by a control action, or bound by a reload)
				}
				if g.busy {
					break
				}
			}
		}
		m.gmu.Unlock()
	}
	f.bmu.Unlock()
	for _, a := range acts {
		o.acts.Go(func() { o.do(a) })
	}
}

// missing returns the workers of needs that are not ready, a dependency that will not be
// without a control action said so ("db (given up)"), and logs the ones late by their
// ready_timeout. f.bmu and the waiting member's gmu are held.
func (f *Fleet) missing(name string, needs []string, g *gate, now time.Time) []string {
	out := []string{}
	for _, d := range needs {
		de := f.entries[d]
		if de == nil {
			out = append(out, d+" (not configured)")
			continue
		}
		db := de.books()
		if db.Ready {
			continue
		}
		switch db.Phase {
		case monitor.GaveUp:
			out = append(out, d+" (given up)")
			continue
		case monitor.Finished:
			out = append(out, d+" (finished)")
			continue
		case monitor.Held:
			if de.cur != nil && de.cur.stoppedByControl() { // else it waits for its own
				out = append(out, d+" (stopped)")
				continue
			}
		}
		out = append(out, d)
		from := g.since
		if db.Checking() && db.Since.After(from) {
			from = db.Since
		}
		// from only moves forward: a dependency is told late once a run of its (or once
		// the wait, while it does not run).
		if now.Sub(from) >= de.w.ReadyTimeout && from.After(g.told[d]) {
			if g.told == nil {
				g.told = map[string]time.Time{}
			}
			g.told[d] = from
			f.log.Warn("a dependency is not ready in time; still waiting for it", "worker", name, "dependency", d,
				"event", "not-ready", "waited", now.Sub(from).Round(time.Millisecond), "ready_timeout", de.w.ReadyTimeout)
		}
	}
	return out
}

// booksOf returns the books of the worker name; none (not ready) when the fleet has no such
// worker: a dependency the workers given to Apply do not have (config refuses that).
// f.bmu is held.
func (f *Fleet) booksOf(name string) monitor.Books {
	if e := f.entries[name]; e != nil {
		return e.books()
	}
	return monitor.Books{}
}

// stoppedByControl reports whether a control action stopped m (and nothing starts it until
// another). The orderer calls it with another member's gmu held: it alone takes two.
func (m *member) stoppedByControl() bool {
	m.gmu.Lock()
	defer m.gmu.Unlock()
	return m.gate.opHeld
}

// runs returns the current run (its start time) of each of names that is ready. f.bmu is
// held.
func (f *Fleet) runs(names []string) map[string]time.Time {
	out := make(map[string]time.Time, len(names))
	for _, d := range names {
		if db := f.booksOf(d); db.Ready {
			out[d] = db.Since
		}
	}
	return out
}

// do takes one action of the orderer's, as a control action would (one at a time on the
// member), unless a control action stopped the member meanwhile or serve is stopping.
func (o *orderer) do(a action) {
	m, name, log := a.m, a.name, o.f.log
	m.ctl.Lock()
	defer m.ctl.Unlock()
	m.gmu.Lock()
	ok := !m.gate.opHeld && !o.halting.Load()
	m.gmu.Unlock()
	var err error
	if ok && a.start {
		if mw := m.worker(); mw != nil {
			mw.SetStatus("") // the program's own STATUS= from now on
		}
		log.Info("its dependencies are ready: starting it", "worker", name, "event", "dependencies-ready")
		_, err = m.sup.Ask(o.ctx, supervise.RequestStart)
	} else if ok {
		log.Warn("a worker it is bound to ended: stopping it until that one is ready again", "worker", name,
			"dependency", a.dep, "event", "dependency-stop")
		_, err = m.sup.Ask(o.ctx, supervise.RequestStop)
	}
	if err != nil && ok {
		log.Debug("dependency action", "worker", name, "err", err)
	}
	m.gmu.Lock()
	g := &m.gate
	g.busy = false
	switch {
	case ok && a.start && err == nil:
		g.parked, g.bound = false, a.bound
	case ok && !a.start && err == nil:
		g.parked, g.since, g.bound, g.told = true, time.Now(), nil, nil
	}
	m.gmu.Unlock()
	o.poke()
}

// setWaiting records the workers e waits for (nil: it does not wait), and says so in its
// object's status text when that changed. f.bmu is held.
func (e *entry) setWaiting(names []string) {
	if slices.Equal(names, e.waiting) && (names == nil) == (e.waiting == nil) {
		return
	}
	e.waiting = names
	if e.cur == nil {
		return
	}
	if mw := e.cur.worker(); mw != nil && names != nil {
		mw.SetStatus(waitingText(names))
	}
}

// waitingText says what a worker waits for: "waiting for db, cache".
func waitingText(names []string) string {
	if len(names) == 0 {
		return "starting: its dependencies are ready"
	}
	return "waiting for " + strings.Join(names, ", ")
}

// StopOrder returns names (workers of the fleet; others are kept, in place) in the order to
// stop them: a worker before the workers it needs among them, otherwise in the order given.
func (f *Fleet) StopOrder(names []string) []string {
	f.bmu.Lock()
	needs := make(map[string][]string, len(names))
	for _, n := range names {
		if e := f.entries[n]; e != nil {
			needs[n] = e.w.Needs()
		}
	}
	f.bmu.Unlock()
	// A worker goes once no worker still to place needs it.
	out := make([]string, 0, len(names))
	left := slices.Clone(names)
	for len(left) > 0 {
		placed := false
		for i, n := range left {
			needed := false
			for _, o := range left {
				if o != n && slices.Contains(needs[o], n) {
					needed = true
					break
				}
			}
			if !needed {
				out = append(out, n)
				left = slices.Delete(left, i, i+1)
				placed = true
				break
			}
		}
		if !placed { // a cycle, which config refuses: keep the order given
			out = append(out, left...)
			break
		}
	}
	return out
}

// stopAll stops the members ms, by name, and waits: each once the members of ms that need it
// have stopped, the others at once. f.mu is held.
func (f *Fleet) stopAll(ms map[string]*member) {
	dependents := make(map[string][]string, len(ms))
	for name, m := range ms {
		for _, d := range m.w.Needs() {
			if _, ok := ms[d]; ok {
				dependents[d] = append(dependents[d], name)
			}
		}
	}
	stopped := make(map[string]chan struct{}, len(ms))
	for name := range ms {
		stopped[name] = make(chan struct{})
	}
	var wg sync.WaitGroup
	for name, m := range ms {
		wg.Go(func() {
			defer close(stopped[name])
			for _, d := range dependents[name] {
				<-stopped[d]
			}
			f.stopMember(m)
		})
	}
	wg.Wait()
}
