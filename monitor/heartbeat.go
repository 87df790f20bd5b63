package monitor

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
)

// Options describe the object a [Heartbeat] publishes and how it is judged. The zero value
// means the defaults.
type Options struct {
	Config
	Size       int64       // object size in bytes; 0 means shmobj.DefaultSize
	Mode       os.FileMode // permissions; 0 means shmobj.DefaultMode
	WatchedPid int64       // recorded in the status record; 0 = unknown
	// Limits are the worker's resource limits, which its owner has [Worker.CheckLimits] judge
	// every interval; none by default.
	Limits Limits
	// OnEvent, when set, is called on the monitor's goroutine for every [Event] (for a
	// [Watch], the one goroutine that runs the checks of every watch loop of its interval); it
	// must not block (hand slow work to another goroutine).
	OnEvent func(Event)
	// OnCheck, when set, is called on the monitor's goroutine at the end of every
	// [Worker.Check] of the loop (verifying the object, judging its sequence,
	// logging a change; a kill that follows is not included) with the time the step began
	// and how long it took. It must not block.
	OnCheck func(now time.Time, took time.Duration)
}

// Validate reports the first field of o that is out of range: the check rules
// ([Config.Validate]), the object's size ([shmobj.ValidateSize]; 0 is the default) and mode
// (0 is the default, else 0001 to 0777), and the limits ([Limits.ValidateResolved]).
func (o Options) Validate() error {
	if err := o.Config.Validate(); err != nil {
		return err
	}
	if o.Size != 0 {
		if err := shmobj.ValidateSize(o.Size); err != nil {
			return fmt.Errorf("monitor: %w", err)
		}
	}
	if o.Mode&^os.ModePerm != 0 {
		return fmt.Errorf("monitor: mode %v: want permission bits only, 0001 to 0777", o.Mode)
	}
	return o.Limits.ValidateResolved()
}

// Heartbeat is one published object and the [Checker] that judges its sequence: the part of
// a [Worker] that reads the sequence and writes the status record. The object is mapped once,
// for the Heartbeat's life (or until it must be published again). A Heartbeat is not safe
// for concurrent use, except [Heartbeat.beat].
type Heartbeat struct {
	// What every check reads comes first, together: at thousands of objects a check's cost is
	// the cache lines it touches.
	seg      *shmobj.Segment
	dir      *dirWatch   // the watch on shmobj.Dir that raises changed; nil = none
	changed  atomic.Bool // an event named the object since the last verify
	verified time.Time   // when Step last verified the object
	chk      Checker

	// beatMu guards seg against the owner's changes of it (a re-publish, Close) while beat
	// uses it on another goroutine; the owner reads seg without it.
	beatMu sync.RWMutex
	name   string
	opts   Options
}

// verifyEvery is how often Step verifies its object even when the directory watch saw no
// change naming it: a safety net for a change the watch could not see.
// inotify reports every change to a tmpfs directory's entries (removal, rename, truncation,
// chmod) and an overflow or a lost watch makes every object verify, so this is rare: a stat
// per object per minute, which at 10,000 objects is a tenth of the stats of a 10s net.
const verifyEvery = time.Minute

// ErrWatched is returned by [OpenWorker] when the object is already watched by
// another live shmmon: two monitors of one object would replace it from under each other.
var ErrWatched = errors.New("monitor: object is watched by another running shmmon")

// checkOwner refuses an object that another live shmmon watches: one whose status record
// names, as its monitor, a live process other than this one that runs the same program and
// maps this very object (its /proc/PID/maps shows the object's device and inode), when the
// object belongs to this process's user or to root. Anyone who may write an object can
// write any pid into its record, so the pid alone proves nothing: an object of another
// owner, a record naming a process that does not map the object, a dead monitor, a reused
// pid (another program) or an object without a record (a Boost checker's) is stale, and fair
// game.
func checkOwner(name string) error {
	snap, fi, err := shmobj.Inspect(name)
	if err != nil || !snap.HasRecord || snap.Record.Retired {
		return nil
	}
	if int(fi.Uid) != os.Geteuid() && fi.Uid != 0 {
		return nil
	}
	pid := int(snap.Record.MonitorPid)
	p, err := proc.Open(pid) // refuses pid <= 1 and this process
	if err != nil {
		return nil
	}
	defer p.Close()
	if !proc.SameProgram(pid) {
		return nil
	}
	if mapped, err := p.MapsFile(fi.ID.Dev, fi.ID.Ino); err != nil || !mapped {
		return nil
	}
	return fmt.Errorf("%w: pid %d watches %q (stop it first)", ErrWatched, pid, name)
}

// publish publishes a fresh object name (atomically replacing any stale one, see
// [shmobj.Publish]) and starts its rules at now, in a Heartbeat of its own.
func publish(name string, opts Options, now time.Time) (*Heartbeat, error) {
	h := new(Heartbeat)
	_, err := h.open(name, opts, false, now)
	return h, err
}

// open publishes the object name for h and starts its rules at now. An object another running
// shmmon watches is refused with [ErrWatched].
//
// With adopt, it takes over the existing object when it can trust it — this user's, writable
// by no one the configured mode leaves out, of the wanted size, shmmon's (see [shmobj.Adopt])
// — keeping the worker's sequence and the kill and restart counts, and publishes a fresh one
// otherwise; the [shmobj.Adoption] tells whether the object was adopted, what its record held
// then, or why an object found was not adopted.
func (h *Heartbeat) open(name string, opts Options, adopt bool, now time.Time) (shmobj.Adoption, error) {
	if err := opts.Validate(); err != nil {
		return shmobj.Adoption{}, err
	}
	if err := checkOwner(name); err != nil {
		return shmobj.Adoption{}, err
	}
	opts.Config = opts.WithDefaults()
	h.name, h.opts, h.chk = name, opts, Checker{cfg: opts.Config}
	var a shmobj.Adoption
	if adopt {
		seg, ad, err := shmobj.Adopt(name, h.publishOptions())
		if err != nil {
			return ad, err
		}
		a, h.seg = ad, seg
		h.chk.Reset(now)
	} else if err := h.republish(now); err != nil {
		return a, err
	}
	h.watchDir()
	return a, nil
}

// watchDir subscribes the heartbeat to the directory watch. The flag starts raised, so the
// first Step verifies whatever happened before.
func (h *Heartbeat) watchDir() {
	h.changed.Store(true)
	h.dir = subscribe(h.name, &h.changed)
}

// verifyDue reports whether Step must verify the object now: after the directory watch saw
// an event naming it, at every check when there is no trusted watch, and at least every
// verifyEvery.
func (h *Heartbeat) verifyDue(now time.Time) bool {
	// A load first: the swap, a locked instruction, only when an event raised the flag.
	if (h.changed.Load() && h.changed.Swap(false)) || !h.dir.trusted() || now.Sub(h.verified) >= verifyEvery {
		h.verified = now
		return true
	}
	return false
}

func (h *Heartbeat) publishOptions() shmobj.PublishOptions {
	return shmobj.PublishOptions{
		Size:       h.opts.Size,
		Mode:       h.opts.Mode,
		WatchedPid: h.opts.WatchedPid,
		Interval:   h.opts.Interval,
		Threshold:  uint32(h.opts.Stalls),
	}
}

// republish replaces the object with a fresh one, as after the old one was deleted, truncated
// or replaced under the monitor, and starts the rules over at now. The kill and restart
// counts, the kind and the status text carry over. On error the Heartbeat keeps its old mapping.
func (h *Heartbeat) republish(now time.Time) error {
	seg, err := shmobj.Publish(h.name, h.publishOptions())
	if err != nil {
		return err
	}
	old := h.seg
	if old != nil {
		if snap, err := old.Snapshot(); err == nil && snap.HasRecord {
			seg.SetCounts(snap.Record.Kills, snap.Record.Restarts)
			seg.SetKind(snap.Record.Kind)
			seg.SetStatusText(snap.StatusText)
		}
	}
	h.beatMu.Lock()
	h.seg = seg
	h.beatMu.Unlock()
	if old != nil {
		old.Close()
	}
	h.chk.Reset(now)
	return nil
}

// beat adds one to the sequence, and records that the worker's beats arrive as kind. It is
// safe to call from any goroutine: it beats the current mapping, never one a re-publish or
// Close is unmapping, and does nothing once the Heartbeat is closed.
func (h *Heartbeat) beat(kind shmobj.Kind) {
	h.beatMu.RLock()
	defer h.beatMu.RUnlock()
	if h.seg != nil {
		h.seg.Beat()
		h.seg.SetKind(kind)
	}
}

// setStatus stores the status text in the object, unless it is closed.
func (h *Heartbeat) setStatus(text string) {
	h.beatMu.RLock()
	defer h.beatMu.RUnlock()
	if h.seg != nil {
		h.seg.SetStatusText(text)
	}
}

// newRun tells the heartbeat that a new worker process pid (0 = unknown) starts now, as
// after a restart: the rules start over (a new grace, no stalls) on the same object, whose
// status record gets the new pid.
func (h *Heartbeat) newRun(pid int64, now time.Time) {
	h.opts.WatchedPid = pid
	h.seg.SetWatchedPid(pid)
	h.chk.Reset(now)
	h.seg.StoreStatus(h.chk.status(now.UnixNano()))
}

// setWatchedPid records pid as the watched process, as when a worker names its main process
// (MAINPID=), without starting the rules over.
func (h *Heartbeat) setWatchedPid(pid int64) {
	h.opts.WatchedPid = pid
	h.seg.SetWatchedPid(pid)
}

// setInterval changes the check interval to d from now on, in the checker and the status
// record (see [Checker.SetInterval]).
func (h *Heartbeat) setInterval(d time.Duration, now time.Time) error {
	if err := h.chk.SetInterval(d, now); err != nil {
		return err
	}
	h.opts.Interval = d
	h.seg.SetInterval(d)
	return nil
}

// Check reads the sequence, judges it (see the package doc) and writes the outcome into the
// status record, all under one fault guard. It makes no system call and no allocation. A
// memory fault (the object was truncated under the mapping) is returned as an error wrapping
// [shmobj.ErrFault], with result OK: the object must be published again (the loop's check,
// [Worker.Check], does it).
func (h *Heartbeat) Check(now time.Time) (r Result, err error) {
	mono, wall := now.Sub(clockBase), now.UnixNano()
	defer shmobj.Unguard(shmobj.Guard(), &err)
	r = h.chk.observe(h.seg.RawSeq(), mono, wall)
	h.seg.RawStoreStatus(h.chk.status(wall))
	return r, nil
}

// step is one check of the worker's loop at now: it verifies the object (with a stat, only
// when the process's inotify watch on shmobj.Dir saw a change naming it, and at least every
// minute; at every check where no watch runs), re-publishes it when it was removed,
// truncated, replaced or had its mode changed under the monitor (logging why; the rules
// start over), and checks it. It returns the check's result (OK when the object was
// re-published).
func (h *Heartbeat) step(now time.Time, log *slog.Logger) Result {
	var err error
	r := OK
	if h.verifyDue(now) {
		err = h.Verify()
	}
	if err == nil {
		r, err = h.Check(now)
	}
	if err != nil {
		h.replace(log, err, now)
		return OK
	}
	return r
}

// replace re-publishes an object that went missing, shrank or was replaced, after logging why.
func (h *Heartbeat) replace(log *slog.Logger, why error, now time.Time) {
	event := "object-lost"
	switch {
	case errors.Is(why, shmobj.ErrGone):
		event = "object-removed"
	case errors.Is(why, shmobj.ErrReplaced):
		event = "object-replaced"
	case errors.Is(why, shmobj.ErrTruncated), errors.Is(why, shmobj.ErrFault):
		event = "object-truncated"
	case errors.Is(why, shmobj.ErrModeChanged):
		event = "object-mode-changed"
	}
	if err := h.republish(now); err != nil {
		log.Error("cannot re-publish object; will retry", "worker", h.name, "event", event, "why", why, "err", err)
		return
	}
	log.Warn("object re-published; stall count reset", "worker", h.name, "event", event, "why", why)
}

// pid returns the pid to show for the worker: the watched one when known, else the one a Go
// worker wrote into the object (0 for Boost workers).
func (h *Heartbeat) pid() int64 {
	if h.opts.WatchedPid != 0 {
		return h.opts.WatchedPid
	}
	if snap, err := h.seg.Snapshot(); err == nil {
		return snap.WorkerPid
	}
	return 0
}

// Verify reports whether the object is still in place with the permissions it was published
// with: nil, or an error wrapping [shmobj.ErrGone], [shmobj.ErrReplaced], [shmobj.ErrTruncated]
// or [shmobj.ErrModeChanged] (see [shmobj.Segment.VerifyMode]). It makes one stat system call.
func (h *Heartbeat) Verify() error {
	mode := h.opts.Mode
	if mode == 0 {
		mode = shmobj.DefaultMode
	}
	return h.seg.VerifyMode(mode)
}

// Close unmaps the object and, with remove, removes it — but only while the name still
// shows this heartbeat's own object, so an object another monitor published is never
// removed. It is safe to call more than once; a beat after it does nothing.
func (h *Heartbeat) Close(remove bool) error {
	if h.dir != nil {
		h.dir.unsubscribe(h.name, &h.changed)
		h.dir = nil
	}
	if h.seg == nil {
		return nil
	}
	var err error
	if remove {
		if v := h.seg.Verify(); v == nil || errors.Is(v, shmobj.ErrTruncated) {
			_, err = shmobj.Remove(h.name)
		}
	}
	h.beatMu.Lock()
	seg := h.seg
	h.seg = nil
	h.beatMu.Unlock()
	return errors.Join(err, seg.Close())
}
