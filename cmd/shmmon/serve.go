package main

import (
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/control"
	"github.com/shmmon/shmmon/serve"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:      "serve",
		Usage:     "supervise and watch many workers from a config file, reloaded live",
		UsageText: "shmmon serve --config shmmon.toml [--listen 127.0.0.1:9464] [--control PATH]",
		Description: "Runs every [[worker]] of the config file (see examples/shmmon.toml): supervised ones\n" +
			"(command) as 'shmmon run' does, watched ones (pid, pidfile) as 'shmmon watch --pid' does.\n" +
			"The file is reloaded when it changes and on SIGHUP: added workers start, removed ones\n" +
			"stop, changed ones restart, unchanged ones are left alone; an invalid file is reported\n" +
			"and the running config stays, and so does it while the file is empty (a save in progress).\n" +
			"A config path through symbolic links (a Kubernetes ConfigMap) is reloaded when a link\n" +
			"changes too. The file must be a regular file of at most 16 MiB; a pidfile is trusted only\n" +
			"when nobody but root or serve's user could have written it (see the README).\n" +
			"A restarted serve adopts what is still there (objects, and supervised programs still\n" +
			"running). With a [tcp_watchdog] table it also serves the original framework's TCP watchdog protocol:\n" +
			"a client's feeds of a worker's name are that worker's beats.\n" +
			"Under systemd (NOTIFY_SOCKET) it sends READY=1, WATCHDOG=1 and STOPPING=1.\n" +
			"SIGINT/SIGTERM stop every worker and exit 0.\n" +
			"With --listen (or listen in the config's [serve] table) it serves /metrics (Prometheus),\n" +
			"/status (JSON), /healthz, /healthz/NAME and /readyz (Kubernetes probes) and a status page\n" +
			"at / over HTTP; see the README.\n" +
			"It listens on a control socket for 'shmmon ctl' (--control, else [serve] control, else\n" +
			"$SHMMON_CONTROL, else /run/shmmon/control.sock as root, $XDG_RUNTIME_DIR/shmmon/control.sock\n" +
			"otherwise); another serve answering there is an error at start.",
		OnUsageError: usageError,
		Before:       checkUsage(false, "config"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "config `FILE` (TOML); required"},
			&cli.StringFlag{Name: "listen", Usage: "serve /metrics, /status, the probes and the status page on `ADDR`: PORT or :PORT (127.0.0.1:PORT), " +
				"or HOST:PORT; overrides the config's [serve] listen"},
			&cli.StringFlag{Name: "control", Usage: "the control socket's `PATH` (shmmon ctl); overrides the config's [serve] control"},
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
	ctl := c.String("control")
	if ctl != "" {
		if ctl, err = filepath.Abs(ctl); err == nil {
			err = control.ValidatePath(ctl)
		}
		if err != nil {
			return usagef(c, "invalid --control: %s", stripPkg(err))
		}
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = serve.Run(ctx, serve.Options{Config: path, Listen: listen, Control: ctl, Logger: newLogger(c)})
	var ce *serve.ConfigError
	switch {
	case errors.As(err, &ce):
		if e := (*config.Error)(nil); !errors.As(ce.Err, &e) {
			// Not read at all (missing, not a regular file, too large): one line says why.
			return cli.Exit("shmmon serve: "+ce.Err.Error(), exitUsage)
		}
		return cli.Exit("shmmon serve: invalid config:\n"+ce.Err.Error(), exitUsage)
	case err != nil:
		return failf(c, "%s", stripPkg(err))
	}
	return nil
}
