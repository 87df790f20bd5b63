package monitor

import (
	"errors"
	"os"
	"time"

	"github.com/shmmon/shmmon/shmobj"
)

// Options describe the object a [Heartbeat] publishes and how it is judged. The zero value
// means the defaults.
type Options struct {
	Config
	Size       int64       // object size in bytes; 0 means shmobj.DefaultSize
	Mode       os.FileMode // permissions; 0 means shmobj.DefaultMode
	WatchedPid int64       // recorded in the status record; 0 = unknown
}

// Heartbeat is one published object and the [Checker] that judges its sequence. The object
// is mapped once, for the Heartbeat's life. A Heartbeat is not safe for concurrent use.
type Heartbeat struct {
	name string
	opts Options
	seg  *shmobj.Segment
	chk  Checker
}

// Publish publishes a fresh object name (atomically replacing any stale one, see
// [shmobj.Publish]) and starts its rules at now.
func Publish(name string, opts Options, now time.Time) (*Heartbeat, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.Config = opts.WithDefaults()
	h := &Heartbeat{name: name, opts: opts, chk: Checker{cfg: opts.Config}}
	if err := h.Republish(now); err != nil {
		return nil, err
	}
	return h, nil
}

// Republish replaces the object with a fresh one, as after the old one was deleted, truncated
// or replaced under the monitor, and starts the rules over at now. The kill and restart
// counts carry over. On error the Heartbeat keeps its old mapping.
func (h *Heartbeat) Republish(now time.Time) error {
	seg, err := shmobj.Publish(h.name, shmobj.PublishOptions{
		Size:       h.opts.Size,
		Mode:       h.opts.Mode,
		WatchedPid: h.opts.WatchedPid,
		Interval:   h.opts.Interval,
		Threshold:  uint32(h.opts.Stalls),
	})
	if err != nil {
		return err
	}
	if old := h.seg; old != nil {
		if snap, err := old.Snapshot(); err == nil && snap.HasRecord {
			seg.SetCounts(snap.Record.Kills, snap.Record.Restarts)
		}
		old.Close()
	}
	h.seg = seg
	h.chk.Reset(now)
	return nil
}

// Name returns the object's name.
func (h *Heartbeat) Name() string { return h.name }

// Checker returns the heartbeat's checker, for its counts and state.
func (h *Heartbeat) Checker() *Checker { return &h.chk }

// Segment returns the current mapping. It changes on [Heartbeat.Republish].
func (h *Heartbeat) Segment() *shmobj.Segment { return h.seg }

// Check reads the sequence, judges it (see the package doc) and writes the outcome into the
// status record, all under one fault guard. It makes no system call and no allocation. A
// memory fault (the object was truncated under the mapping) is returned as an error wrapping
// [shmobj.ErrFault], with result OK: the caller should [Heartbeat.Republish].
func (h *Heartbeat) Check(now time.Time) (r Result, err error) {
	mono, wall := now.Sub(clockBase), now.UnixNano()
	defer shmobj.Unguard(shmobj.Guard(), &err)
	r = h.chk.observe(h.seg.RawSeq(), mono, wall)
	h.seg.RawStoreStatus(h.chk.status(wall))
	return r, nil
}

// Verify reports whether the object is still in place: nil, or an error wrapping
// [shmobj.ErrGone], [shmobj.ErrReplaced] or [shmobj.ErrTruncated] (see [shmobj.Segment.Verify]).
// It makes one stat system call.
func (h *Heartbeat) Verify() error { return h.seg.Verify() }

// Close unmaps the object and, with remove, removes it — but only while the name still
// shows this heartbeat's own object, so an object another monitor published is never
// removed. It is safe to call more than once.
func (h *Heartbeat) Close(remove bool) error {
	if h.seg == nil {
		return nil
	}
	var err error
	if remove {
		if v := h.seg.Verify(); v == nil || errors.Is(v, shmobj.ErrTruncated) {
			_, err = shmobj.Remove(h.name)
		}
	}
	err = errors.Join(err, h.seg.Close())
	h.seg = nil
	return err
}
