package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/shmmon/shmmon/control"
	"github.com/shmmon/shmmon/view"
)

func ctlCommand() *cli.Command {
	sub := func(name, usage, args string, flags ...cli.Flag) *cli.Command {
		return &cli.Command{Name: name, Usage: usage, UsageText: "shmmon ctl " + name + " " + args, OnUsageError: usageError,
			SkipFlagParsing: true, Flags: flags, Action: ctlAction}
	}
	return &cli.Command{
		Name:      "ctl",
		Usage:     "act on the workers of a running serve, over its control socket",
		UsageText: "shmmon ctl [--control PATH] status|start|stop|restart|signal|reload|logs [ARGS]",
		Description: "Talks to `shmmon serve` over its control socket (--control, else $SHMMON_CONTROL,\n" +
			"else /run/shmmon/control.sock as root, else $XDG_RUNTIME_DIR/shmmon/control.sock). serve\n" +
			"admits root, its own user and members of its control_group; it logs every action.\n" +
			"Exit codes: 0 done; 1 serve not reachable, refused, or the action failed; 2 bad usage\n" +
			"(an unknown worker, a bad signal, an action not for that kind of worker).",
		OnUsageError: usageError,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "control", Usage: "the control socket's `PATH` (default: $SHMMON_CONTROL, else serve's default)"},
		},
		Subcommands: []*cli.Command{
			sub("status", "serve's workers: state, supervision, pid, counts, last exit", "[NAME...] [--json]",
				&cli.BoolFlag{Name: "json", Usage: "print the workers as JSON (as /status lists them)"}),
			sub("start", "start stopped, waiting or given-up workers (a watched one: watch it again)", "NAME..."),
			sub("stop", "stop workers and keep them stopped until start (a watched one: stop watching it)", "NAME..."),
			sub("restart", "stop supervised workers and start them again", "NAME..."),
			sub("signal", "send a signal to workers' process groups", "SIGNAL NAME..."),
			sub("reload", "reload serve's config file, as SIGHUP does, and say what changed", ""),
			sub("logs", "print the last lines of a worker's log file, then follow it", "NAME [-n LINES] [-f]",
				&cli.IntFlag{Name: "lines", Aliases: []string{"n"}, Value: control.DefaultLines, Usage: "how many of the last lines"},
				&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "then print lines as they are written, until interrupted"}),
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef(c, "unknown command %q (want %s)", c.Args().First(), strings.Join(control.Actions, ", "))
			}
			return usagef(c, "no command (want %s; see 'shmmon ctl --help')", strings.Join(control.Actions, ", "))
		},
	}
}

// ctlArgs are a ctl command's arguments: its flags may come before or after the names.
type ctlArgs struct {
	names   []string
	control string
	json    bool
	lines   *int
	follow  bool
}

// parseCtlArgs reads args, the arguments after a ctl command, taking the flags that command
// has (and --control) wherever they are.
func parseCtlArgs(c *cli.Context, args []string) (ctlArgs, error) {
	var a ctlArgs
	has := func(name string) bool {
		for _, f := range c.Command.Flags {
			for _, n := range f.Names() {
				if n == name {
					return true
				}
			}
		}
		return name == "control"
	}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			a.names = append(a.names, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			a.names = append(a.names, arg)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if name == "help" || name == "h" {
			if err := cli.ShowCommandHelp(c.Lineage()[1], c.Command.Name); err != nil {
				return a, err
			}
			return a, errHelpShown
		}
		if !has(name) {
			return a, usagef(c, "unknown flag %s (see 'shmmon ctl %s --help')", arg, c.Command.Name)
		}
		next := func() (string, error) {
			if hasValue {
				return value, nil
			}
			if i+1 >= len(args) {
				return "", usagef(c, "flag %s needs a value", arg)
			}
			i++
			return args[i], nil
		}
		switch name {
		case "json", "follow", "f":
			v := true
			if hasValue {
				b, err := strconv.ParseBool(value)
				if err != nil {
					return a, usagef(c, "invalid %s: want true or false", arg)
				}
				v = b
			}
			if name == "json" {
				a.json = v
			} else {
				a.follow = v
			}
		case "lines", "n":
			v, err := next()
			if err != nil {
				return a, err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return a, usagef(c, "invalid %s %q: want a number of lines, 0 or more", arg, v)
			}
			a.lines = &n
		case "control":
			v, err := next()
			if err != nil {
				return a, err
			}
			a.control = v
		}
	}
	return a, nil
}

// errHelpShown ends a ctl command whose --help was printed.
var errHelpShown = errors.New("help shown")

// ctlAction sends the request of a ctl command to serve and prints the answer.
func ctlAction(c *cli.Context) error {
	a, err := parseCtlArgs(c, c.Args().Slice())
	if errors.Is(err, errHelpShown) {
		return nil
	}
	if err != nil {
		return err
	}
	path := a.control
	if path == "" {
		path = c.Lineage()[1].String("control")
	}
	if path == "" {
		path = control.DefaultPath()
	}
	if path == "" {
		return usagef(c, "no control socket: give --control PATH or set %s (or XDG_RUNTIME_DIR)", control.EnvPath)
	}
	req := control.Request{Action: c.Command.Name, Workers: a.names}
	switch req.Action {
	case control.ActionSignal:
		if len(a.names) == 0 {
			return usagef(c, "no signal: want SIGNAL NAME..., e.g. shmmon ctl signal HUP db")
		}
		req.Signal, req.Workers = a.names[0], a.names[1:]
		fallthrough
	case control.ActionStart, control.ActionStop, control.ActionRestart:
		if len(req.Workers) == 0 {
			return usagef(c, "no worker: want at least one NAME")
		}
	case control.ActionReload:
		if len(a.names) > 0 {
			return usagef(c, "unexpected argument %q: reload takes none", a.names[0])
		}
	case control.ActionLogs:
		if len(a.names) != 1 {
			return usagef(c, "want exactly one NAME, got %d", len(a.names))
		}
		req.Lines, req.Follow = a.lines, a.follow
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := c.App.Writer
	ans, err := control.Do(ctx, path, req, func(l string) { fmt.Fprintln(out, l) })
	switch {
	case errors.Is(err, context.Canceled) && req.Follow:
		return nil // interrupted while following: done
	case errors.Is(err, control.ErrRefused):
		return failf(c, "%s", strings.TrimPrefix(ans.Error, "refused: ")+" (refused by serve at "+path+")")
	case err != nil:
		return failf(c, "%s (is serve running? --control or %s names its socket)", stripPkg(err), control.EnvPath)
	}
	for _, r := range ans.Results {
		if r.Error == "" {
			fmt.Fprintf(out, "%s: %s\n", shown(r.Worker), r.Done)
		} else if !ans.Usage {
			fmt.Fprintf(c.App.ErrWriter, "%s: %s: %s\n", commandPath(c), shown(r.Worker), r.Error)
		}
	}
	switch {
	case ans.Usage:
		return usagef(c, "%s", ans.Error)
	case !ans.OK && len(ans.Results) > 0:
		return cli.Exit("", exitError) // each failure said above
	case !ans.OK:
		return failf(c, "%s", ans.Error)
	}
	switch req.Action {
	case control.ActionStatus:
		return printStatus(out, ans.Workers, a.json)
	case control.ActionReload:
		r := ans.Reload
		fmt.Fprintf(out, "reloaded: started %d, stopped %d, restarted %d, unchanged %d\n", r.Started, r.Stopped, r.Restarted, r.Unchanged)
	}
	return nil
}

// printStatus prints the workers of a status answer: as JSON (as /status lists them), or as a
// table.
func printStatus(w io.Writer, raw json.RawMessage, asJSON bool) error {
	var ws []view.Worker
	if err := json.Unmarshal(raw, &ws); err != nil {
		return cli.Exit(fmt.Sprintf("shmmon ctl status: serve's answer: %v", err), exitError)
	}
	if asJSON {
		return writeJSON(w, ws)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSUPERVISION\tSTATE\tPID\tSTARTS\tRESTARTS\tKILLS\tLAST EXIT\tLOG DROPPED")
	for _, v := range ws {
		sv := v.Serving
		if sv == nil {
			sv = &view.Serving{}
		}
		pid := "-"
		if sv.Supervision == "running" || sv.Supervision == "stopping" {
			pid = dash(v.Pid)
		}
		last := "-"
		if sv.LastExit != "" {
			last = sv.LastExit
		}
		dropped := "-"
		if sv.Log != "" {
			dropped = strconv.FormatInt(sv.LogDropped, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", shown(v.Name), supervisionText(sv), stateText(v), pid,
			sv.Starts, v.Restarts, v.Kills, last, dropped)
	}
	return tw.Flush()
}

// supervisionText says where serve has a worker, for the table.
func supervisionText(sv *view.Serving) string {
	switch sv.Supervision {
	case "stopped":
		return "stopped (ctl)"
	case "backoff":
		if sv.BackoffUntil != nil {
			return "backing off until " + sv.BackoffUntil.Local().Format(time.TimeOnly)
		}
		return "backing off"
	case "gave-up":
		return "given up"
	case "waiting":
		if len(sv.WaitingFor) == 0 {
			return "starting (dependencies ready)"
		}
		return "waiting for " + strings.Join(sv.WaitingFor, ", ")
	case "":
		return "-"
	}
	return sv.Supervision
}
