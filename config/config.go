package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/shmmon/shmmon/hook"
	"github.com/shmmon/shmmon/internal/filetype"
	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/supervise"
	"github.com/shmmon/shmmon/worklog"
)

// File is a loaded and validated configuration file.
type File struct {
	// Path is the path given to [Load] or [Parse].
	Path string
	// Defaults holds the built-in defaults with the [defaults] table applied: what a worker
	// gets for every key it does not set. Its per-worker fields (Name, Command, Env, Dir, Pid,
	// PidFile) are empty.
	Defaults Worker
	// Workers are the [[worker]] tables in file order, fully resolved. Names are unique.
	Workers []Worker
	// Proctab is the [proctab] table, nil when the file has none.
	Proctab *Proctab
	// TCPWatchdog is the [tcp_watchdog] table, nil when the file has none.
	TCPWatchdog *TCPWatchdog
	// Serve is the [serve] table; its zero value when the file has none.
	Serve Serve
	// Size is the length of the file in bytes. An empty file (0) is a valid configuration
	// without workers; serve's reload takes it for a save in progress instead (editors
	// truncate a file before writing it again), and keeps the running configuration.
	Size int64
}

// Worker is one fully resolved worker: defaults applied, durations parsed, everything
// validated. A supervised worker has Command; a watched one Pid or PidFile, and its
// supervision fields (those of keys marked S below, and Uid and Gid) are zero. Treat a
// Worker as read-only: its slices and pointers are its own, but copies of it share them.
//
// Its fields are the keys of [[worker]] in the documented order: the toml tag names a field's
// key, in says where the key is taken (W in [[worker]], D in [defaults], S only in a
// supervised worker). A key's value is read by its field's type and checked by the package
// that owns it (see the package doc); the rules of names, paths, users and commands are
// config's own.
type Worker struct {
	Name    string   `toml:"name" in:"W"`    // object name (/dev/shm/NAME), unique in the file
	Command []string `toml:"command" in:"W"` // supervised: argv, at least the program
	Env     []string `toml:"env" in:"WS"`    // supervised: extra environment, "KEY=VALUE" sorted by KEY; nil if none
	Dir     string   `toml:"dir" in:"WS"`    // supervised: absolute working directory; "" = serve's
	// Log is the supervised program's log file (package worklog), made absolute (against Dir,
	// else serve's working directory); "" = serve's stdout and stderr.
	Log        string  `toml:"log" in:"WS"`
	LogMaxSize Bytes   `toml:"log_max_size" in:"WDS"` // supervised: rotate the log file at this size
	LogKeep    int     `toml:"log_keep" in:"WDS"`     // supervised: old log files kept, NAME.1 ... NAME.N
	User       string  `toml:"user" in:"WDS"`         // supervised: user to run as, as written; "" = serve's
	Group      string  `toml:"group" in:"WDS"`        // supervised: group to run as, as written; "" = User's primary group
	Uid        *uint32 // User resolved; nil when User is ""
	Gid        *uint32 // Group resolved, or User's primary group; nil when both are ""
	Pid        int     `toml:"pid" in:"W"`     // watched only: the pid of a process started elsewhere (> 1)
	PidFile    string  `toml:"pidfile" in:"W"` // watched only: absolute path of a file holding the pid

	Heartbeat    string           `toml:"heartbeat" in:"WDS"`     // supervised: the kind of heartbeat (package source); "" = source.Default
	Restart      supervise.Policy `toml:"restart" in:"WDS"`       // supervised: when it is started again
	Every        time.Duration    `toml:"every" in:"WDS"`         // supervised: the period of a periodic job; 0 = resident
	Interval     time.Duration    `toml:"interval" in:"WD"`       // time between checks (>= 1ms)
	Stalls       int              `toml:"stalls" in:"WD"`         // consecutive stalls that make a worker hung
	Grace        time.Duration    `toml:"grace" in:"WD"`          // startup grace; 0 = the monitor's default
	Signal       syscall.Signal   `toml:"signal" in:"WD"`         // first signal sent to a hung worker
	KillAfter    time.Duration    `toml:"kill_after" in:"WD"`     // wait this long after Signal, then SIGKILL (> 0)
	Size         Bytes            `toml:"size" in:"WD"`           // object size (>= shmobj.MinSize)
	Mode         os.FileMode      `toml:"mode" in:"WD"`           // object permissions (0001 to 0777)
	Backoff      time.Duration    `toml:"backoff" in:"WDS"`       // supervised: delay of the second restart in a row (the first has none), doubling
	BackoffMax   time.Duration    `toml:"backoff_max" in:"WDS"`   // supervised: longest restart delay (>= Backoff)
	BackoffReset time.Duration    `toml:"backoff_reset" in:"WDS"` // supervised: healthy run time after which the delay starts over
	StartLimit   int              `toml:"start_limit" in:"WDS"`   // supervised: more starts than this within StartWindow: give up
	StartWindow  time.Duration    `toml:"start_window" in:"WDS"`  // supervised: the window of StartLimit

	// Resource limits (see package monitor's Limits, proc's Limit, package cgroup).
	MemoryMax   Bytes       `toml:"memory_max" in:"WD"`    // resident memory of the worker's processes (its cgroup's, else its tree's); 0 = none
	CPUMax      monitor.CPU `toml:"cpu_max" in:"WD"`       // CPU of the worker's processes, a share of one core over stalls intervals; 0 = none
	PidsMax     int         `toml:"pids_max" in:"WDS"`     // supervised: pids.max of its cgroup (the pids controller); 0 = none
	LimitNofile *proc.Limit `toml:"limit_nofile" in:"WDS"` // supervised: RLIMIT_NOFILE the program starts with; nil = serve's
	LimitCore   *proc.Limit `toml:"limit_core" in:"WDS"`   // supervised: RLIMIT_CORE; nil = serve's
	LimitNproc  *proc.Limit `toml:"limit_nproc" in:"WDS"`  // supervised: RLIMIT_NPROC; nil = serve's
	Cgroup      bool        `toml:"cgroup" in:"WDS"`       // supervised: a cgroup of its own where serve can make one (default true)

	// Deps are the worker's dependencies on other workers of the file. A change of them alone
	// does not restart the worker ([Worker.EqualExceptLive]).
	Deps

	// Hooks are the worker's event hooks. A change of them alone does not restart the worker
	// ([Worker.EqualExceptLive]).
	Hooks
}

// Deps are a worker's dependencies on other workers of the same file; package fleet orders
// their starts and stops by them. After and BindsTo name other workers (never the worker
// itself), and no chain of them comes back to where it began. They are supervised only: serve
// starts no watched worker, though a watched worker may be a dependency.
type Deps struct {
	// After: start this worker only once every named worker is ready, and stop it before
	// them.
	After []string `toml:"after" in:"WS"`
	// BindsTo: as After, and when a named worker's run ends (for any reason) this worker is
	// stopped too, and started again once that worker is ready again.
	BindsTo []string `toml:"binds_to" in:"WS"`
	// ReadyTimeout is how long this worker may take to be ready, as the dependency of another,
	// before that is logged (event=not-ready); its dependents keep waiting (> 0).
	ReadyTimeout time.Duration `toml:"ready_timeout" in:"WD"`
}

// Needs returns the workers w waits for before it starts: its After, then its BindsTo not in
// After, in file order. The slice may be w's own: do not change it.
func (w Worker) Needs() []string {
	if len(w.BindsTo) == 0 {
		return w.After
	}
	out := slices.Clone(w.After)
	for _, n := range w.BindsTo {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// DefaultReadyTimeout is the default of ready_timeout.
const DefaultReadyTimeout = time.Minute

// Hooks are the event hooks of a worker: shell commands (/bin/sh -c) run when the worker's
// event happens (see package hook); "" runs nothing. OnRestart and OnGiveUp are supervised
// only.
type Hooks struct {
	OnStall     string        `toml:"on_stall" in:"WD"`     // the worker stalled (the first missed check of a run)
	OnAbnormal  string        `toml:"on_abnormal" in:"WD"`  // the worker reached the stall threshold: it is hung
	OnKill      string        `toml:"on_kill" in:"WD"`      // the hung worker was killed
	OnRestart   string        `toml:"on_restart" in:"WDS"`  // supervised: the worker was started again
	OnGiveUp    string        `toml:"on_give_up" in:"WDS"`  // supervised: the worker failed too often; no more restarts
	OnLimit     string        `toml:"on_limit" in:"WD"`     // the worker went over a resource limit, or the kernel's OOM killer killed in its cgroup
	HookTimeout time.Duration `toml:"hook_timeout" in:"WD"` // a hook still running after this is killed (> 0)
}

// Supervised reports whether serve starts the worker itself (it has a Command), as opposed to
// watching a process started elsewhere.
func (w Worker) Supervised() bool { return len(w.Command) > 0 }

// MonitorConfig returns the check parameters of w.
func (w Worker) MonitorConfig() monitor.Config {
	return monitor.Config{Interval: w.Interval, Stalls: w.Stalls, Grace: w.Grace}
}

// MonitorOptions returns the options of w's object, its checks and its limits.
func (w Worker) MonitorOptions() monitor.Options {
	return monitor.Options{Config: w.MonitorConfig(), Size: int64(w.Size), Mode: w.Mode,
		Limits: monitor.Limits{MemoryMax: int64(w.MemoryMax), CPUMax: w.CPUMax}}
}

// Rlimits returns the resource limits a supervised w's program starts with.
func (w Worker) Rlimits() []proc.Rlimit {
	var out []proc.Rlimit
	for _, r := range []struct {
		res proc.Resource
		l   *proc.Limit
	}{{proc.Nofile, w.LimitNofile}, {proc.Core, w.LimitCore}, {proc.Nproc, w.LimitNproc}} {
		if r.l != nil {
			out = append(out, proc.Rlimit{Resource: r.res, Limit: *r.l})
		}
	}
	return out
}

// SupervisorOptions returns the options of the supervisor of a supervised w: its program, how
// it runs, is killed and restarted, and [Worker.MonitorOptions].
func (w Worker) SupervisorOptions() supervise.Options {
	var cred *syscall.Credential
	if w.Uid != nil {
		cred = &syscall.Credential{Uid: *w.Uid}
		if w.Gid != nil {
			cred.Gid = *w.Gid
		}
	}
	return supervise.Options{
		Command: w.Command, Env: w.Env, Dir: w.Dir, Credential: cred,
		Monitor: w.MonitorOptions(), Signal: w.Signal, KillAfter: w.KillAfter, Heartbeat: w.Heartbeat,
		Restart: w.Restart, Every: w.Every, Backoff: w.Backoff, BackoffMax: w.BackoffMax,
		BackoffReset: w.BackoffReset, StartLimit: w.StartLimit, StartWindow: w.StartWindow,
		Rlimits: w.Rlimits(), PidsMax: w.PidsMax,
		Log: worklog.Options{Path: w.Log, MaxSize: int64(w.LogMaxSize), Keep: w.LogKeep},
	}
}

// Equal reports whether w and o are the same resolved worker, field by field. A live reload
// leaves a worker whose old and new versions are Equal alone, takes new hooks and
// dependencies without restarting it when they are [Worker.EqualExceptLive], and restarts it
// otherwise.
func (w Worker) Equal(o Worker) bool { return reflect.DeepEqual(w, o) }

// EqualExceptLive is [Worker.Equal] but for the [Hooks] and the [Deps], which a running
// worker takes as they change: what the worker's program and monitor depend on.
func (w Worker) EqualExceptLive(o Worker) bool {
	w.Hooks, o.Hooks = Hooks{}, Hooks{}
	w.Deps, o.Deps = Deps{}, Deps{}
	return w.Equal(o)
}

// clone returns a copy of w that shares no memory with it.
func (w Worker) clone() Worker {
	w.Command = slices.Clone(w.Command)
	w.Env = slices.Clone(w.Env)
	w.After, w.BindsTo = slices.Clone(w.After), slices.Clone(w.BindsTo)
	w.Uid = cloneID(w.Uid)
	w.Gid = cloneID(w.Gid)
	for _, l := range []**proc.Limit{&w.LimitNofile, &w.LimitCore, &w.LimitNproc} {
		if *l != nil {
			v := **l
			*l = &v
		}
	}
	return w
}

func cloneID(p *uint32) *uint32 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// builtin returns the built-in defaults: those of the packages that own the values.
func builtin() Worker {
	mc := monitor.Config{}.WithDefaults()
	so := supervise.Options{}.WithDefaults()
	return Worker{
		Restart: so.Restart, Backoff: so.Backoff, BackoffMax: so.BackoffMax, BackoffReset: so.BackoffReset,
		StartLimit: so.StartLimit, StartWindow: so.StartWindow, Signal: so.Signal, KillAfter: so.KillAfter,
		// Grace stays 0, the monitor's default: it depends on the interval, which a worker may set.
		Interval: mc.Interval, Stalls: mc.Stalls,
		Size: shmobj.DefaultSize, Mode: shmobj.DefaultMode, Cgroup: true,
		LogMaxSize: worklog.DefaultMaxSize, LogKeep: worklog.DefaultKeep,
		Deps:  Deps{ReadyTimeout: DefaultReadyTimeout},
		Hooks: Hooks{HookTimeout: hook.DefaultTimeout},
	}
}

// Error is one problem found in a configuration file. [Load] and [Parse] return every problem
// they find joined with [errors.Join]: use [errors.As] to get the first, or the joined error's
// Unwrap() []error method to get them all.
type Error struct {
	File string // the path given to Load or Parse
	Line int    // line of the offending key (1-based); 0 when unknown
	Key  string // the key, e.g. `worker "db" interval`, `defaults stalls`; "" for a TOML syntax error
	Msg  string // the problem and what is accepted
	Err  error  // the underlying error (a toml.ParseError, an os/user error, ...), or nil
}

// Error formats e as "FILE:LINE: KEY: problem (what is accepted)", leaving out LINE when it
// is unknown and KEY when there is none.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error, if any.
func (e *Error) Unwrap() error { return e.Err }

// MaxSize is the largest configuration file [Load] reads, in bytes: 16 MiB, room for some
// hundred thousand workers.
const MaxSize = 16 << 20

// Load reads the file at path and validates it (see [Parse]). The path may be a symbolic link
// (the administrator chose it); what it names must be a regular file of at most [MaxSize]
// bytes. A FIFO or a device is refused without waiting for a writer or reading a byte: the
// open does not block (O_NONBLOCK) and the type is checked on the open file before any read.
// A file that cannot be read, or is not a regular file, or is too large, is an error
// prefixed "config: " that names the path (and wraps the os error, if any: errors.Is(err,
// fs.ErrNotExist) works). An empty file is valid: it has no workers (see [File.Size]).
func Load(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|openNonBlock, 0)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("config: %s is %s, not a regular file", path, filetype.Name(fi.Mode()))
	}
	tooLarge := func(size int64) error {
		return fmt.Errorf("config: %s is %d bytes; a config may have at most %d (16 MiB)", path, size, MaxSize)
	}
	if fi.Size() > MaxSize {
		return nil, tooLarge(fi.Size())
	}
	// The file may grow while it is read: read one byte more than allowed to see it.
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if len(data) > MaxSize {
		return nil, tooLarge(int64(len(data)))
	}
	return Parse(path, data)
}

// Parse validates the configuration in data; path only names the file in messages. It
// returns the resolved file, or nil and every problem found: an [errors.Join] of [*Error]
// values sorted by line. User and group names are looked up in the user database (os/user);
// nothing else outside data is read.
func Parse(path string, data []byte) (*File, error) {
	p := &parser{path: path}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, p.syntaxError(err)
	}
	p.pos = scanPositions(string(data))
	f := p.file(raw)
	f.Size = int64(len(data))
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b *Error) int { return lineOrder(a.Line) - lineOrder(b.Line) })
		errs := make([]error, len(p.errs))
		for i, e := range p.errs {
			errs[i] = e
		}
		return nil, errors.Join(errs...)
	}
	return f, nil
}

// lineOrder sorts errors of an unknown line (0) last.
func lineOrder(line int) int {
	if line <= 0 {
		return int(^uint(0) >> 1)
	}
	return line
}

// syntaxError turns an error of the TOML decoder into an [*Error].
func (p *parser) syntaxError(err error) error {
	e := &Error{File: p.path, Msg: err.Error(), Err: err}
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return e
	}
	e.Line = pe.Position.Line
	e.Msg = "invalid TOML: " + pe.Message
	return e
}
