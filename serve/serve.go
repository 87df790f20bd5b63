// Package serve is `shmmon serve`: one monitor process for every worker of a configuration
// file. [Run] composes it from actors, each with an owner and a way to stop (an oklog/run
// Group), and returns only once every goroutine it started has returned:
//
//   - the workers (package fleet: supervised programs, watched processes, the process table's
//     sweep, the TCP watchdog), stopped last but for the endpoint: SIGTERM stops every
//     supervised program (its signal, then SIGKILL after its kill_after; a worker before the
//     workers it needs, see fleet's dependencies) and removes the objects; where serve can
//     make cgroups (package cgroup, logged once at the start), each supervised worker runs in
//     one of its own;
//   - the reload loop: the file is read again when it changes (config.Watch, which follows
//     symbolic links) and on SIGHUP; an invalid, unreadable or empty file keeps the running
//     configuration;
//   - the HTTP endpoint (package httpapi), when a listen address is set: it answers until the
//     workers have stopped;
//   - under systemd (NOTIFY_SOCKET), the watchdog's pings, at half of WATCHDOG_USEC, from a
//     goroutine of their own (a reload may wait for workers to stop, each up to its
//     kill_after, and systemd must not take that for a hang); READY=1 once the workers are
//     started, STOPPING=1 when they begin to stop;
//   - the control socket (package control; shmmon ctl), unless no path applies: its actions
//     go through the fleet (start, stop, restart, signal), the reload loop (reload) and the
//     workers' log files (logs), and each is logged (event=control, with the action, the
//     worker and the peer's uid and pid). It stops before the workers do, so that no action
//     starts anything once they are stopping.
package serve

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/oklog/run"

	"github.com/shmmon/shmmon/cgroup"
	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/control"
	"github.com/shmmon/shmmon/fleet"
	"github.com/shmmon/shmmon/httpapi"
)

// Options configure [Run].
type Options struct {
	Config string // the configuration file, an absolute path
	// Listen is the HTTP endpoint's address (see config.ListenAddress), overriding the
	// file's [serve] listen; "" means the file's.
	Listen string
	// Control is the control socket's path, overriding the file's [serve] control; "" means
	// the file's, else control.DefaultPath().
	Control string
	Logger  *slog.Logger // nil means slog.Default()
}

// ConfigError is the error of [Run] when the file cannot be used at start: it is invalid
// (Err joins config.Error values, one per problem), or cannot be read at all.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }

// Unwrap returns the configuration's error.
func (e *ConfigError) Unwrap() error { return e.Err }

// Run loads the configuration, starts its workers and the other actors, and serves until ctx
// is done; then it stops every worker, waits for every actor, and returns nil. At start, a
// file that cannot be used is a [*ConfigError]; an address that cannot be listened on (the
// endpoint's, the TCP watchdog's) another error, and nothing is started.
func Run(ctx context.Context, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	file, err := config.Load(opts.Config)
	if err != nil {
		return &ConfigError{err}
	}
	listen := opts.Listen
	if listen == "" {
		listen = file.Serve.Listen
	}
	watcher, err := config.Watch(opts.Config)
	if err != nil {
		return err
	}
	defer watcher.Close()

	// SIGHUP is a reload from now on, not the end of the process (its default).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	f := fleet.New(log)
	s := &server{opts: opts, log: log, f: f, watcher: watcher, hup: hup, listen: listen, firstListen: file.Serve.Listen,
		firstServe: file.Serve, reloadReqs: make(chan chan reloadResult)}
	var ln net.Listener
	if listen != "" {
		// Listen before starting any worker: a port in use is an error at the start.
		if ln, err = net.Listen("tcp", listen); err != nil {
			return fmt.Errorf("serve: listen on %s: %w", listen, err)
		}
		s.api = httpapi.New(f)
		f.ObserveChecks(s.api.ObserveCheck)
	}
	// The control socket listens before any worker starts too: a live serve at its path is an
	// error at the start.
	ctl, err := s.listenControl(file.Serve)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	defer func() {
		if ctl != nil {
			ctl.Close()
		}
	}()
	// The TCP watchdog too listens before any worker starts.
	if err := f.SetTCPWatchdog(file.TCPWatchdog); err != nil {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	// Before any worker starts: each may get a cgroup of its own.
	if m := cgroup.Setup(log); m != nil {
		defer m.Close() // once Run's actors, the workers among them, have stopped
		f.SetCgroups(m)
	}
	srv := ctl
	ctl = nil // from here on, the control actor closes it
	// The table first: workers of heartbeat "proctab" read it.
	f.SetProctab(file.Proctab)
	ch := f.Apply(file.Workers)
	// Starting thousands of workers leaves garbage (the parsed file, publishing, then the
	// first round of checks' events) that a monitor whose checks allocate nothing would keep
	// mapped for its whole life: it is returned now, and once more after that round.
	debug.FreeOSMemory()
	firstRound := time.AfterFunc(firstRoundOver(file.Workers), debug.FreeOSMemory)
	defer firstRound.Stop()
	log.Info("serving", "config", opts.Config, "workers", len(file.Workers), "started", ch.Started, "event", "serve")
	daemon.SdNotify(false, daemon.SdNotifyReady)

	var g run.Group
	// The signals: the group ends when ctx does.
	sctx, scancel := context.WithCancel(ctx)
	g.Add(func() error { <-sctx.Done(); return nil }, func(error) { scancel() })
	// The reload loop.
	rctx, rcancel := context.WithCancel(context.Background())
	reloads := make(chan struct{})
	g.Add(func() error { defer close(reloads); s.reloadLoop(rctx); return nil }, func(error) { rcancel() })
	// The control socket: it stops before the workers, so that no action of its starts
	// anything once they are stopping.
	controlled := make(chan struct{})
	if srv != nil {
		cctx, ccancel := context.WithCancel(context.Background())
		g.Add(func() error {
			defer close(controlled)
			log.Info("serving the control socket", "path", srv.Path(), "event", "control-listen")
			if err := srv.Serve(cctx, control.HandlerFunc(s.handle)); err != nil {
				log.Error("control socket failed; shmmon ctl cannot reach serve", "path", srv.Path(), "err", err)
				<-cctx.Done()
			}
			return nil
		}, func(error) { ccancel() })
	} else {
		close(controlled)
	}
	// The workers: stopped once no reload and no control action is under way.
	wctx, wcancel := context.WithCancel(context.Background())
	workers := make(chan struct{})
	g.Add(func() error {
		defer close(workers)
		<-wctx.Done()
		<-reloads
		<-controlled
		daemon.SdNotify(false, daemon.SdNotifyStopping)
		log.Info("stopping every worker", "event", "serve-stop")
		f.Stop()
		return nil
	}, func(error) { wcancel() })
	// systemd's watchdog.
	if d, err := daemon.SdWatchdogEnabled(false); err == nil && d > 0 {
		dctx, dcancel := context.WithCancel(context.Background())
		g.Add(func() error { pingWatchdog(dctx, d/2); return nil }, func(error) { dcancel() })
	}
	// The endpoint: it answers until the workers have stopped.
	if s.api != nil {
		hctx, hcancel := context.WithCancel(context.Background())
		g.Add(func() error {
			log.Info("serving /metrics, /status and /healthz", "addr", ln.Addr().String(), "event", "listen")
			if err := s.api.Serve(hctx, ln); err != nil {
				log.Error("HTTP endpoint failed; /metrics, /status and /healthz are gone", "addr", ln.Addr().String(), "err", err)
				<-hctx.Done()
			}
			return nil
		}, func(error) { <-workers; hcancel() })
	}
	return g.Run()
}

// server is the state the actors share.
type server struct {
	opts        Options
	log         *slog.Logger
	f           *fleet.Fleet
	api         *httpapi.Server // nil without an endpoint
	watcher     *config.Watcher
	hup         chan os.Signal
	listen      string // the endpoint's address; "" none
	firstListen string // the file's [serve] listen at start
	firstServe  config.Serve
	// reloadReqs are the reloads the control socket asks the reload loop for.
	reloadReqs chan chan reloadResult
}

// pingWatchdog sends WATCHDOG=1 every period until ctx is done.
func pingWatchdog(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			daemon.SdNotify(false, daemon.SdNotifyWatchdog)
		}
	}
}

// reloadLoop reloads the file when it changes and on SIGHUP, until ctx is done.
func (s *server) reloadLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.hup:
			s.reload("SIGHUP")
		case r := <-s.reloadReqs:
			r <- s.reload("shmmon ctl reload")
		case <-s.watcher.C:
			s.reload("file changed")
		case err := <-s.watcher.Errors:
			s.log.Error("watching the config file", "config", s.opts.Config, "err", err)
		}
	}
}

// reloadResult is what a reload did: Changes when it applied the file, else Err says why the
// running configuration stays.
type reloadResult struct {
	fleet.Changes
	Err error
}

// reload reads the file again and applies it, for why, and says what it did. It never blocks
// on the file: Load neither waits on a FIFO nor reads more than config.MaxSize. It may wait
// for workers to stop (each up to its kill_after).
func (s *server) reload(why string) reloadResult {
	path, log := s.opts.Config, s.log
	file, err := config.Load(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.reloaded(err)
		log.Error("config file removed; the running config stays", "config", path, "why", why, "event", "reload-failed")
		return reloadResult{Err: fmt.Errorf("%w; the running config stays", err)}
	case err != nil:
		s.reloaded(err)
		log.Error("config reload failed; the running config stays", "config", path, "why", why,
			"event", "reload-failed", "err", strings.ReplaceAll(err.Error(), "\n", "; "))
		return reloadResult{Err: err}
	case file.Size == 0:
		// Editors that save in place truncate the file, then write it: stopping every
		// worker for the moment between would be wrong. The write is the next change.
		log.Warn("config file is empty, a save in progress: the running config stays until the next change",
			"config", path, "why", why, "event", "reload-deferred")
		return reloadResult{Err: fmt.Errorf("%s is empty (a save in progress?): the running config stays", path)}
	}
	s.reloaded(nil)
	if file.Serve.Listen != s.firstListen {
		log.Warn("[serve] listen changed: restart serve to apply it", "config", path, "listen", file.Serve.Listen,
			"serving", s.listen, "event", "listen-changed")
	}
	if !sameControl(file.Serve, s.firstServe) {
		log.Warn("[serve] control or control_group changed: restart serve to apply it", "config", path,
			"event", "control-changed")
	}
	s.f.SetProctab(file.Proctab)
	ch := s.f.Apply(file.Workers)
	if err := s.f.SetTCPWatchdog(file.TCPWatchdog); err != nil {
		log.Error("tcp watchdog not running; the next reload tries again", "config", path, "event", "tcp-listen-failed", "err", err)
	}
	log.Info("config reloaded", "config", path, "why", why, "event", "reload", "started", ch.Started,
		"stopped", ch.Stopped, "restarted", ch.Restarted, "unchanged", ch.Unchanged)
	return reloadResult{Changes: ch}
}

// reloaded counts a reload in the endpoint's metrics.
func (s *server) reloaded(err error) {
	if s.api != nil {
		s.api.Reloaded(err)
	}
}

// firstRoundOver is how long after the start every worker of ws has had its first checks:
// two of the longest interval past the longest grace, at most a minute.
func firstRoundOver(ws []config.Worker) time.Duration {
	var d time.Duration
	for _, w := range ws {
		d = max(d, w.Grace+2*w.Interval)
	}
	return min(d, time.Minute)
}
