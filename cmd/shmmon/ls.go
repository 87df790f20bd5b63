package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/proctab"
	"github.com/shmmon/shmmon/shmobj"
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
			views := []objectView{}
			for _, e := range entries {
				if e.Snapshot.HasRecord || c.Bool("all") {
					views = append(views, newView(e.Name, e.Snapshot, e.Err, now))
				}
			}
			// The process table is shown when it exists; a missing one is not an error.
			recs, _ := proctabViews(proctab.Options{Key: key, SemKey: key, Slots: c.Int("proctab-slots")}, now)
			if c.Bool("json") {
				for _, r := range recs {
					views = append(views, objectView{Name: r.Name, Kind: "proctab", WorkerPid: int64(r.Pid), State: r.state(), Proctab: &r})
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
			v := newView(e.Name, e.Snapshot, e.Err, now)
			rate := "-"
			if last, ok := prev[v.Name]; ok && v.Seq >= last && !prevAt.IsZero() {
				rate = fmt.Sprintf("%.1f", float64(v.Seq-last)/now.Sub(prevAt).Seconds())
			}
			seen[v.Name] = v.Seq
			pid := v.WatchedPid
			if pid == 0 {
				pid = v.WorkerPid
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%d\n", shown(v.Name), v.Kind, dash(pid), v.State, v.Seq, rate,
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
			v := newView(name, snap, nil, time.Now())
			if c.Bool("json") {
				return writeJSON(c.App.Writer, v)
			}
			writeDetail(c.App.Writer, v)
			return nil
		},
	}
}

// objectView is one object as ls and inspect show it. Its JSON form is stable: fields are
// only added.
type objectView struct {
	Name         string       `json:"name"`
	Kind         string       `json:"kind"` // how beats arrive: "shm", "notify", "socket"; "proctab" for a process table record
	Proctab      *proctabView `json:"proctab,omitempty"`
	Size         int64        `json:"size"`
	Seq          uint64       `json:"seq"`
	WorkerPid    int64        `json:"worker_pid"`
	Shmmon       bool         `json:"shmmon"`
	State        string       `json:"state"`
	MonitorPid   int64        `json:"monitor_pid,omitempty"`
	MonitorAlive bool         `json:"monitor_alive"`
	WatchedPid   int64        `json:"watched_pid,omitempty"`
	LastSeq      uint64       `json:"last_seq,omitempty"`
	Stalls       uint32       `json:"stalls"`
	Threshold    uint32       `json:"threshold,omitempty"`
	IntervalSec  float64      `json:"interval_seconds,omitempty"`
	LastProgress string       `json:"last_progress,omitempty"` // RFC 3339, empty before the first beat
	LastCheck    string       `json:"last_check,omitempty"`
	ProgressAgeS float64      `json:"last_progress_age_seconds,omitempty"`
	Retired      bool         `json:"retired"`
	Kills        uint64       `json:"kills"`
	Restarts     uint64       `json:"restarts"`
	StatusText   string       `json:"status_text,omitempty"` // the worker's last STATUS= (notify protocol)
	Error        string       `json:"error,omitempty"`
}

func newView(name string, s shmobj.Snapshot, err error, now time.Time) objectView {
	v := objectView{Name: name, Kind: "shm", Size: s.Size, Seq: s.Seq, WorkerPid: s.WorkerPid, Shmmon: s.HasRecord, State: "-"}
	if err != nil {
		v.Error = stripPkg(err)
	}
	if !s.HasRecord {
		return v
	}
	r := s.Record
	v.Kind, v.StatusText = r.Kind.String(), s.StatusText
	v.State = r.State.String()
	v.MonitorPid, v.WatchedPid = r.MonitorPid, r.WatchedPid
	v.MonitorAlive = proc.Alive(int(r.MonitorPid))
	if !v.MonitorAlive {
		v.State += " (monitor gone)"
	}
	v.LastSeq, v.Stalls, v.Threshold = r.LastSeq, r.Stalls, r.Threshold
	v.IntervalSec = r.Interval.Seconds()
	v.Retired, v.Kills, v.Restarts = r.Retired, r.Kills, r.Restarts
	if r.LastProgress != 0 {
		at := time.Unix(0, r.LastProgress)
		v.LastProgress = at.Format(time.RFC3339Nano)
		v.ProgressAgeS = now.Sub(at).Seconds()
	}
	if r.LastCheck != 0 {
		v.LastCheck = time.Unix(0, r.LastCheck).Format(time.RFC3339Nano)
	}
	return v
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeTable(w io.Writer, views []objectView) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tSTATE\tSEQ\tPID\tSTALLS\tPROGRESS\tKILLS\tMONITOR\tSTATUS")
	for _, v := range views {
		pid := v.WatchedPid
		if pid == 0 {
			pid = v.WorkerPid
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\n", shown(v.Name), v.Kind, v.State, v.Seq, dash(pid),
			stallsText(v), ageText(v), v.Kills, dash(v.MonitorPid), statusText(v))
	}
	tw.Flush()
}

func writeDetail(w io.Writer, v objectView) {
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
	row("state", v.State)
	row("status", statusText(v))
	row("monitor pid", dash(v.MonitorPid))
	row("watched pid", dash(v.WatchedPid))
	row("last sequence seen", strconv.FormatUint(v.LastSeq, 10))
	row("stalls", stallsText(v))
	row("interval", time.Duration(v.IntervalSec*float64(time.Second)).String())
	row("last progress", ageText(v))
	row("last check", cmpOr(v.LastCheck, "-"))
	row("retired", strconv.FormatBool(v.Retired))
	row("kills", strconv.FormatUint(v.Kills, 10))
	row("restarts", strconv.FormatUint(v.Restarts, 10))
	tw.Flush()
}

// shown returns a name read from /dev/shm or from the process table as it may be printed in a
// terminal: as it is when every character is a printable one other than a space, a quote or a
// backslash, else quoted as a Go string, so that no escape sequence, newline or tab in another
// user's name can forge rows or drive the terminal.
func shown(name string) string {
	for _, r := range name {
		if !unicode.IsPrint(r) || r == ' ' || r == '"' || r == '\\' || r == utf8.RuneError {
			return strconv.Quote(name)
		}
	}
	if name == "" {
		return `""`
	}
	return name
}

// statusText quotes the worker's status text, so that a tab or a control character in it
// cannot break the table; "-" when there is none.
func statusText(v objectView) string {
	if v.StatusText == "" {
		return "-"
	}
	return strconv.Quote(v.StatusText)
}

func stallsText(v objectView) string {
	if !v.Shmmon {
		return "-"
	}
	return fmt.Sprintf("%d/%d", v.Stalls, v.Threshold)
}

func ageText(v objectView) string {
	if v.LastProgress == "" {
		return "-"
	}
	return seconds(v.ProgressAgeS).Round(time.Millisecond).String() + " ago"
}

func dash(n int64) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// seconds converts seconds, as the JSON views carry them, to a Duration.
func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
