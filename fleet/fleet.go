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
// The fleet keeps books on every worker from its monitor's events: starts, restarts,
// kills, how its last run ended, whether its loop is checking (and when it last did, from
// the status record), and the pid of the process it runs or watches, which
// [Fleet.WorkerRoot] gives the TCP watchdog. [Fleet.Status] returns them with the worker's
// status record. The counts live as long as the worker's name stays in the configuration: a
// worker restarted because its configuration changed keeps them, a removed one loses them.
// The fleet also runs the worker's event hooks (see package hook); hooks that change on
// reload are taken without restarting the worker.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/hook"
	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/pidfile"
	"github.com/shmmon/shmmon/proc"
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

	// bmu guards the books, which the monitors' callbacks and Status use; it is never held
	// while waiting for anything.
	bmu     sync.Mutex
	books   map[string]*books
	onCheck func(worker string, took time.Duration)
	proctab *config.Proctab // the table swept, for ProctabRecords; nil = none

	ptHealth ProctabHealth // how that table's sweep goes, but for Sweeping (see ProctabHealth)

	tcpwd *tcpWatchdog                    // nil when no TCP watchdog runs
	names atomic.Pointer[map[string]bool] // the workers' names, for WorkerRoot
}

// member is one running worker.
type member struct {
	w      *config.Worker // shared with the worker's books
	cancel func()         // stops the worker; done closes once it has stopped
	done   chan struct{}
}

// New returns an empty fleet that logs to log.
func New(log *slog.Logger) *Fleet {
	f := &Fleet{log: log, members: map[string]*member{}, books: map[string]*books{}}
	f.hooks.Logger = log
	return f
}

// Changes counts what [Fleet.Apply] did. A worker whose hooks alone changed is Unchanged.
type Changes struct{ Started, Stopped, Restarted, Unchanged int }

// Apply makes ws the running workers: added ones are started, removed ones stopped (their
// programs stopped and objects removed), changed ones stopped and started again, unchanged
// ones left alone (new hooks, if any, apply from now on). It returns once the stopped
// workers have stopped.
func (f *Fleet) Apply(ws []config.Worker) Changes {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ch Changes
	// One copy of each worker's configuration, shared by its member, books and loop.
	want := make(map[string]*config.Worker, len(ws))
	names := make(map[string]bool, len(ws))
	for _, w := range ws {
		want[w.Name] = &w
		names[w.Name] = true
	}
	f.names.Store(&names)
	// Stop what goes, all at once: each stop may wait its worker's kill-after.
	var wg sync.WaitGroup
	for name, m := range f.members {
		if w, ok := want[name]; !ok || !w.EqualExceptHooks(*m.w) {
			wg.Go(m.stop)
			delete(f.members, name)
			if ok {
				ch.Restarted++
			} else {
				ch.Stopped++
				f.log.Info("worker removed from the config: stopping it", "worker", name, "event", "config-remove")
			}
		}
	}
	wg.Wait()
	f.keepBooks(want)
	for _, cw := range ws {
		w := want[cw.Name]
		if m, ok := f.members[w.Name]; ok {
			if !w.Equal(*m.w) {
				m.w = w
				f.log.Info("hooks changed; the worker keeps running", "worker", w.Name, "event", "config-hooks")
			}
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
	return ch
}

// Stop stops every worker (programs stopped, objects removed), the process table sweep and
// then the TCP watchdog, and waits for them. Hooks still running are waited for (each ends at
// its timeout at the latest).
func (f *Fleet) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopSweeper()
	var wg sync.WaitGroup
	for name, m := range f.members {
		wg.Go(m.stop)
		delete(f.members, name)
	}
	wg.Wait()
	f.stopTCPWatchdog()
	f.keepBooks(nil)
	f.hooks.Wait()
}

func (m *member) stop() {
	m.cancel()
	<-m.done
}

// start starts one worker. f.mu must be held.
func (f *Fleet) start(w *config.Worker) error {
	m := &member{w: w, done: make(chan struct{})}
	log := f.log
	if !w.Supervised() {
		x := &watched{f: f, w: w, log: log, done: m.done}
		m.cancel = x.stop
		x.start()
		f.members[w.Name] = m
		return nil
	}
	opts := supervisorOptions(*w, log)
	opts.Monitor = f.observe(w.Name, opts.Monitor)
	s, err := supervise.New(w.Name, opts)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		// A program stopped for good sends no event of its end.
		defer f.setChecking(w.Name, 0)
		out, err := s.Run(ctx)
		if out != supervise.Stopped {
			log.Error("worker no longer supervised (change its config to try again)", "worker", w.Name,
				"event", "supervision-ended", "outcome", out, "err", err)
		}
	}()
	f.members[w.Name] = m
	return nil
}

func monitorOptions(w config.Worker) monitor.Options { return w.MonitorOptions() }

func supervisorOptions(w config.Worker, log *slog.Logger) supervise.Options {
	opts := w.SupervisorOptions()
	opts.Adopt, opts.Logger = true, log
	return opts
}

// watchedProcess takes hold of the process a watched-only worker names: its pid, or the one
// its pidfile names once package pidfile trusts the file and the process.
func watchedProcess(w config.Worker) (*proc.Process, error) {
	if w.PidFile != "" {
		return pidfile.Open(w.PidFile)
	}
	p, err := proc.Open(w.Pid)
	if errors.Is(err, proc.ErrNotExist) {
		return nil, fmt.Errorf("pid %d: no such process", w.Pid)
	}
	return p, err
}
