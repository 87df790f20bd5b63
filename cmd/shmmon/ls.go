package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/proctab"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/view"
)

func lsCommand() *cli.Command {
	return &cli.Command{
		Name:      "ls",
		Usage:     "list the heartbeat objects on this host and their state",
		UsageText: "shmmon ls [--json] [--all] [--proctab-key 0x5095] [--watch [--interval 1s]]",
		Description: "Lists the objects in /dev/shm published by shmmon (they carry a status record).\n" +
			"--all adds every other object, read as a plain Boost heartbeat (sequence only).\n" +
			"When the System V process table of the original framework exists, its records follow\n" +
			"(in JSON: entries with \"kind\": \"proctab\").",
		OnUsageError: usageError,
		Before:       checkUsage(false),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print JSON instead of a table"},
			&cli.BoolFlag{Name: "all", Usage: "include objects not published by shmmon"},
			&cli.StringFlag{Name: "proctab-key", Value: "0x5095", Usage: "System V `KEY` of the process table (its semaphore's too)"},
			&cli.IntFlag{Name: "proctab-slots", Value: proctab.DefaultSlots, Usage: "records in the process table"},
			&cli.BoolFlag{Name: "watch", Usage: "redraw the table every --interval until interrupted, like watch(1), with beats/s"},
			&cli.DurationFlag{Name: "interval", Aliases: []string{"n"}, Value: time.Second, Usage: "with --watch: refresh every `PERIOD`"},
		},
		Action: func(c *cli.Context) error {
			if c.IsSet("interval") && !c.Bool("watch") {
				return usagef(c, "--interval %v: only with --watch", c.Duration("interval"))
			}
			if c.Bool("watch") {
				if c.Bool("json") {
					return usagef(c, "--watch draws a table: not with --json")
				}
				if d := c.Duration("interval"); d < 10*time.Millisecond {
					return usagef(c, "invalid --interval %v: want a period of at least 10ms", d)
				}
				return watchTable(c, c.Duration("interval"))
			}
			entries, err := shmobj.List()
			if err != nil {
				return failf(c, "%s", stripPkg(err))
			}
			key, err := proctab.ParseKey(c.String("proctab-key"))
			if err != nil {
				return invalid(c, "--proctab-key", err)
			}
			now := time.Now()
			views := []view.Worker{}
			for _, e := range entries {
				if e.Snapshot.HasRecord || c.Bool("all") {
					views = append(views, view.Measured(view.Object(e.Name, e.Snapshot, e.Err, now)))
				}
			}
			// The process table is shown when it exists; a missing one is not an error.
			recs, _ := proctabViews(proctab.Options{Key: key, SemKey: key, Slots: c.Int("proctab-slots")}, now)
			if c.Bool("json") {
				for _, r := range recs {
					views = append(views, view.OfRecord(r))
				}
				return writeJSON(c.App.Writer, views)
			}
			writeTable(c.App.Writer, views)
			if len(recs) > 0 {
				fmt.Fprintf(c.App.Writer, "\nprocess table (System V key %#x):\n", key)
				writeProctab(c.App.Writer, recs)
			}
			return nil
		},
	}
}

// watchTable redraws the table of shmmon objects every period until SIGINT/SIGTERM (or the
// command's context ends), with each worker's beats per second since the previous refresh.
func watchTable(c *cli.Context, period time.Duration) error {
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	prev := map[string]uint64{}
	prevAt := time.Time{}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		entries, err := shmobj.List()
		if err != nil {
			return failf(c, "%s", stripPkg(err))
		}
		now := time.Now()
		w := c.App.Writer
		fmt.Fprintf(w, "\033[H\033[2J%s  every %v  (Ctrl-C to stop)\n\n", now.Format(time.TimeOnly), period)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tKIND\tPID\tSTATE\tSEQ\tBEATS/S\tPROGRESS\tSTALLS\tRESTARTS")
		seen := map[string]uint64{}
		for _, e := range entries {
			if !e.Snapshot.HasRecord && !c.Bool("all") {
				continue
			}
			v := view.Object(e.Name, e.Snapshot, e.Err, now)
			rate := "-"
			if last, ok := prev[v.Name]; ok && v.Seq >= last && !prevAt.IsZero() {
				rate = fmt.Sprintf("%.1f", float64(v.Seq-last)/now.Sub(prevAt).Seconds())
			}
			seen[v.Name] = v.Seq
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%d\n", shown(v.Name), v.Kind, dash(v.Pid), stateText(v), v.Seq, rate,
				ageText(v), stallsText(v), v.Restarts)
		}
		tw.Flush()
		prev, prevAt = seen, now
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:         "inspect",
		Usage:        "show the decoded contents of one object",
		UsageText:    "shmmon inspect --name NAME [--json]",
		OnUsageError: usageError,
		Before:       checkUsage(false, "name"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Usage: "object `NAME`; required"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		},
		Action: func(c *cli.Context) error {
			name := c.String("name")
			if err := shmobj.ValidateName(name); err != nil {
				return usagef(c, "--name: %s", stripPkg(err))
			}
			snap, err := shmobj.Read(name)
			if err != nil {
				return failf(c, "%s", stripPkg(err))
			}
			v := view.Measured(view.Object(name, snap, nil, time.Now()))
			if c.Bool("json") {
				return writeJSON(c.App.Writer, v)
			}
			writeDetail(c.App.Writer, v)
			return nil
		},
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeTable(w io.Writer, views []view.Worker) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tSTATE\tSEQ\tPID\tSTALLS\tPROGRESS\tKILLS\tMONITOR\tMEMORY\tSTATUS")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", shown(v.Name), v.Kind, stateText(v), v.Seq, dash(v.Pid),
			stallsText(v), ageText(v), v.Kills, dash(v.MonitorPid), memoryText(v), statusText(v))
	}
	tw.Flush()
}

// stateText is the worker's state for a table: "-" without a record, and a monitor that is
// gone said so.
func stateText(v view.Worker) string {
	switch {
	case !v.Shmmon:
		return "-"
	case !v.MonitorAlive:
		return v.State + " (monitor gone)"
	}
	return v.State
}

func writeDetail(w io.Writer, v view.Worker) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, val string) { fmt.Fprintf(tw, "%s:\t%s\n", k, val) }
	row("name", shown(v.Name))
	row("size", strconv.FormatInt(v.Size, 10))
	row("sequence", strconv.FormatUint(v.Seq, 10))
	row("worker pid", dash(v.WorkerPid))
	if !v.Shmmon {
		row("record", "none (a plain Boost heartbeat object)")
		tw.Flush()
		return
	}
	row("kind", v.Kind)
	row("state", stateText(v))
	row("status", statusText(v))
	row("monitor pid", dash(v.MonitorPid))
	row("watched pid", dash(v.WatchedPid))
	row("last sequence seen", strconv.FormatUint(v.LastSeq, 10))
	row("stalls", stallsText(v))
	row("interval", time.Duration(v.IntervalSec*float64(time.Second)).String())
	row("last progress", ageText(v))
	lastCheck := "-"
	if v.LastCheck != nil {
		lastCheck = v.LastCheck.Format(time.RFC3339Nano)
	}
	row("last check", lastCheck)
	row("retired", strconv.FormatBool(v.Retired))
	row("kills", strconv.FormatUint(v.Kills, 10))
	row("restarts", strconv.FormatUint(v.Restarts, 10))
	row("cgroup", cmp.Or(v.Cgroup, "-"))
	row("memory", memoryText(v))
	tw.Flush()
}

// memoryText is the resident memory of the worker's processes for a table; "-" when unknown.
func memoryText(v view.Worker) string {
	if v.MemoryBytes == nil {
		return "-"
	}
	return monitor.Size(*v.MemoryBytes)
}

// shown is a name read from /dev/shm or from the process table as it may be printed in a
// terminal ([view.Shown]).
var shown = view.Shown

// statusText quotes the worker's status text, so that a tab or a control character in it
// cannot break the table; "-" when there is none.
func statusText(v view.Worker) string {
	if v.StatusText == "" {
		return "-"
	}
	return strconv.Quote(v.StatusText)
}

func stallsText(v view.Worker) string {
	if !v.Shmmon {
		return "-"
	}
	return fmt.Sprintf("%d/%d", v.Stalls, v.Threshold)
}

func ageText(v view.Worker) string {
	if v.ProgressAge == nil {
		return "-"
	}
	return seconds(*v.ProgressAge).Round(time.Millisecond).String() + " ago"
}

func dash(n int64) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}

// seconds converts seconds, as the JSON views carry them, to a Duration.
func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
