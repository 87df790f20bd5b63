package main

import (
	"context"
	"errors"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/fsnotify/fsnotify"
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
			"and the running config stays. A restarted serve adopts what is still there (objects,\n" +
			"and supervised programs still running). With a [tcp_watchdog] table it also serves the\n" +
			"seeds' TCP watchdog protocol: a client's feeds of a worker's name are that worker's beats.\n" +
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
			return usagef(c, "invalid --listen: %v", strings.TrimPrefix(err.Error(), "config: "))
		}
	}
	file, err := config.Load(path)
	if err != nil {
		return cli.Exit("shmmon serve: invalid config:\n"+err.Error(), exitUsage)
	}
	if listen == "" {
		listen = file.Serve.Listen
	}
	log := newLogger(c)
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Watch the directory, not the file: editors that save by writing a new file and
	// renaming it over the old one would leave a watch on the file itself behind.
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return failf(c, "watching %s: %v", path, err)
	}
	defer watcher.Close()
	if err := watcher.Add(filepath.Dir(path)); err != nil {
		return failf(c, "watching %s: %v", filepath.Dir(path), err)
	}

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
	reload := func(why string) {
		file, err := config.Load(path)
		reloaded(err)
		if err != nil {
			log.Error("config reload failed; the running config stays", "config", path, "why", why,
				"event", "reload-failed", "err", strings.ReplaceAll(err.Error(), "\n", "; "))
			return
		}
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
	// A save is often several events (truncate, write, rename): reload once they settle.
	var settle <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			reload("SIGHUP")
		case ev := <-watcher.Events:
			if filepath.Clean(ev.Name) == path && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename|fsnotify.Remove) != 0 {
				settle = time.After(100 * time.Millisecond)
			}
		case <-settle:
			settle = nil
			if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
				reloaded(err)
				log.Error("config file removed; the running config stays", "config", path, "event", "reload-failed")
				continue
			}
			reload("file changed")
		case err := <-watcher.Errors:
			log.Error("watching the config file", "config", path, "err", err)
		}
	}
}
