package shmobj

import (
	"bytes"
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"
)

// Segment is a mapped shared-memory object: the whole object, mapped once, read-write.
//
// Every accessor is safe for concurrent use and recovers the memory fault of an object
// truncated under the mapping, returning [ErrFault]. No method may be called after, or
// concurrently with, [Segment.Close]: once unmapped, the addresses may be reused.
type Segment struct {
	name   string
	mem    []byte
	id     FileID
	seq    *atomic.Uint64 // worker half, offset 0
	pid    *atomic.Int64  // worker half, offset 8; nil when the half is too small
	rec    *record        // monitor half; nil when it is smaller than RecordLen
	closed atomic.Bool
	// last is what this segment last stored of the fields every check may change, so that a
	// check stores (and touches the record's memory for) only what changed: at thousands of
	// objects a check costs the cache lines it touches. Only the record's owner writes them.
	last Status
}

func newSegment(name string, mem []byte, id FileID) *Segment {
	s := &Segment{name: name, mem: mem, id: id}
	half := len(mem) / 2
	s.seq = (*atomic.Uint64)(unsafe.Pointer(&mem[OffSequence]))
	if half >= OffWorkerPid+8 {
		s.pid = (*atomic.Int64)(unsafe.Pointer(&mem[OffWorkerPid]))
	}
	// A mapping starts page-aligned, so half (a multiple of 8 whenever the record fits
	// at size/2 >= 128 and size is even) keeps the record 8-byte aligned. An odd or
	// unaligned half gets no record rather than misaligned atomics.
	if half >= RecordLen && half%8 == 0 {
		s.rec = (*record)(unsafe.Pointer(&mem[half]))
		r := s.rec
		s.last = Status{LastSeq: r.lastSeq.Load(), LastProgress: r.lastProgress.Load(), LastCheck: r.lastCheck.Load(),
			Stalls: r.stalls.Load(), State: State(r.state.Load())}
	}
	return s
}

// Name returns the object's name.
func (s *Segment) Name() string { return s.name }

// Size returns the size of the mapping, the object's size when it was mapped.
func (s *Segment) Size() int { return len(s.mem) }

// ID returns the identity of the mapped object.
func (s *Segment) ID() FileID { return s.id }

// HasRecord reports whether the monitor half is large enough for a status record. Record
// setters are no-ops on a segment without one.
func (s *Segment) HasRecord() bool { return s.rec != nil }

// Seq atomically loads the heartbeat sequence. It makes no system call and no allocation.
func (s *Segment) Seq() (seq uint64, err error) {
	defer Unguard(Guard(), &err)
	return s.seq.Load(), nil
}

// Beat atomically adds one to the heartbeat sequence. It makes no system call and no
// allocation.
func (s *Segment) Beat() (err error) {
	defer Unguard(Guard(), &err)
	s.seq.Add(1)
	return nil
}

// ResetWorker starts the worker half over, as a worker does when it opens the object: the
// sequence becomes 0, the rest of the half is cleared, and pid (when there is room for it)
// is written at offset 8.
func (s *Segment) ResetWorker(pid int64) (err error) {
	defer Unguard(Guard(), &err)
	s.seq.Store(0)
	if s.pid != nil {
		clear(s.mem[OffWorkerPid+8 : len(s.mem)/2])
		s.pid.Store(pid)
	}
	return nil
}

// Retired reports whether the object's monitor marked it retired (replaced by a new object
// under the same name).
func (s *Segment) Retired() (retired bool, err error) {
	if s.rec == nil {
		return false, nil
	}
	defer Unguard(Guard(), &err)
	return s.rec.retired.Load() != 0, nil
}

// Verify reports whether the mapped object is still the one its name shows and still as large
// as the mapping. It returns [ErrGone] when the name was removed, [ErrReplaced] when the name
// now shows another object (or file), [ErrTruncated] when the object shrank below the mapping,
// nil otherwise. It makes one stat system call and never touches the mapping.
func (s *Segment) Verify() error {
	_, err := s.verify()
	return err
}

// VerifyMode is [Segment.Verify] for the object's monitor, which also owns its permissions: it
// returns [ErrModeChanged] when the object is in place but its permission bits are no longer
// perm (someone's chmod would lock out the workers that open it next). It makes one stat system
// call, as Verify does.
func (s *Segment) VerifyMode(perm os.FileMode) error {
	mode, err := s.verify()
	if err == nil && mode != uint32(perm.Perm()) {
		return fmt.Errorf("%w: %q is %#o, want %#o", ErrModeChanged, s.name, mode, uint32(perm.Perm()))
	}
	return err
}

// verify is Verify, and returns the object's permission bits too. The name is not followed:
// a symbolic link put in its place is a replacement.
func (s *Segment) verify() (uint32, error) {
	fi, err := sysLstat(Path(s.name))
	switch {
	case err != nil && isNotExist(err):
		return 0, fmt.Errorf("%w: %q", ErrGone, s.name)
	case err != nil:
		return 0, fmt.Errorf("shmobj: stat %q: %w", s.name, err)
	case fi.ID != s.id:
		return 0, fmt.Errorf("%w: %q", ErrReplaced, s.name)
	case fi.Size < int64(len(s.mem)):
		return 0, fmt.Errorf("%w: %q is %d bytes, mapped %d", ErrTruncated, s.name, fi.Size, len(s.mem))
	}
	return uint32(fi.Mode.Perm()), nil
}

// Status is what a monitor writes into the status record after each check.
type Status struct {
	LastSeq      uint64
	LastProgress int64 // Unix ns; 0 = none yet
	LastCheck    int64 // Unix ns
	Stalls       uint32
	State        State
}

// StoreStatus writes st into the status record. Only fields whose value changed are stored.
// It makes no system call and no allocation.
func (s *Segment) StoreStatus(st Status) (err error) {
	if s.rec == nil {
		return nil
	}
	defer Unguard(Guard(), &err)
	s.RawStoreStatus(st)
	return nil
}

// RawSeq loads the sequence atomically, without a fault guard of its own: call it only
// between [Guard] and [Unguard]. It makes no system call and no allocation.
func (s *Segment) RawSeq() uint64 { return s.seq.Load() }

// RawStoreStatus is [Segment.StoreStatus] without a fault guard of its own: call it only
// between [Guard] and [Unguard].
func (s *Segment) RawStoreStatus(st Status) {
	if s.rec == nil {
		return
	}
	r, last := s.rec, &s.last
	if last.LastSeq != st.LastSeq {
		r.lastSeq.Store(st.LastSeq)
	}
	if last.LastProgress != st.LastProgress {
		r.lastProgress.Store(st.LastProgress)
	}
	r.lastCheck.Store(st.LastCheck)
	if last.Stalls != st.Stalls {
		r.stalls.Store(st.Stalls)
	}
	if last.State != st.State {
		r.state.Store(uint32(st.State))
	}
	*last = st
}

// SetState stores the worker's state in the status record.
func (s *Segment) SetState(st State) error {
	return s.updateRecord(func(r *record) {
		r.state.Store(uint32(st))
		s.last.State = st
	})
}

// SetWatchedPid stores the watched worker's pid in the status record.
func (s *Segment) SetWatchedPid(pid int64) error {
	return s.updateRecord(func(r *record) { r.watchedPid.Store(pid) })
}

// SetInterval stores the check interval in the status record.
func (s *Segment) SetInterval(d time.Duration) error {
	return s.updateRecord(func(r *record) { r.interval.Store(int64(d)) })
}

// AddKill counts one kill in the status record.
func (s *Segment) AddKill() error { return s.updateRecord(func(r *record) { r.kills.Add(1) }) }

// AddRestart counts one restart in the status record.
func (s *Segment) AddRestart() error { return s.updateRecord(func(r *record) { r.restarts.Add(1) }) }

// SetCounts stores the kill and restart counts, e.g. to carry them over to a re-published
// object.
func (s *Segment) SetCounts(kills, restarts uint64) error {
	return s.updateRecord(func(r *record) {
		r.kills.Store(kills)
		r.restarts.Store(restarts)
	})
}

// SetKind stores how the worker's beats arrive.
func (s *Segment) SetKind(k Kind) error {
	return s.updateRecord(func(r *record) {
		if r.kind.Load() != uint32(k) {
			r.kind.Store(uint32(k))
		}
	})
}

// updateRecord runs f on the status record, when the object holds one, turning a fault of the
// mapping into [ErrFault] (see [Guard]). f does not escape: calling it allocates nothing.
func (s *Segment) updateRecord(f func(r *record)) (err error) {
	if s.rec == nil {
		return nil
	}
	defer Unguard(Guard(), &err)
	f(s.rec)
	return nil
}

// textArea returns the monitor half when it has room for the status text, else nil.
func (s *Segment) textArea() []byte {
	if s.rec == nil {
		return nil
	}
	half := s.mem[len(s.mem)/2:]
	if len(half) < OffStatusText+MaxStatusText {
		return nil
	}
	return half
}

// SetStatusText stores the worker's status text (the notify protocol's STATUS=), cut to
// [MaxStatusText] bytes; it does nothing when the object has no room for it. The length is
// zeroed while the bytes change, so a concurrent reader sees the old text, no text, or the
// new text, and at worst a mix of the two of the new length.
func (s *Segment) SetStatusText(text string) (err error) {
	t := s.textArea()
	if t == nil {
		return nil
	}
	if len(text) > MaxStatusText {
		text = text[:MaxStatusText]
	}
	defer Unguard(Guard(), &err)
	n := (*atomic.Uint32)(unsafe.Pointer(&t[OffStatusTextLen]))
	n.Store(0)
	copy(t[OffStatusText:OffStatusText+MaxStatusText], text)
	n.Store(uint32(len(text)))
	return nil
}

// MarkRetired sets the retired flag, telling workers to reopen the object by name. Only an
// object that holds a shmmon status record (magic present) is marked: the monitor half of
// anything else is left untouched.
func (s *Segment) MarkRetired() error {
	return s.updateRecord(func(r *record) {
		if bytes.Equal(r.magic[:], []byte(Magic)) {
			r.retired.Store(1)
		}
	})
}

// Snapshot reads the whole object with atomic loads and decodes it.
func (s *Segment) Snapshot() (snap Snapshot, err error) {
	defer Unguard(Guard(), &err)
	snap = Snapshot{Size: int64(len(s.mem)), Seq: s.seq.Load()}
	if s.pid != nil {
		snap.WorkerPid = s.pid.Load()
	}
	r := s.rec
	if r == nil || !bytes.Equal(r.magic[:], []byte(Magic)) {
		return snap, nil
	}
	snap.HasRecord = true
	snap.Record = Record{
		Version:      r.version.Load(),
		MonitorPid:   r.monitorPid.Load(),
		WatchedPid:   r.watchedPid.Load(),
		LastSeq:      r.lastSeq.Load(),
		LastProgress: r.lastProgress.Load(),
		LastCheck:    r.lastCheck.Load(),
		Interval:     time.Duration(r.interval.Load()),
		Stalls:       r.stalls.Load(),
		Threshold:    r.threshold.Load(),
		State:        State(r.state.Load()),
		Retired:      r.retired.Load() != 0,
		Kills:        r.kills.Load(),
		Restarts:     r.restarts.Load(),
		Kind:         Kind(r.kind.Load()),
	}
	if t := s.textArea(); t != nil {
		snap.StatusText = decodeText(t)
	}
	return snap, nil
}

// Close unmaps the segment. It is safe to call more than once; see [Segment] for what is
// unsafe after it.
func (s *Segment) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	if err := sysMunmap(s.mem); err != nil {
		return fmt.Errorf("shmobj: unmap %q: %w", s.name, err)
	}
	return nil
}
