// Command shmmon keeps service programs from silently hanging: it watches the heartbeat
// sequence a worker bumps in a POSIX shared-memory object (/dev/shm/NAME) and kills the
// worker when the sequence stops moving.
//
// It is a thin layer over the packages shmobj, monitor, worker and proc: it parses flags,
// calls them, and maps their errors to exit codes (0 ok, 1 error, 2 bad usage, 3 a hung
// worker was killed).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/shmmon/shmmon/worklog"
)

// Exit codes.
const (
	exitOK     = 0
	exitError  = 1
	exitUsage  = 2
	exitKilled = 3
)

// version is set at build time with -ldflags "-X main.version=..."; otherwise it comes from
// the module's build information.
var version = ""

func main() {
	// The log process of a worker's log file (package worklog) is this program too.
	if code, ok := worklog.Main(os.Args); ok {
		os.Exit(code)
	}
	os.Exit(run(context.Background(), os.Args, os.Stdout, os.Stderr))
}

// run runs the command line args until it ends or ctx is done, and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		msg := ec.Error()
		if strings.HasPrefix(msg, "No help topic for") {
			// urfave/cli's help command exits 3 for an unknown topic; 3 is ours.
			fmt.Fprintf(stderr, "shmmon: %s (see 'shmmon --help')\n", msg)
			return exitUsage
		}
		if msg != "" {
			fmt.Fprintln(stderr, msg)
		}
		return ec.ExitCode()
	}
	// Errors urfave/cli returns itself are about the command line.
	fmt.Fprintf(stderr, "shmmon: %v (see 'shmmon --help')\n", err)
	return exitUsage
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:  "shmmon",
		Usage: "catch hung workers through a heartbeat in shared memory",
		Description: "A worker proves it is alive by bumping a 64-bit sequence in /dev/shm/NAME\n" +
			"(Go: worker.Beat(); C++: Boost.Interprocess, sequence in the first 8 bytes).\n" +
			"'shmmon watch' polls it and kills the worker when it stops moving for\n" +
			"--stalls consecutive checks (SIGTERM, then SIGKILL after --kill-after).",
		Writer:         stdout,
		ErrWriter:      stderr,
		ExitErrHandler: func(*cli.Context, error) {}, // run maps errors to exit codes
		OnUsageError:   usageError,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log lines as `FORMAT`: text (key=value) or json"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "least `LEVEL` logged: debug, info, warn or error"},
		},
		Before: checkLogFlags,
		// Without this, urfave/cli answers an unknown command with its help command's exit
		// code 3, which is shmmon's "killed a hung worker".
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return cli.Exit(fmt.Sprintf("shmmon: unknown command %q (see 'shmmon --help')", c.Args().First()), exitUsage)
			}
			return cli.ShowAppHelp(c)
		},
		Commands: []*cli.Command{
			watchCommand(),
			runCommand(),
			serveCommand(),
			lsCommand(),
			inspectCommand(),
			beatCommand(),
			checkprocCommand(),
			proctabCommand(),
			ctlCommand(),
			topCommand(),
			{
				Name:   "version",
				Usage:  "print the version",
				Before: checkUsage(false),
				Action: func(c *cli.Context) error {
					fmt.Fprintf(c.App.Writer, "shmmon %s\n", buildVersion())
					return nil
				},
			},
		},
	}
}

// usageError turns a flag parsing error into a one-line error with exit code 2.
func usageError(c *cli.Context, err error, _ bool) error {
	cmd := commandPath(c)
	return cli.Exit(fmt.Sprintf("%s: %v (see '%s --help')", cmd, err, cmd), exitUsage)
}

// commandPath is the command of c as typed: "shmmon", "shmmon watch", "shmmon proctab ls".
func commandPath(c *cli.Context) string {
	var names []string
	for _, l := range c.Lineage() {
		if l.Command != nil && l.Command.Name != "" && l.Command.Name != c.App.Name {
			names = append([]string{l.Command.Name}, names...)
		}
	}
	return strings.Join(append([]string{"shmmon"}, names...), " ")
}

// checkUsage returns the Before of a command: every flag in required is set, and there is no
// positional argument unless takesArgs. Both are one-line usage errors (exit 2); urfave/cli's
// own Required check would print the whole help first.
func checkUsage(takesArgs bool, required ...string) cli.BeforeFunc {
	return func(c *cli.Context) error {
		for _, f := range required {
			if !c.IsSet(f) {
				return usagef(c, "--%s is required (see '%s --help')", f, commandPath(c))
			}
		}
		if !takesArgs && c.NArg() > 0 {
			return usagef(c, "unexpected argument %q: this command takes flags only (see '%s --help')", c.Args().First(), commandPath(c))
		}
		return nil
	}
}

// usagef returns a one-line usage error (exit code 2) for the command of c.
func usagef(c *cli.Context, format string, args ...any) error {
	return cli.Exit(fmt.Sprintf("%s: %s", commandPath(c), fmt.Sprintf(format, args...)), exitUsage)
}

// failf returns a one-line runtime error (exit code 1) for the command of c.
func failf(c *cli.Context, format string, args ...any) error {
	return cli.Exit(fmt.Sprintf("%s: %s", commandPath(c), fmt.Sprintf(format, args...)), exitError)
}

// stripPkg removes a Go package prefix ("shmobj: ") from an error message for the CLI.
func stripPkg(err error) string {
	msg := err.Error()
	for _, p := range []string{"serve: ", "fleet: ", "shmobj: ", "monitor: ", "proc: ", "worker: ", "supervise: ", "proctab: ", "config: ",
		"control: ", "worklog: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}

// newLogger returns the logger of the long-running commands, on stderr, as the global
// --log-format and --log-level say (checked by checkLogFlags before any command runs).
func newLogger(c *cli.Context) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.String("log-level")))
	opts := &slog.HandlerOptions{Level: level}
	if c.String("log-format") == "json" {
		return slog.New(slog.NewJSONHandler(c.App.ErrWriter, opts))
	}
	return slog.New(slog.NewTextHandler(c.App.ErrWriter, opts))
}

// checkLogFlags rejects a bad --log-format or --log-level.
func checkLogFlags(c *cli.Context) error {
	if f := c.String("log-format"); f != "text" && f != "json" {
		return cli.Exit(fmt.Sprintf("shmmon: invalid --log-format %q: want text or json", f), exitUsage)
	}
	var level slog.Level
	if l := c.String("log-level"); level.UnmarshalText([]byte(l)) != nil {
		return cli.Exit(fmt.Sprintf("shmmon: invalid --log-level %q: want debug, info, warn or error", l), exitUsage)
	}
	return nil
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v + " " + bi.GoVersion
		}
		return "dev " + bi.GoVersion
	}
	return "dev"
}
