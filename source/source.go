// Package source holds the heartbeat sources: what, besides a worker writing its own object,
// advances the sequence its monitor judges. The monitor judges one sequence per worker (package
// monitor); a source only feeds it:
//
//	heartbeat  sources                                          record kind
//	"shm"      the object itself (Go, C, Python, Boost workers); a supervised  shm, notify, socket
//	           program's notify socket (WATCHDOG=1); the TCP watchdog's feeds
//	           of its name, when serve runs one
//	"proctab"  the program's record in the System V process table of serve's   proctab
//	           [proctab]: a beat at every check while the record is alive
//	"none"     nothing: the program is supervised without a hang verdict      none
//
// A kind of heartbeat is one file of this package that registers a constructor with
// register; [New] makes the sources of a worker from its kind, and the worker's owner (package
// supervise, or fleet for a watched process) closes them with the worker. A source sees the
// worker through [Worker] (a [monitor.Worker] is one); what else it needs of its owner it says
// by implementing the optional interfaces below, which the owner looks for:
//
//   - [Preparer]: the program's command needs something to reach the source (the notify
//     socket's handshake).
//   - [Poller]: the owner polls it before each check, on the owner's goroutine (the process
//     table).
//   - [Requester]: it has messages that only the owner may apply, on its own goroutine (the
//     notify protocol's READY=1, MAINPID=, WATCHDOG=trigger, ...).
//   - [Unjudged]: the worker has no hang verdict.
//
// Adding a kind of heartbeat is adding a file: a type implementing [Source] (and the optional
// interfaces it needs), and one line registering its constructor.
package source

import (
	"log/slog"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shmmon/shmmon/internal/field"
	"github.com/shmmon/shmmon/notify"
	"github.com/shmmon/shmmon/proctab"
	"github.com/shmmon/shmmon/shmobj"
)

// Worker is a worker as its sources see it. Its methods are safe for concurrent use.
type Worker interface {
	Name() string
	// Pid returns the process of the worker's current run (the program its owner started, or
	// the process it watches: never a pid read from something another user can write); 0
	// while none runs.
	Pid() int64
	// Beat is one heartbeat: the sequence advances, and the record says beats arrive as kind.
	Beat(kind shmobj.Kind)
}

// Source is one source of a worker's heartbeat, made by [New].
type Source interface {
	// Kind is how the source's beats show in the record.
	Kind() shmobj.Kind
	// Close stops feeding the worker and releases what the source holds. No beat of the
	// source comes after it returns.
	Close() error
}

// Preparer is a source the program must be told about: Prepare adds it to the program's
// command (its environment, a wrapper) before each start.
type Preparer interface {
	Prepare(cmd *exec.Cmd)
}

// Poller is a source the owner polls before each check of the worker, on the owner's
// goroutine.
type Poller interface {
	Poll(now time.Time)
}

// Requester is a source whose messages only the worker's owner may apply: it receives them
// from Requests and applies each, on its own goroutine, with Apply.
type Requester interface {
	Requests() <-chan notify.Message
	// Apply applies one message to o at now (see the notify protocol); kill reports that the
	// program asked to be killed as hung (WATCHDOG=trigger).
	Apply(o Owner, m notify.Message, now time.Time) (kill bool)
}

// Owner is what a requesting source may ask of the worker's owner; Apply calls it on the
// owner's goroutine.
type Owner interface {
	Ready(now time.Time)
	Extend(now time.Time, d time.Duration) bool
	Suspend(now time.Time)
	Grace() time.Duration
	SetInterval(d time.Duration, now time.Time) error
	SetStatus(text string)
	// SetMain makes pid, a process of the running program's tree, its main process.
	SetMain(pid int) error
	Beat(kind shmobj.Kind)
}

// Unjudged is a source that turns the worker's hang verdict off: it is never checked.
type Unjudged interface {
	Unjudged()
}

// Env is what the sources of a worker may use.
type Env struct {
	// Supervised: the worker is a program its owner starts (a watched process has no notify
	// socket).
	Supervised bool
	// Interval is the worker's check interval (a program under the notify protocol is told).
	Interval time.Duration
	// TCP is the TCP watchdog's registry of workers, when serve runs one; nil otherwise.
	TCP *TCP
	// Proctab selects the System V process table of serve's [proctab]; nil when none is
	// configured.
	Proctab *proctab.Options
	// Logger receives the sources' lines; nil means slog.Default().
	Logger *slog.Logger
}

// kind is one kind of heartbeat: how its beats show in the record at first, and the
// constructor of its sources.
type kind struct {
	record     shmobj.Kind
	newSources func(w Worker, env Env) ([]Source, error)
}

// kinds are the kinds of heartbeat, by name.
var kinds = map[string]kind{}

// register makes name a kind of heartbeat whose sources newSources makes, recorded as record
// until a source says otherwise.
func register(name string, record shmobj.Kind, newSources func(w Worker, env Env) ([]Source, error)) {
	kinds[name] = kind{record, newSources}
}

// RecordKind returns how the beats of heartbeat kind name show in the record at first: shm
// for "shm" (the notify socket's and the TCP feed's beats say notify and socket), or the
// kind's own.
func RecordKind(name string) shmobj.Kind { return kinds[cmpOr(name)].record }

// Default is the kind of heartbeat of a worker that names none.
const Default = "shm"

// Kinds returns the names of the kinds of heartbeat, sorted.
func Kinds() []string {
	names := make([]string, 0, len(kinds))
	for n := range kinds {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Check reports whether name is a kind of heartbeat ("" is [Default]); the error is a
// [*field.Error] naming the value and the kinds accepted.
func Check(name string) error {
	if _, ok := kinds[cmpOr(name)]; !ok {
		return &field.Error{Pkg: "source", Field: "heartbeat", Value: name, Problem: "is not a kind of heartbeat", Want: Want()}
	}
	return nil
}

// Want says which kinds of heartbeat there are: "\"none\", \"proctab\" or \"shm\"".
func Want() string {
	ks := Kinds()
	q := make([]string, len(ks))
	for i, k := range ks {
		q[i] = strconv.Quote(k)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// New makes the sources of heartbeat kind name ("" is [Default]) for w. The caller closes
// them (see [Close]) when the worker is no longer supervised or watched.
func New(name string, w Worker, env Env) ([]Source, error) {
	if err := Check(name); err != nil {
		return nil, err
	}
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	return kinds[cmpOr(name)].newSources(w, env)
}

func cmpOr(name string) string {
	if name == "" {
		return Default
	}
	return name
}

// Close closes every source of srcs.
func Close(srcs []Source) {
	for _, s := range srcs {
		s.Close()
	}
}

// Find returns the first source of srcs that is a T, and whether there is one.
func Find[T any](srcs []Source) (T, bool) {
	for _, s := range srcs {
		if t, ok := s.(T); ok {
			return t, true
		}
	}
	var zero T
	return zero, false
}

func init() {
	register(Default, shmobj.KindShm, func(w Worker, env Env) ([]Source, error) {
		var srcs []Source
		if env.Supervised {
			n, err := listen(w, env)
			if err != nil {
				env.Logger.Warn("no notify socket: programs get no NOTIFY_SOCKET", "worker", w.Name(), "err", err)
			} else {
				srcs = append(srcs, n)
			}
		}
		if env.TCP != nil {
			srcs = append(srcs, env.TCP.attach(w))
		}
		return srcs, nil
	})
}
