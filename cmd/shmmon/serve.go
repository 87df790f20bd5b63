package main

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/urfave/cli/v2"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/fleet"
	"github.com/shmmon/shmmon/httpapi"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:      "serve",
		Usage:     "supervise and watch many workers from a config file, reloaded live",
		UsageText: "shmmon serve --config shmmon.toml [--listen 127.0.0.1:9464]",
		Description: "Runs every [[worker]] of the config file (see examples/shmmon.toml): supervised ones\n" +
			"(command) as 'shmmon run' does, watched ones (pid, pidfile) as 'shmmon watch --pid' does.\n" +
			"The file is reloaded when it changes and on SIGHUP: added workers start, removed ones\n" +
			"stop, changed ones restart, unchanged ones are left alone; an invalid file is reported\n" +
			"and the running config stays, and so does it while the file is empty (a save in progress).\n" +
			"A config path through symbolic links (a Kubernetes ConfigMap) is reloaded when a link\n" +
			"changes too. The file must be a regular file of at most 16 MiB; a pidfile is trusted only\n" +
			"when nobody but root or serve's user could have written it (see the README).\n" +
			"A restarted serve adopts what is still there (objects, and supervised programs still\n" +
			"running). With a [tcp_watchdog] table it also serves the seeds' TCP watchdog protocol:\n" +
			"a client's feeds of a worker's name are that worker's beats.\n" +
			"Under systemd (NOTIFY_SOCKET) it sends READY=1, WATCHDOG=1 and STOPPING=1.\n" +
			"SIGINT/SIGTERM stop every worker and exit 0.\n" +
			"With --listen (or listen in the config's [serve] table) it serves /metrics (Prometheus),\n" +
			"/status (JSON) and /healthz over HTTP; see the README.",
		OnUsageError: usageError,
		Before:       checkUsage(false, "config"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "config `FILE` (TOML); required"},
			&cli.StringFlag{Name: "listen", Usage: "serve /metrics, /status and /healthz on `ADDR`: PORT or :PORT (127.0.0.1:PORT), " +
				"or HOST:PORT; overrides the config's [serve] listen"},
		},
		Action: serveAction,
	}
}

func serveAction(c *cli.Context) error {
	path, err := filepath.Abs(c.String("config"))
	if err != nil {
		return usagef(c, "--config %q: %v", c.String("config"), err)
	}
	listen := ""
	if l := c.String("listen"); l != "" {
		if listen, err = config.ListenAddress(l); err != nil {
			return usagef(c, "invalid --listen: %v", err)
		}
	}
	file, err := config.Load(path)
	if err != nil {
		if ce := (*config.Error)(nil); !errors.As(err, &ce) {
			// Not read at all (missing, not a regular file, too large): one line says why.
			return cli.Exit("shmmon serve: "+err.Error(), exitUsage)
		}
		return cli.Exit("shmmon serve: invalid config:\n"+err.Error(), exitUsage)
	}
	if listen == "" {
		listen = file.Serve.Listen
	}
	log := newLogger(c)
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()

	watcher, err := config.Watch(path)
	if err != nil {
		return failf(c, "%s", strings.TrimPrefix(err.Error(), "config: "))
	}
	defer watcher.Close()

	f := fleet.New(log)
	var api *httpapi.Server
	if listen != "" {
		// Listen before starting any worker: a port in use is an error at the start.
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return failf(c, "listen on %s: %v", listen, err)
		}
		api = httpapi.New(f)
		f.ObserveChecks(api.ObserveCheck)
		hctx, hstop := context.WithCancel(ctx)
		done := make(chan struct{})
		defer func() { hstop(); <-done }() // after the workers stopped (deferred later, run earlier)
		go func() {
			defer close(done)
			if err := api.Serve(hctx, ln); err != nil {
				log.Error("HTTP endpoint failed; /metrics, /status and /healthz are gone", "addr", ln.Addr().String(), "err", err)
			}
		}()
		log.Info("serving /metrics, /status and /healthz", "addr", ln.Addr().String(), "event", "listen")
	}
	// The TCP watchdog too listens before any worker starts.
	if err := f.SetTCPWatchdog(file.TCPWatchdog); err != nil {
		return failf(c, "%s", strings.TrimPrefix(err.Error(), "fleet: "))
	}
	ch := f.Apply(file.Workers)
	f.SetProctab(file.Proctab)
	// Starting thousands of workers leaves garbage (the parsed file, publishing) that a
	// monitor whose checks allocate nothing would keep mapped for its whole life.
	debug.FreeOSMemory()
	log.Info("serving", "config", path, "workers", len(file.Workers), "started", ch.Started, "event", "serve")
	defer func() {
		daemon.SdNotify(false, daemon.SdNotifyStopping)
		log.Info("stopping every worker", "event", "serve-stop")
		f.Stop()
	}()
	daemon.SdNotify(false, daemon.SdNotifyReady)

	// The watchdog pings come from a goroutine of their own: a reload may wait for workers
	// to stop (each up to its kill_after), and systemd must not take that for a hang.
	if d, err := daemon.SdWatchdogEnabled(false); err == nil && d > 0 {
		go func() {
			t := time.NewTicker(d / 2)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					daemon.SdNotify(false, daemon.SdNotifyWatchdog)
				}
			}
		}()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	reloaded := func(err error) {
		if api != nil {
			api.Reloaded(err)
		}
	}
	firstListen := file.Serve.Listen
	// reload never blocks on the file: Load neither waits on a FIFO nor reads more than
	// config.MaxSize. It may wait for workers to stop (each up to its kill_after).
	reload := func(why string) {
		file, err := config.Load(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			reloaded(err)
			log.Error("config file removed; the running config stays", "config", path, "why", why, "event", "reload-failed")
			return
		case err != nil:
			reloaded(err)
			log.Error("config reload failed; the running config stays", "config", path, "why", why,
				"event", "reload-failed", "err", strings.ReplaceAll(err.Error(), "\n", "; "))
			return
		case file.Size == 0:
			// Editors that save in place truncate the file, then write it: stopping every
			// worker for the moment between would be wrong. The write is the next change.
			log.Warn("config file is empty, a save in progress: the running config stays until the next change",
				"config", path, "why", why, "event", "reload-deferred")
			return
		}
		reloaded(nil)
		if file.Serve.Listen != firstListen {
			log.Warn("[serve] listen changed: restart serve to apply it", "config", path, "listen", file.Serve.Listen,
				"serving", listen, "event", "listen-changed")
		}
		ch := f.Apply(file.Workers)
		f.SetProctab(file.Proctab)
		if err := f.SetTCPWatchdog(file.TCPWatchdog); err != nil {
			log.Error("tcp watchdog not running; the next reload tries again", "config", path, "event", "tcp-listen-failed", "err", err)
		}
		log.Info("config reloaded", "config", path, "why", why, "event", "reload", "started", ch.Started,
			"stopped", ch.Stopped, "restarted", ch.Restarted, "unchanged", ch.Unchanged)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			reload("SIGHUP")
		case <-watcher.C:
			reload("file changed")
		case err := <-watcher.Errors:
			log.Error("watching the config file", "config", path, "err", err)
		}
	}
}
