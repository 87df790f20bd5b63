package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/internal/field"
	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
)

func watchCommand() *cli.Command {
	return &cli.Command{
		Name:      "watch",
		Usage:     "publish a heartbeat object and kill the worker when it hangs",
		UsageText: "shmmon watch --name NAME [--pid PID] [--interval 1s] [--stalls 3] [options]",
		Description: "Creates /dev/shm/NAME (replacing a stale one), then checks the worker's sequence\n" +
			"every --interval. After --stalls checks in a row without progress the worker is hung:\n" +
			"with --pid it is killed (--signal, then SIGKILL after --kill-after) and watch exits 3;\n" +
			"without --pid it is reported and watching goes on. One log line per state change.\n\n" +
			"With --memory-max or --cpu-max the watched process's tree is measured at every check,\n" +
			"and killed the same way when it stays over a limit (event=limit).\n\n" +
			"At the hang verdict, before any signal, one event=evidence line says what the process was\n" +
			"doing (its threads' states, wait channels, system calls, kernel stacks). With --dump-signal\n" +
			"(QUIT for a Go program) that signal goes first, and --dump-wait is given for it to end.\n\n" +
			"A stall while the watched process waits for a CPU (runnable, but given next to none:\n" +
			"starved) is not counted (event=starved), for at most --starved-max.\n\n" +
			"Exit codes: 0 the watched process ended by itself (or SIGINT/SIGTERM), 1 error,\n" +
			"2 bad usage (including a --pid that does not exist), 3 a hung worker (or one over a\n" +
			"limit) was killed.",
		OnUsageError: usageError,
		Before:       checkUsage(false, "name"),
		Flags: append([]cli.Flag{
			&cli.IntFlag{Name: "pid", Usage: "`PID` of the worker to kill when it hangs (omit to only report)"},
		}, monitorFlags()...),
		Action: watchAction,
	}
}

// monitorFlags are the flags of every command that publishes and judges an object.
func monitorFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "name", Usage: "object `NAME` (the Boost name; /dev/shm/NAME); required"},
		&cli.Int64Flag{Name: "size", Value: shmobj.DefaultSize, Usage: "object size in `BYTES` (at least 16)"},
		&cli.StringFlag{Name: "mode", Value: "0600", Usage: "object permissions, `OCTAL` (e.g. 0660 for workers of another user)"},
		&cli.DurationFlag{Name: "interval", Value: monitor.DefaultInterval, Usage: "time between checks; workers should beat at least twice per interval"},
		&cli.IntFlag{Name: "stalls", Value: monitor.DefaultStalls, Usage: "consecutive checks without progress that make a worker hung"},
		&cli.DurationFlag{Name: "grace", Usage: "time allowed for the first beat (default 10 intervals, at least 3s)"},
		&cli.StringFlag{Name: "starved-max", Usage: "stalls while the worker waits for a CPU are not counted for at most `DURATION` (default 10 intervals, at least 10s; 0s: count every stall)"},
		&cli.StringFlag{Name: "signal", Value: "TERM", Usage: "first `SIGNAL` sent to a hung worker (name or number)"},
		&cli.DurationFlag{Name: "kill-after", Value: proc.DefaultKillAfter, Usage: "wait this long after --signal, then SIGKILL"},
		&cli.StringFlag{Name: "dump-signal", Usage: "first send a hung worker `SIGNAL` to make it record what it was doing (QUIT: a Go program prints its goroutines; ABRT: a core dump); default none"},
		&cli.DurationFlag{Name: "dump-wait", Value: proc.DefaultDumpWait, Usage: "wait this long after --dump-signal for the worker to end, then --signal"},
		&cli.BoolFlag{Name: "keep", Usage: "leave the object in place on exit"},
		&cli.StringFlag{Name: "memory-max", Usage: "stop the worker when its processes' resident memory stays over `SIZE` (\"512MiB\") for --stalls checks"},
		&cli.StringFlag{Name: "cpu-max", Usage: "stop the worker when its processes use more than `SHARE` of one core (\"150%\") over --stalls intervals"},
	}
}

func watchAction(c *cli.Context) error {
	w, err := watchFromFlags(c)
	if err != nil {
		return err
	}
	if w.Options.Limits.Any() && !c.IsSet("pid") {
		return usagef(c, "--memory-max and --cpu-max limit the watched process: want --pid with them")
	}
	if c.IsSet("pid") {
		p, err := openPid(c, c.Int("pid"))
		if err != nil {
			return err
		}
		defer p.Close()
		w.Process = p
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	out, err := w.Run(ctx)
	if err != nil {
		return failf(c, "%s", stripPkg(err))
	}
	if out == monitor.Killed || out == monitor.OverLimit {
		return cli.Exit("", exitKilled)
	}
	return nil
}

// watchFromFlags checks the flags of watch and builds the monitor.Watch they describe.
func watchFromFlags(c *cli.Context) (*monitor.Watch, error) {
	m, err := monitorFromFlags(c)
	if err != nil {
		return nil, err
	}
	return &monitor.Watch{
		Name:       m.name,
		Options:    m.opts,
		Signal:     m.signal,
		KillAfter:  m.killAfter,
		DumpSignal: m.dump,
		DumpWait:   m.dumpWait,
		Keep:       m.keep,
		Logger:     newLogger(c),
	}, nil
}

// monitored is what the flags of monitorFlags say.
type monitored struct {
	name      string
	opts      monitor.Options
	signal    syscall.Signal
	killAfter time.Duration
	dump      syscall.Signal // 0 = none
	dumpWait  time.Duration
	keep      bool
}

// monitorFromFlags checks the flags of monitorFlags, by the rules of the packages that own
// them.
func monitorFromFlags(c *cli.Context) (monitored, error) {
	var none monitored
	name := c.String("name")
	if err := shmobj.ValidatePublishName(name); err != nil {
		return none, usagef(c, "--name: %s", stripPkg(err))
	}
	if err := shmobj.ValidateSize(c.Int64("size")); err != nil {
		return none, invalid(c, "", err)
	}
	mode, err := shmobj.ParseMode(c.String("mode"))
	if err != nil {
		return none, invalid(c, "", err)
	}
	cfg := monitor.Config{Interval: c.Duration("interval"), Stalls: c.Int("stalls"), Grace: c.Duration("grace")}
	if c.IsSet("starved-max") {
		if cfg.StarvedMax, err = monitor.ParseStarvedMax(c.String("starved-max")); err != nil {
			return none, invalid(c, "", err)
		}
	}
	if err := cfg.ValidateResolved(); err != nil {
		return none, invalid(c, "", err)
	}
	sig, err := proc.ParseSignal(c.String("signal"))
	if err != nil {
		return none, invalid(c, "", err)
	}
	if err := proc.ValidateKillAfter(c.Duration("kill-after")); err != nil {
		return none, invalid(c, "", err)
	}
	var dump syscall.Signal
	if c.IsSet("dump-signal") {
		if dump, err = proc.ParseSignal(c.String("dump-signal")); err != nil {
			return none, invalid(c, "--dump-signal", err)
		}
	}
	if err := proc.ValidateDumpWait(c.Duration("dump-wait")); err != nil {
		return none, invalid(c, "", err)
	}
	var lim monitor.Limits
	if c.IsSet("memory-max") {
		var b config.Bytes
		if err := b.UnmarshalText([]byte(c.String("memory-max"))); err != nil {
			return none, invalid(c, "--memory-max", err)
		}
		lim.MemoryMax = int64(b)
	}
	if c.IsSet("cpu-max") {
		if lim.CPUMax, err = monitor.ParseCPU(c.String("cpu-max")); err != nil {
			return none, invalid(c, "--cpu-max", err)
		}
	}
	if err := lim.ValidateResolved(); err != nil {
		return none, invalid(c, "", err)
	}
	return monitored{
		name:      name,
		opts:      monitor.Options{Config: cfg, Size: c.Int64("size"), Mode: mode, Limits: lim},
		signal:    sig,
		killAfter: c.Duration("kill-after"),
		dump:      dump,
		dumpWait:  c.Duration("dump-wait"),
		keep:      c.Bool("keep"),
	}, nil
}

// invalid returns the usage error of a flag's value its package refused: err, a
// [*field.Error] (or several joined: the first is told), reads "invalid --FLAG VALUE:
// PROBLEM". The flag is named after the setting, unless flag names it.
func invalid(c *cli.Context, flag string, err error) error {
	errs := field.All(err)
	if len(errs) == 0 {
		return usagef(c, "%s", stripPkg(err))
	}
	e := errs[0]
	if flag == "" {
		flag = flagOf(e.Field)
	}
	other := ""
	if e.Other != "" {
		other = fmt.Sprintf("%s (%v)", flagOf(e.Other), e.OtherValue)
	}
	return usagef(c, "invalid %s %s: %s", flag, field.Show(e.Value), e.Detail(other))
}

// flagOf returns the flag of a setting: --kill-after for kill_after.
func flagOf(setting string) string { return "--" + strings.ReplaceAll(setting, "_", "-") }

// openPid takes hold of the process the user asked to watch, refusing pids that must never
// be signalled.
func openPid(c *cli.Context, pid int) (*proc.Process, error) {
	if pid <= 1 {
		return nil, usagef(c, "invalid --pid %d: want the pid of a worker process (greater than 1)", pid)
	}
	if pid == os.Getpid() {
		return nil, usagef(c, "invalid --pid %d: that is shmmon itself", pid)
	}
	p, err := proc.Open(pid)
	switch {
	case errors.Is(err, proc.ErrNotExist):
		return nil, usagef(c, "invalid --pid %d: no such process", pid)
	case errors.Is(err, proc.ErrRefused):
		return nil, usagef(c, "invalid --pid %d: %s", pid, stripPkg(err))
	case err != nil:
		return nil, failf(c, "--pid %d: %s", pid, stripPkg(err))
	}
	// A process this user may not signal would only fail at the kill, after the hang: say
	// so now (signal 0 checks the permission and sends nothing).
	if err := p.Signal(0); errors.Is(err, os.ErrPermission) {
		p.Close()
		return nil, usagef(c, "invalid --pid %d: this user (uid %d) may not signal it (run shmmon as its user or as root)", pid, os.Geteuid())
	}
	return p, nil
}
