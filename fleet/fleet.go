// Package fleet runs the workers of a configuration file in one monitor process, the engine
// of `shmmon serve`.
//
// A supervised worker (config.Worker.Command) runs under a [supervise.Supervisor] on a
// goroutine of its own. A watched-only one (Pid or PidFile) has no goroutine: it is a
// started [monitor.Watch], whose checks run on one goroutine shared by the watched-only
// workers of an interval, and a timer while it waits for its pidfile, so a fleet of
// thousands of watched processes costs memory per worker, not a goroutine stack each.
// A pidfile is read through package pidfile, whose rules decide whether it is trusted: one
// refused (another user could have written it, or it names another user's process) is logged
// once per reason (event pidfile-refused) and read again every interval, as one that names no
// process yet is (event pid-unavailable); nothing is signalled meanwhile.
//
// [Fleet.Apply] moves the running set to a new configuration: it starts the workers that
// were added, stops the ones that were removed, restarts the ones whose configuration
// changed, and leaves the unchanged ones alone (same process, same object, not a beat
// missed). Every worker adopts what a previous monitor left (its object, and
// for a supervised worker its still-running program), so restarting serve neither kills
// nor duplicates healthy workers.
//
// Each worker's counts (starts, restarts, kills, how its last run ended, whether its loop is
// checking) are its monitor.Worker's books; [Fleet.Status] returns them with the worker's
// status record. The counts live as long as the worker's name stays in the configuration: a
// worker restarted because its configuration changed (or a watched worker's next process)
// goes on from the books of the last, a removed one loses them. The fleet runs the worker's
// event hooks (see package hook) from its monitor's events; hooks that change on reload are
// taken without restarting the worker.
//
// The workers' dependencies (config.Deps: after, binds_to) order their starts and stops (see
// deps.go): a worker that needs others is held (published, its program not started) until
// they are ready, waiting ([WorkerStatus.WaitingFor]); [Fleet.Apply] and [Fleet.Stop] stop a
// worker before the ones it needs; a worker bound to another is stopped when that one's run
// ends and started again once it is ready.
//
// The control actions of shmmon ctl act on one member ([Fleet.StartWorker],
// [Fleet.StopWorker], [Fleet.RestartWorker], [Fleet.SignalWorker]; see control.go): through
// its supervisor's requests, or by holding and releasing a watched worker. A worker stopped so
// stays stopped across reloads that leave it unchanged.
//
// What the probes of serve's HTTP endpoint answer is judged here, from a worker's status:
// whether it is down for good ([WorkerStatus.DownForGood], /healthz/NAME) and whether it
// counts as ready ([WorkerStatus.ReadyNow], /readyz).
//
// The fleet owns what its workers share: the TCP watchdog's server, whose registry of names
// (source.TCP) every worker joins for as long as it runs, the sweep of the System V
// process table, which leaves alone the records of programs of heartbeat "proctab" (their
// supervisors judge them), and the cgroups below which each supervised worker's runs get one
// of their own ([Fleet.SetCgroups]). A worker's resource limits are its monitor's to judge
// (see monitor.Worker.CheckLimits); the hook on_limit runs when it goes over one, or when the
// kernel's OOM killer kills in its cgroup.
package fleet

import (
	"context"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/shmmon/shmmon/cgroup"
	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/hook"
	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/proctab"
	"github.com/shmmon/shmmon/source"
	"github.com/shmmon/shmmon/supervise"
)

// Fleet is the set of running workers. The zero value is not usable: create it with [New].
// Its methods are safe for concurrent use.
type Fleet struct {
	log     *slog.Logger
	mu      sync.Mutex
	members map[string]*member
	sweeper *sweeper // nil when no process table is swept
	hooks   hook.Runner
	tcp     *source.TCP // the workers whose names the TCP watchdog accepts

	// bmu guards the entries, which the monitors' callbacks and Status use; it is never held
	// while waiting for anything.
	bmu     sync.Mutex
	entries map[string]*entry
	onCheck func(worker string, took time.Duration)
	proctab *config.Proctab // the table swept, for ProctabRecords; nil = none

	guard *proctab.Guard // the running sweeper's; nil = none
	// lockTimeouts counts the lock timeouts of the sweepers stopped (see ProctabHealth).
	lockTimeouts uint64

	tcpwd *tcpWatchdog // nil when no TCP watchdog runs

	stopped bool            // Stop was called: the control actions start nothing any more; guarded by mu
	deps    *orderer        // orders the starts and stops by the workers' dependencies (deps.go)
	cgroups *cgroup.Manager // the supervised workers' cgroups; nil = none (set before Apply)
}

// SetCgroups gives the supervised workers (those of cgroup = true) a cgroup of their own for
// each run, below m (see package cgroup); nil, the default, gives none. Call it before the
// first [Fleet.Apply].
func (f *Fleet) SetCgroups(m *cgroup.Manager) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cgroups = m
}

// member is one running worker.
type member struct {
	w      *config.Worker // shared with the worker's entry
	cancel func()         // stops the worker; done closes once it has stopped
	done   chan struct{}
	// worker returns the worker's monitor worker now, or nil; after done, the last one.
	worker func() *monitor.Worker
	sup    *supervise.Supervisor // a supervised worker's; nil for a watched one
	x      *watched              // a watched worker's; nil for a supervised one
	ctl    sync.Mutex            // serialises the control actions on the member (see control.go)
	gmu    sync.Mutex            // guards gate
	gate   gate                  // a supervised member's dependencies' hold on it (see deps.go)
}

// New returns an empty fleet that logs to log.
func New(log *slog.Logger) *Fleet {
	f := &Fleet{log: log, members: map[string]*member{}, entries: map[string]*entry{}, tcp: source.NewTCP()}
	f.hooks.Logger = log
	f.deps = newOrderer(f)
	return f
}

// Changes counts what [Fleet.Apply] did. A worker whose hooks alone changed is Unchanged.
type Changes struct{ Started, Stopped, Restarted, Unchanged int }

// Apply makes ws the running workers: added ones are started, removed ones stopped (their
// programs stopped and objects removed), changed ones stopped and started again, unchanged
// ones left alone (new hooks and dependencies, if any, apply from now on). A worker that needs
// others is started once they are ready, and stopped before them (see deps.go). It returns
// once the stopped workers have stopped.
func (f *Fleet) Apply(ws []config.Worker) Changes {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ch Changes
	// One copy of each worker's configuration, shared by its member, entry and loop.
	want := make(map[string]*config.Worker, len(ws))
	for _, w := range ws {
		want[w.Name] = &w
	}
	// Stop what goes, at once but for the order of the dependencies: each stop may wait its
	// worker's kill-after.
	going := map[string]*member{}
	for name, m := range f.members {
		if w, ok := want[name]; !ok || !w.EqualExceptLive(*m.w) {
			going[name] = m
			delete(f.members, name)
			if ok {
				ch.Restarted++
			} else {
				ch.Stopped++
				f.log.Info("worker removed from the config: stopping it", "worker", name, "event", "config-remove")
			}
		}
	}
	f.stopAll(going)
	f.keepEntries(want)
	for _, cw := range ws {
		w := want[cw.Name]
		if m, ok := f.members[w.Name]; ok {
			if w.Hooks != m.w.Hooks {
				f.log.Info("hooks changed; the worker keeps running", "worker", w.Name, "event", "config-hooks")
			}
			if !reflect.DeepEqual(w.Deps, m.w.Deps) {
				f.log.Info("dependencies changed; the worker keeps running", "worker", w.Name, "event", "config-deps",
					"after", w.After, "binds_to", w.BindsTo)
			}
			m.w = w
			ch.Unchanged++
			continue
		}
		if err := f.start(w); err != nil {
			f.log.Error("cannot start worker", "worker", w.Name, "err", err)
			continue
		}
		ch.Started++
	}
	ch.Started -= ch.Restarted // a changed worker was counted as stopped and started
	for _, w := range ws {
		if len(w.Needs()) > 0 {
			f.deps.ensure()
			break
		}
	}
	return ch
}

// Stop stops every worker (programs stopped, objects removed; a worker before the workers it
// needs), the process table sweep and then the TCP watchdog, and waits for them. Hooks still running are waited for (each ends at
// its timeout at the latest).
func (f *Fleet) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	f.deps.halting.Store(true)
	f.stopSweeper()
	f.stopAll(f.members)
	clear(f.members)
	f.deps.stop()
	f.stopTCPWatchdog()
	f.keepEntries(nil)
	f.hooks.Wait()
}

// stop stops the member and keeps the books of its last worker in its entry, for the next
// member of its name to go on from.
func (f *Fleet) stopMember(m *member) {
	m.cancel()
	<-m.done
	f.bmu.Lock()
	defer f.bmu.Unlock()
	if e := f.entries[m.w.Name]; e != nil && e.cur == m {
		if mw := m.worker(); mw != nil {
			b := mw.Books()
			e.last = &b
		}
		if m.sup != nil {
			e.logDropped += m.sup.LogDropped()
		}
		e.cur = nil
	}
}

// start starts one worker. f.mu must be held.
func (f *Fleet) start(w *config.Worker) error {
	m := &member{w: w, done: make(chan struct{})}
	log := f.log
	if !w.Supervised() {
		x := &watched{f: f, w: w, log: log, done: m.done}
		m.cancel, m.worker, m.x = x.stop, x.worker, x
		f.track(w.Name, m)
		x.start()
		f.members[w.Name] = m
		return nil
	}
	opts := w.SupervisorOptions()
	opts.Monitor = f.observe(w.Name, opts.Monitor)
	opts.Adopt, opts.Logger = true, log
	opts.TCP, opts.Proctab, opts.Books = f.tcp, f.proctabOptions(), f.carry(w.Name)
	if w.Cgroup {
		opts.Cgroups = f.cgroups
	}
	if len(w.Needs()) > 0 {
		// Its dependencies' orderer starts it once they are ready.
		opts.Held = true
		m.gate = gate{parked: true, since: time.Now()}
	}
	s, err := supervise.New(w.Name, opts)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.worker, m.sup = cancel, s.Worker, s
	f.track(w.Name, m)
	go func() {
		defer close(m.done)
		out, err := s.Run(ctx)
		if out != supervise.Stopped {
			log.Error("worker no longer supervised (change its config to try again)", "worker", w.Name,
				"event", "supervision-ended", "outcome", out, "err", err)
		}
	}()
	f.members[w.Name] = m
	return nil
}
