package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/shmmon/shmmon/control"
	"github.com/shmmon/shmmon/proctab"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/top"
	"github.com/shmmon/shmmon/view"
)

func topCommand() *cli.Command {
	return &cli.Command{
		Name:      "top",
		Usage:     "a full-screen live view of this host's heartbeats, the worst first",
		UsageText: "shmmon top [-n 1s] [--all] [--filter TEXT] [--control PATH] [--proctab-key 0x5095]",
		Description: "Redraws every -n PERIOD: each object published by shmmon (--all: every object, read as a\n" +
			"plain Boost heartbeat) and the process table's records when it exists, sorted worst first\n" +
			"(hung, stalled, starved, waiting, ok), with state, beats/s and a sparkline of the last\n" +
			"minute, stalls, last progress, pid, kills and restarts; with serve's books and supervision\n" +
			"when its control socket answers (--control, else $SHMMON_CONTROL, else the default).\n" +
			"Keys: q quit, / filter, s sort, up/down select; r restart and x stop the selected worker,\n" +
			"after a confirmation, only when the control socket admits you. It needs a terminal (80x24\n" +
			"or more); NO_COLOR is honoured. Without a terminal it exits 2: use 'shmmon ls --watch'.",
		OnUsageError: usageError,
		Before:       checkUsage(false),
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "interval", Aliases: []string{"n"}, Value: time.Second, Usage: "redraw every `PERIOD` (at least 100ms)"},
			&cli.BoolFlag{Name: "all", Usage: "include objects not published by shmmon"},
			&cli.StringFlag{Name: "filter", Usage: "show only the workers whose name contains `TEXT` (key / changes it)"},
			&cli.StringFlag{Name: "control", Usage: "serve's control socket `PATH`"},
			&cli.StringFlag{Name: "proctab-key", Value: "0x5095", Usage: "System V `KEY` of the process table (its semaphore's too)"},
			&cli.IntFlag{Name: "proctab-slots", Value: proctab.DefaultSlots, Usage: "records in the process table"},
		},
		Action: topAction,
	}
}

func topAction(c *cli.Context) error {
	if d := c.Duration("interval"); d < 100*time.Millisecond {
		return usagef(c, "invalid --interval %v: want a period of at least 100ms", d)
	}
	key, err := proctab.ParseKey(c.String("proctab-key"))
	if err != nil {
		return invalid(c, "--proctab-key", err)
	}
	if err := proctab.ValidateSlots(c.Int("proctab-slots")); err != nil {
		return invalid(c, "--proctab-slots", err)
	}
	path := c.String("control")
	if path == "" {
		path = control.DefaultPath()
	}
	if path != "" {
		if err := control.ValidatePath(path); err != nil {
			return usagef(c, "invalid --control: %s", stripPkg(err))
		}
	}
	out, ok := c.App.Writer.(*os.File)
	switch {
	case !ok || !isTerminal(out):
		return usagef(c, "standard output is not a terminal: top draws on one (use 'shmmon ls --watch' instead)")
	case !isTerminal(os.Stdin):
		return usagef(c, "standard input is not a terminal: top reads its keys from one (use 'shmmon ls --watch' instead)")
	}
	pt := proctab.Options{Key: key, SemKey: key, Slots: c.Int("proctab-slots")}
	all := c.Bool("all")
	opts := top.Options{
		Period: c.Duration("interval"),
		Filter: c.String("filter"),
		Read:   func(ctx context.Context) top.Snapshot { return topSnapshot(ctx, path, pt, all) },
		Act: func(ctx context.Context, action, name string) (string, error) {
			return topAct(ctx, path, action, name)
		},
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := top.Run(ctx, opts, os.Stdin, out); err != nil {
		return failf(c, "%v", err)
	}
	return nil
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// topSnapshot reads what top shows: the objects (those of shmmon; every one with all), the
// process table's records, and serve's workers when its control socket at path answers, whose
// views (with serve's books) replace the objects' of the same name.
func topSnapshot(ctx context.Context, path string, pt proctab.Options, all bool) top.Snapshot {
	now := time.Now()
	snap := top.Snapshot{Time: now}
	entries, err := shmobj.List()
	if err != nil {
		snap.Err = errors.New(stripPkg(err))
	}
	served, note := servedWorkers(ctx, path)
	snap.Note = note
	snap.Served, snap.Admitted = served != nil, served != nil
	byName := map[string]view.Worker{}
	for _, w := range served {
		byName[w.Name] = w
	}
	for _, e := range entries {
		if w, ok := byName[e.Name]; ok {
			snap.Workers = append(snap.Workers, w)
			delete(byName, e.Name)
		} else if e.Snapshot.HasRecord || all {
			snap.Workers = append(snap.Workers, view.Object(e.Name, e.Snapshot, e.Err, now))
		}
	}
	// serve's workers without an object now (finished, stopped, not started yet).
	for _, w := range served {
		if _, ok := byName[w.Name]; ok {
			snap.Workers = append(snap.Workers, w)
		}
	}
	recs, _ := proctabViews(pt, now) // a missing table is not an error
	for _, r := range recs {
		snap.Workers = append(snap.Workers, view.OfRecord(r))
	}
	return snap
}

// servedWorkers asks the serve at path for its workers; nil and why when it cannot.
func servedWorkers(ctx context.Context, path string) ([]view.Worker, string) {
	if path == "" {
		return nil, fmt.Sprintf("no control socket (give --control or set %s): no supervision shown", control.EnvPath)
	}
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	ans, err := control.Do(ctx, path, control.Request{Action: control.ActionStatus}, nil)
	switch {
	case errors.Is(err, control.ErrRefused):
		return nil, "serve at " + path + " refuses you: read-only (" + strings.TrimPrefix(ans.Error, "refused: ") + ")"
	case errors.Is(err, fs.ErrPermission):
		return nil, "control socket " + path + " not open to you: read-only"
	case err != nil:
		return nil, "no serve answers at " + path + ": no supervision shown"
	case !ans.OK:
		return nil, "serve at " + path + ": " + ans.Error
	}
	var ws []view.Worker
	if err := json.Unmarshal(ans.Workers, &ws); err != nil {
		return nil, "serve at " + path + ": its answer: " + err.Error()
	}
	if ws == nil {
		ws = []view.Worker{}
	}
	return ws, "serve at " + path + " admits you"
}

// topAct asks the serve at path to restart or stop the worker name.
func topAct(ctx context.Context, path, action, name string) (string, error) {
	ans, err := control.Do(ctx, path, control.Request{Action: action, Workers: []string{name}}, nil)
	if err != nil {
		return "", errors.New(stripPkg(err))
	}
	if len(ans.Results) == 1 {
		if r := ans.Results[0]; r.Error != "" {
			return "", errors.New(r.Error)
		}
		return ans.Results[0].Done, nil
	}
	if !ans.OK {
		return "", errors.New(ans.Error)
	}
	return "done", nil
}
