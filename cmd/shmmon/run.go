package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/shmmon/shmmon/cgroup"
	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/proctab"
	"github.com/shmmon/shmmon/source"
	"github.com/shmmon/shmmon/supervise"
	"github.com/shmmon/shmmon/worklog"
)

// exitGaveUp is run's exit code when the program restarted too often.
const exitGaveUp = 4

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a worker program and restart it when it hangs or dies",
		UsageText: "shmmon run --name NAME [--heartbeat shm|none|proctab] [options] -- COMMAND [ARGS...]",
		Description: "Publishes /dev/shm/NAME, then starts COMMAND in its own process group with\n" +
			"SHMMON_NAME=NAME and SHMMON_INTERVAL in its environment (Go workers call worker.Beat();\n" +
			"a C++ Boost worker must open NAME itself), and with NOTIFY_SOCKET, WATCHDOG_USEC and\n" +
			"WATCHDOG_PID as systemd sets them: sd_notify(\"WATCHDOG=1\") beats too (READY=1, STATUS=,\n" +
			"STOPPING=1, WATCHDOG=trigger, ... are honoured; see the README). When the heartbeat\n" +
			"stops for --stalls checks the whole group is killed (--signal, then SIGKILL after\n" +
			"--kill-after) and the program is restarted per --restart; a program that exits or\n" +
			"crashes is restarted the same way.\n" +
			"The first restart is immediate; repeated failures wait --backoff, doubling up to\n" +
			"--backoff-max. More than --start-limit starts within --start-window: give up (exit 4).\n" +
			"With --every the program is a periodic job: run, wait for it to end, wait, run again.\n" +
			"--heartbeat none supervises a program that never beats (restarts, backoff, --every;\n" +
			"no hang verdict); --heartbeat proctab judges it by its own record in the System V\n" +
			"process table of the original framework (--proctab-key) instead of the object.\n" +
			"Where shmmon can make cgroups, the program runs in one of its own, and the end of a run\n" +
			"kills everything in it. --memory-max and --cpu-max stop a run that stays over a limit\n" +
			"(a failure); --limit-* set its resource limits before it runs.\n" +
			"With --log its output goes to a log file, through a log process of its own: never\n" +
			"stalled by a slow disk (up to 1 MiB is buffered, then dropped and counted in the file).\n" +
			"SIGHUP restarts the program; SIGINT/SIGTERM stop it, remove the object and exit 0.\n\n" +
			"Exit codes: 0 stopped, or the program finished and is not restarted; 1 error, or the\n" +
			"program failed and is not restarted; 2 bad usage; 3 the program hung, was killed and\n" +
			"is not restarted; 4 gave up after too many starts.",
		OnUsageError: usageError,
		Before:       checkUsage(true, "name"),
		Flags: append(monitorFlags(),
			&cli.StringFlag{Name: "heartbeat", Value: source.Default, Usage: "`KIND` of heartbeat: " + strings.Join(source.Kinds(), ", ")},
			&cli.StringFlag{Name: "proctab-key", Value: "0x5095", Usage: "with --heartbeat proctab: System V `KEY` of the table (its semaphore's too)"},
			&cli.IntFlag{Name: "proctab-slots", Value: proctab.DefaultSlots, Usage: "with --heartbeat proctab: records in the table"},
			&cli.StringFlag{Name: "restart", Value: "always", Usage: "restart `POLICY`: always, on-failure or never"},
			&cli.DurationFlag{Name: "every", Usage: "run as a periodic job: start again this long after each run ends"},
			&cli.DurationFlag{Name: "backoff", Value: supervise.DefaultBackoff, Usage: "wait before the second restart in a row; doubles after"},
			&cli.DurationFlag{Name: "backoff-max", Value: supervise.DefaultBackoffMax, Usage: "longest wait between restarts"},
			&cli.DurationFlag{Name: "backoff-reset", Value: supervise.DefaultBackoffReset, Usage: "running this long without failing resets the backoff"},
			&cli.IntFlag{Name: "start-limit", Value: supervise.DefaultStartLimit, Usage: "give up after more starts than this within --start-window"},
			&cli.DurationFlag{Name: "start-window", Value: supervise.DefaultStartWindow, Usage: "window of --start-limit"},
			&cli.IntFlag{Name: "pids-max", Usage: "most `PROCESSES` of the program's cgroup (pids.max; needs the pids controller)"},
			&cli.StringFlag{Name: "limit-nofile", Usage: "RLIMIT_NOFILE the program starts with: `SOFT:HARD`, or one number for both; \"unlimited\""},
			&cli.StringFlag{Name: "limit-core", Usage: "RLIMIT_CORE (bytes), as --limit-nofile"},
			&cli.StringFlag{Name: "limit-nproc", Usage: "RLIMIT_NPROC (processes of the program's user), as --limit-nofile"},
			&cli.BoolFlag{Name: "cgroup", Value: true, Usage: "run the program in a cgroup of its own where shmmon can make one; --cgroup=false: its process group only"},
			&cli.StringFlag{Name: "log", Usage: "write the program's output to the log `FILE` (each line timestamped, out/err), rotated"},
			&cli.StringFlag{Name: "log-max-size", Value: "10MiB", Usage: "with --log: rotate the file at this `SIZE` (bytes, or with a unit: 64KiB, 10MiB)"},
			&cli.IntFlag{Name: "log-keep", Value: worklog.DefaultKeep, Usage: "with --log: old files kept, FILE.1 ... FILE.N"},
		),
		Action: runAction,
	}
}

func runAction(c *cli.Context) error {
	m, err := monitorFromFlags(c)
	if err != nil {
		return err
	}
	if c.NArg() == 0 {
		return usagef(c, "no command: give it after the flags, e.g. shmmon run --name %s -- ./worker", m.name)
	}
	// A program that cannot be found is a typo, not a crash to retry for a minute.
	if err := supervise.FindProgram(c.Args().First(), ""); err != nil {
		return usagef(c, "cannot run %q: %v", c.Args().First(), errors.Unwrap(err))
	}
	policy, err := supervise.ParsePolicy(c.String("restart"))
	if err != nil {
		return invalid(c, "", err)
	}
	var table *proctab.Options
	switch {
	case c.String("heartbeat") == "proctab":
		key, err := proctab.ParseKey(c.String("proctab-key"))
		if err != nil {
			return invalid(c, "--proctab-key", err)
		}
		if err := proctab.ValidateSlots(c.Int("proctab-slots")); err != nil {
			return invalid(c, "--proctab-slots", err)
		}
		table = &proctab.Options{Key: key, SemKey: key, Slots: c.Int("proctab-slots")}
	case c.IsSet("proctab-key") || c.IsSet("proctab-slots"):
		return usagef(c, "--proctab-key and --proctab-slots apply to --heartbeat proctab: want it with them")
	}
	var rlimits []proc.Rlimit
	for _, r := range []proc.Resource{proc.Nofile, proc.Core, proc.Nproc} {
		flag := "limit-" + r.String()
		if !c.IsSet(flag) {
			continue
		}
		l, err := proc.ParseLimit(c.String(flag))
		if err != nil {
			return invalid(c, "--"+flag, err)
		}
		rlimits = append(rlimits, proc.Rlimit{Resource: r, Limit: l})
	}
	logOpts, err := logFromFlags(c)
	if err != nil {
		return err
	}
	opts := supervise.Options{
		Log:          logOpts,
		Command:      c.Args().Slice(),
		Rlimits:      rlimits,
		PidsMax:      c.Int("pids-max"),
		Heartbeat:    c.String("heartbeat"),
		Proctab:      table,
		Monitor:      m.opts,
		Signal:       m.signal,
		KillAfter:    m.killAfter,
		DumpSignal:   m.dump,
		DumpWait:     m.dumpWait,
		Keep:         m.keep,
		Restart:      policy,
		Every:        c.Duration("every"),
		Backoff:      c.Duration("backoff"),
		BackoffMax:   c.Duration("backoff-max"),
		BackoffReset: c.Duration("backoff-reset"),
		StartLimit:   c.Int("start-limit"),
		StartWindow:  c.Duration("start-window"),
		Logger:       newLogger(c),
	}
	if err := opts.ValidateResolved(); err != nil {
		return invalid(c, "", err)
	}
	if c.Bool("cgroup") {
		if cg := cgroup.Setup(opts.Logger.With("worker", m.name)); cg != nil {
			defer cg.Close() // after Run: its cgroups are gone
			opts.Cgroups = cg
		}
	}
	s, err := supervise.New(m.name, opts)
	if err != nil {
		return usagef(c, "%s", stripPkg(err))
	}

	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// SIGHUP restarts the program, until Run returns: the goroutine is joined then.
	var forwarding sync.WaitGroup
	hctx, hcancel := context.WithCancel(ctx)
	defer forwarding.Wait()
	defer hcancel()
	forwarding.Go(func() {
		for {
			select {
			case <-hup:
				s.Restart()
			case <-hctx.Done():
				return
			}
		}
	})

	out, err := s.Run(ctx)
	switch {
	case out == supervise.GaveUp:
		return cli.Exit("shmmon run: "+stripPkg(err), exitGaveUp)
	case err != nil:
		return failf(c, "%s", stripPkg(err))
	case out == supervise.Failed:
		return cli.Exit("", exitError)
	case out == supervise.Hung:
		return cli.Exit("", exitKilled)
	}
	return nil
}

// logFromFlags returns the log file options of --log, --log-max-size and --log-keep.
func logFromFlags(c *cli.Context) (worklog.Options, error) {
	var size config.Bytes
	if err := size.UnmarshalText([]byte(c.String("log-max-size"))); err != nil {
		return worklog.Options{}, invalid(c, "--log-max-size", err)
	}
	o := worklog.Options{MaxSize: int64(size), Keep: c.Int("log-keep")}
	if err := o.ValidateResolved(); err != nil {
		return o, invalid(c, "", err)
	}
	if p := c.String("log"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			return o, usagef(c, "invalid --log %q: %v", p, err)
		}
		o.Path = abs
	} else if c.IsSet("log-max-size") || c.IsSet("log-keep") {
		return o, usagef(c, "--log-max-size and --log-keep apply to --log: want it with them")
	}
	return o, nil
}
