package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/proctab"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/view"
)

// proctabFlags select a System V process table.
func proctabFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "key", Value: "0x5095", Usage: "System V `KEY` of the table's segment (decimal or 0x hex)"},
		&cli.StringFlag{Name: "sem-key", Usage: "System V `KEY` of the table's semaphore (default: --key)"},
		&cli.IntFlag{Name: "slots", Value: proctab.DefaultSlots, Usage: "records in the table (all users must agree)"},
	}
}

// proctabOptions checks the flags of proctabFlags.
func proctabOptions(c *cli.Context) (proctab.Options, error) {
	key, err := proctab.ParseKey(c.String("key"))
	if err != nil {
		return proctab.Options{}, invalid(c, "--key", err)
	}
	semKey := key
	if c.IsSet("sem-key") {
		if semKey, err = proctab.ParseKey(c.String("sem-key")); err != nil {
			return proctab.Options{}, invalid(c, "--sem-key", err)
		}
	}
	if err := proctab.ValidateSlots(c.Int("slots")); err != nil {
		return proctab.Options{}, invalid(c, "", err)
	}
	return proctab.Options{Key: key, SemKey: semKey, Slots: c.Int("slots")}, nil
}

func checkprocCommand() *cli.Command {
	return &cli.Command{
		Name:  "checkproc",
		Usage: "sweep the System V process table of the original framework: kill timed-out processes",
		UsageText: "shmmon checkproc [--key 0x5095] [--sem-key 0x5095] [--slots 1000] [--every 10s] [--kill-after 5s]\n" +
			"                 [--create [--mode 0660] [--group GROUP]]",
		Description: "One pass over the table (or one every --every): a record whose process is gone is\n" +
			"cleared; a process whose heartbeat is older than its timeout is killed (--signal, then\n" +
			"SIGKILL after --kill-after) and its record cleared, if it has the table attached and its\n" +
			"user may write the table: anyone who may write the table may write any record, so other\n" +
			"records, and bad ones (a timeout under 1s, a heartbeat in the future), are refused:\n" +
			"cleared and logged (event=record-refused), never acted on. Unlike the original, it never\n" +
			"signals pid 1 or less or itself, signals through a pidfd, and clears (never kills) a\n" +
			"record whose pid now names a process that started after its last heartbeat.\n" +
			"It creates no table unless --create is given (then mode 0660 unless --mode says\n" +
			"otherwise: 0666 lets every local user rewrite records and block the lock). A lock that\n" +
			"is not free within " + proctab.LockTimeout.String() + " is an error: exit 1 for one pass, a logged error\n" +
			"(event=lock-timeout) and a skipped pass with --every, which logs a failed pass too\n" +
			"(event=sweep-failed) and attaches the table again at the next. SIGINT/SIGTERM end it at once.",
		OnUsageError: usageError,
		Before:       checkUsage(false),
		Flags: append(proctabFlags(),
			&cli.DurationFlag{Name: "every", Usage: "sweep again this often (at least " + proctab.MinEvery.String() + ") until SIGINT/SIGTERM (default: one pass)"},
			&cli.StringFlag{Name: "signal", Value: "TERM", Usage: "first `SIGNAL` sent to a timed-out process"},
			&cli.DurationFlag{Name: "kill-after", Value: proc.DefaultKillAfter, Usage: "wait this long after --signal, then SIGKILL"},
			&cli.StringFlag{Name: "starved-max", Usage: "a timed-out process that waits for a CPU is left alone while its heartbeat is late by at most `DURATION` (default 10s; 0s: kill it all the same)"},
			&cli.BoolFlag{Name: "create", Usage: "create the table when it does not exist"},
			&cli.StringFlag{Name: "mode", Value: "0660", Usage: "with --create: permissions of a new table, `OCTAL`"},
			&cli.StringFlag{Name: "group", Usage: "with --create: `GROUP` (name or gid) of a new table, for clients of several users"},
		),
		Action: func(c *cli.Context) error {
			opts, err := proctabOptions(c)
			if err != nil {
				return err
			}
			sig, err := proc.ParseSignal(c.String("signal"))
			if err != nil {
				return invalid(c, "", err)
			}
			every, ka := c.Duration("every"), c.Duration("kill-after")
			if every != 0 && every < proctab.MinEvery {
				return usagef(c, "invalid --every %v: want 0 (one pass) or at least %v", every, proctab.MinEvery)
			}
			if err := proc.ValidateKillAfter(ka); err != nil {
				return invalid(c, "", err)
			}
			open := proctab.Attach
			if c.Bool("create") {
				if opts.Mode, err = shmobj.ParseMode(c.String("mode")); err != nil {
					return invalid(c, "", err)
				}
				if g := c.String("group"); g != "" {
					if opts.Group, err = config.LookupGroup(g); err != nil {
						return usagef(c, "invalid --group: %v", err)
					}
				}
				open = proctab.Open
			} else if c.IsSet("mode") || c.IsSet("group") {
				return usagef(c, "--mode and --group apply to a table checkproc creates: want --create with them")
			}
			tab, err := open(opts)
			if errors.Is(err, fs.ErrNotExist) {
				return failf(c, "no process table with key %#x (give --create to create it, or check --key and --sem-key)", opts.Key)
			} else if err != nil {
				return failf(c, "%s", stripPkg(err))
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			sweep := proctab.SweepOptions{Signal: sig, KillAfter: ka, Logger: newLogger(c)}
			if c.IsSet("starved-max") {
				if sweep.StarvedMax, err = monitor.ParseStarvedMax(c.String("starved-max")); err != nil {
					return invalid(c, "", err)
				}
			}
			if every != 0 {
				g := proctab.Guard{Options: opts, Create: c.Bool("create"), Every: every, Sweep: sweep}
				g.Run(ctx, tab)
				return nil
			}
			defer tab.Close()
			res, err := tab.Sweep(ctx, sweep)
			if err != nil && ctx.Err() == nil {
				return failf(c, "%s", stripPkg(err))
			}
			sweep.Logger.Info("swept", "key", fmt.Sprintf("%#x", opts.Key), "checked", res.Checked, "cleared", res.Cleared,
				"refused", res.Refused, "killed", res.Killed, "starved", res.Starved, "event", "sweep")
			return nil
		},
	}
}

func proctabCommand() *cli.Command {
	return &cli.Command{
		Name:  "proctab",
		Usage: "the System V process table of the original framework",
		Subcommands: []*cli.Command{{
			Name:         "ls",
			Usage:        "list the table's records: pid, name, timeout, heartbeat age, alive",
			UsageText:    "shmmon proctab ls [--key 0x5095] [--slots 1000] [--json]",
			OnUsageError: usageError,
			Before:       checkUsage(false),
			Flags:        append(proctabFlags(), &cli.BoolFlag{Name: "json", Usage: "print JSON"}),
			Action: func(c *cli.Context) error {
				opts, err := proctabOptions(c)
				if err != nil {
					return err
				}
				views, err := proctabViews(opts, time.Now())
				if errors.Is(err, fs.ErrNotExist) {
					return failf(c, "no process table with key %#x", opts.Key)
				} else if err != nil {
					return failf(c, "%s", stripPkg(err))
				}
				if c.Bool("json") {
					return writeJSON(c.App.Writer, views)
				}
				writeProctab(c.App.Writer, views)
				return nil
			},
		}},
	}
}

// proctabViews reads the table of opts without creating it.
func proctabViews(opts proctab.Options, now time.Time) ([]view.Proctab, error) {
	tab, err := proctab.Attach(opts)
	if err != nil {
		return nil, err
	}
	defer tab.Close()
	recs, err := tab.List()
	if err != nil {
		return nil, err
	}
	views := []view.Proctab{}
	for _, r := range recs {
		views = append(views, view.Record(r, now))
	}
	return views, nil
}

func writeProctab(w io.Writer, views []view.Proctab) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SLOT\tPID\tNAME\tTIMEOUT\tAGE\tALIVE")
	for _, v := range views {
		age := seconds(v.AgeSec).Round(time.Second).String()
		if v.TimedOut {
			age += " (timed out)"
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%v\n", v.Slot, v.Pid, shown(v.Name), seconds(v.TimeoutSec), age, v.Alive)
	}
	tw.Flush()
}
