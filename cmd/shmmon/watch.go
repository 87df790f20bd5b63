package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

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
			"Exit codes: 0 the watched process ended by itself (or SIGINT/SIGTERM), 1 error,\n" +
			"2 bad usage (including a --pid that does not exist), 3 a hung worker was killed.",
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
		&cli.StringFlag{Name: "signal", Value: "TERM", Usage: "first `SIGNAL` sent to a hung worker (name or number)"},
		&cli.DurationFlag{Name: "kill-after", Value: proc.DefaultKillAfter, Usage: "wait this long after --signal, then SIGKILL"},
		&cli.BoolFlag{Name: "keep", Usage: "leave the object in place on exit"},
	}
}

func watchAction(c *cli.Context) error {
	w, err := watchFromFlags(c)
	if err != nil {
		return err
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
	if out == monitor.Killed {
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
		Name:      m.name,
		Options:   m.opts,
		Signal:    m.signal,
		KillAfter: m.killAfter,
		Keep:      m.keep,
		Logger:    newLogger(c),
	}, nil
}

// monitored is what the flags of monitorFlags say.
type monitored struct {
	name      string
	opts      monitor.Options
	signal    syscall.Signal
	killAfter time.Duration
	keep      bool
}

// monitorFromFlags checks the flags of monitorFlags.
func monitorFromFlags(c *cli.Context) (monitored, error) {
	var none monitored
	name := c.String("name")
	if err := shmobj.ValidatePublishName(name); err != nil {
		return none, usagef(c, "--name: %s", stripPkg(err))
	}
	size := c.Int64("size")
	if err := shmobj.ValidateSize(size); err != nil {
		return none, usagef(c, "invalid --size %d: %s", size, stripPkg(err))
	}
	mode, err := parseMode(c.String("mode"))
	if err != nil {
		return none, usagef(c, "%v", err)
	}
	if iv := c.Duration("interval"); monitor.ValidateInterval(iv) != nil {
		return none, usagef(c, "invalid --interval %v: want at least 1ms and at most %v", iv, monitor.MaxInterval)
	}
	if n := c.Int("stalls"); n < 1 || n > 1<<20 {
		return none, usagef(c, "invalid --stalls %d: want 1 to %d", n, 1<<20)
	}
	if g := c.Duration("grace"); g < 0 {
		return none, usagef(c, "invalid --grace %v: want 0 (the default) or more", g)
	}
	sig, err := parseSignal(c.String("signal"))
	if err != nil {
		return none, usagef(c, "%v", err)
	}
	if ka := c.Duration("kill-after"); ka <= 0 {
		return none, usagef(c, "invalid --kill-after %v: want more than 0", ka)
	}
	return monitored{
		name: name,
		opts: monitor.Options{
			Config: monitor.Config{Interval: c.Duration("interval"), Stalls: c.Int("stalls"), Grace: c.Duration("grace")},
			Size:   size,
			Mode:   mode,
		},
		signal:    sig,
		killAfter: c.Duration("kill-after"),
		keep:      c.Bool("keep"),
	}, nil
}

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

// parseMode parses an octal permission such as "0660".
func parseMode(s string) (os.FileMode, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m == 0 || m > 0o777 {
		return 0, fmt.Errorf("invalid --mode %q: want octal permissions from 0001 to 0777, e.g. 0600", s)
	}
	return os.FileMode(m), nil
}

// parseSignal parses a signal name (TERM, SIGTERM, term) or number (15).
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n >= 1 && n <= 64 {
			return syscall.Signal(n), nil
		}
	} else {
		name := strings.ToUpper(s)
		if !strings.HasPrefix(name, "SIG") {
			name = "SIG" + name
		}
		if sig := unix.SignalNum(name); sig != 0 {
			return sig, nil
		}
	}
	return 0, fmt.Errorf("invalid --signal %q: want a signal name (TERM, INT, HUP, QUIT, USR1, ...) or number 1-64", s)
}
