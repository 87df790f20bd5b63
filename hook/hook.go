// Package hook runs event hooks: a shell command run when something happens to a worker (it
// stalled, waited for a CPU, hung, was killed, restarted, given up on, or went over a resource limit), so an operator can page someone,
// collect a stack dump or write to a log of their own.
//
// [Runner.Run] starts `/bin/sh -c COMMAND` and returns at once: a hook never delays the
// monitor that reports the event. The command gets the monitor's environment (without the
// systemd handshake variables meant for the monitor itself) plus:
//
//	SHMMON_EVENT     the event: stall, starved, abnormal, kill, restart, give-up, limit or oom (see [monitor.EventKind])
//	SHMMON_NAME      the worker's object name
//	SHMMON_PID       the worker's pid; 0 when unknown
//	SHMMON_SEQUENCE  the last heartbeat sequence the monitor saw
//	SHMMON_STALLS    consecutive stalls at the time
//	SHMMON_DETAIL    how it ended for kill ("signal killed"), why for give-up, the breach for limit
//	                 ("memory 612.0MiB over 512.0MiB"), how many for oom, the run delay, CPU time and
//	                 pressure for starved; often empty
//	SHMMON_EVIDENCE  abnormal and kill: the path of a file (mode 0600) with what the hung process
//	                 was doing at the verdict (its threads' states, wait channels, system calls,
//	                 kernel stacks; see package sched); removed once the hook ended. Unset when
//	                 there is none (its process not known).
//
// Its standard input is /dev/null. It runs in a process group of its own; when it is still
// running at its timeout the whole group is killed (SIGKILL). When it ends in time, what is
// left of its group (a command it put in the background) is killed too, so a hook leaves no
// process behind. Each hook ends with one log line: event=hook, the worker, the hook's event,
// its status ("exit 0", "exit 1", "killed at timeout"), how long it took and the first
// [MaxOutput] bytes of its output. At most MaxPerWorker hooks of one worker run at once;
// one more is dropped with a warning (a hook that hangs on every event cannot pile up
// processes).
package hook

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/notify"
	"github.com/shmmon/shmmon/proc"
)

// Environment variables of a hook.
const (
	EnvEvent    = "SHMMON_EVENT"
	EnvName     = "SHMMON_NAME"
	EnvPid      = "SHMMON_PID"
	EnvSequence = "SHMMON_SEQUENCE"
	EnvStalls   = "SHMMON_STALLS"
	EnvDetail   = "SHMMON_DETAIL"
	EnvEvidence = "SHMMON_EVIDENCE"
)

// Defaults and limits.
const (
	DefaultTimeout      = 10 * time.Second // the timeout of a hook when Run is given 0
	DefaultMaxPerWorker = 4                // hooks of one worker running at once
	MaxOutput           = 1024             // bytes of a hook's output that are logged
	// waitDelay bounds the wait for the hook's output once its group is gone: a process
	// that left the group may still hold the pipe.
	waitDelay = time.Second
)

// Runner runs hooks in the background. The zero value is ready to use; its methods are safe
// for concurrent use.
type Runner struct {
	Logger       *slog.Logger // receives one line per hook; nil = slog.Default()
	MaxPerWorker int          // hooks of one worker running at once; 0 = DefaultMaxPerWorker

	mu      sync.Mutex
	running map[string]int // per worker
	wg      sync.WaitGroup
}

// Run starts command for the event e of worker e.Worker on a goroutine of its own and
// returns without waiting: true when it was started, false when command is "" or the worker
// already has MaxPerWorker hooks running (logged as a warning). A hook still running after
// timeout (0 = [DefaultTimeout]) is killed with its process group.
func (r *Runner) Run(command string, timeout time.Duration, e monitor.Event) bool {
	if command == "" {
		return false
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	limit := r.MaxPerWorker
	if limit <= 0 {
		limit = DefaultMaxPerWorker
	}
	r.mu.Lock()
	if r.running == nil {
		r.running = map[string]int{}
	}
	n := r.running[e.Worker]
	if n >= limit {
		r.mu.Unlock()
		r.logger().Warn("hook dropped: too many hooks of this worker still running", attrs(e, "running", n, "limit", limit)...)
		return false
	}
	r.running[e.Worker] = n + 1
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			if r.running[e.Worker]--; r.running[e.Worker] == 0 {
				delete(r.running, e.Worker)
			}
			r.mu.Unlock()
		}()
		r.run(command, timeout, e)
	}()
	return true
}

// Wait waits until every hook started so far has ended (each ends at its timeout at the
// latest). Call it once no more Run calls can come, e.g. after the monitors stopped.
func (r *Runner) Wait() { r.wg.Wait() }

func (r *Runner) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.Default()
	}
	return r.Logger
}

// attrs are the log attributes of a hook of e, then more.
func attrs(e monitor.Event, more ...any) []any {
	return append([]any{"worker", e.Worker, "event", "hook", "hook", string(e.Kind), "pid", e.Pid, "seq", e.Seq,
		"stalls", e.Stalls}, more...)
}

// run runs one hook to its end and logs how it ended.
func (r *Runner) run(command string, timeout time.Duration, e monitor.Event) {
	log := r.logger()
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out := &capped{max: MaxOutput}
	// At the timeout, StartChild's Cancel kills the hook's whole group.
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Env = Env(e)
	if e.Evidence != "" {
		path, err := evidenceFile(e.Evidence)
		if err != nil {
			log.Error("cannot write the evidence for the hook", attrs(e, "err", err)...)
		} else {
			defer os.Remove(path)
			cmd.Env = append(cmd.Env, EnvEvidence+"="+path)
		}
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = waitDelay
	c, err := proc.StartChild(cmd)
	if err != nil {
		msg := "hook not started"
		if cmd.Process != nil {
			msg = "hook killed: cannot take hold of it"
		}
		log.Error(msg, attrs(e, "command", command, "err", err)...)
		return
	}
	status := ""
	// The exit, not the reap: the output may hold the reap up to waitDelay longer.
	if !c.WaitExit(ctx, 0) {
		status = "killed at timeout"
	}
	end, err := c.Wait()
	if err != nil {
		log.Error("killing a hook's group", attrs(e, "command", command, "err", err)...)
	}
	if status == "" {
		status = end.String()
	}
	a := attrs(e, "command", command, "status", status, "took", time.Since(began).Round(time.Millisecond),
		"output", out.String())
	if status == "exit 0" {
		log.Info("hook ran", a...)
		return
	}
	log.Warn("hook failed", append(a, "timeout", timeout)...)
}

// evidenceFile writes the evidence of a hang to a new file of its own (mode 0600) and
// returns its path.
func evidenceFile(evidence string) (string, error) {
	f, err := os.CreateTemp("", "shmmon-evidence-*")
	if err != nil {
		return "", fmt.Errorf("hook: %w", err)
	}
	_, err = f.WriteString(evidence)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("hook: %w", err)
	}
	return f.Name(), nil
}

// Env returns the environment of a hook for e: the monitor's own, without the systemd
// handshake meant for the monitor (see [notify.WithoutHandshake]) and without any inherited
// SHMMON_* variable, then the SHMMON_* variables of the package doc.
func Env(e monitor.Event) []string {
	env := slices.DeleteFunc(notify.WithoutHandshake(os.Environ()), func(kv string) bool {
		return strings.HasPrefix(kv, "SHMMON_")
	})
	return append(env,
		EnvEvent+"="+string(e.Kind),
		EnvName+"="+e.Worker,
		EnvPid+"="+strconv.FormatInt(e.Pid, 10),
		EnvSequence+"="+strconv.FormatUint(e.Seq, 10),
		EnvStalls+"="+strconv.Itoa(e.Stalls),
		EnvDetail+"="+e.Detail,
	)
}

// capped keeps the first max bytes written to it and counts the rest. A hook's output is
// written by one goroutine at a time (os/exec copies stdout and stderr through one writer
// when they are the same), so it needs no lock.
type capped struct {
	max     int
	buf     bytes.Buffer
	dropped int
}

func (c *capped) Write(p []byte) (int, error) {
	room := c.max - c.buf.Len()
	if room >= len(p) {
		return c.buf.Write(p)
	}
	c.buf.Write(p[:max(room, 0)])
	c.dropped += len(p) - max(room, 0)
	return len(p), nil
}

// String returns the output kept, trimmed, with a note of how much was cut.
func (c *capped) String() string {
	s := strings.TrimSpace(c.buf.String())
	if c.dropped > 0 {
		s += fmt.Sprintf(" ...(%d more bytes)", c.dropped)
	}
	return s
}
