package proctab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmmon/shmmon/internal/field"
)

// The defaults and the layout of the original table.
const (
	DefaultKey    = 0x5095
	DefaultSemKey = 0x5095
	DefaultSlots  = 1000
	MaxSlots      = 1 << 20 // the most records a table may have
	RecordSize    = 72      // bytes per record
	NameSize      = 51      // bytes of the name field, NUL included
	MaxNameLen    = NameSize - 1

	OffPid     = 0
	OffName    = 4
	OffTimeout = 56
	OffAtime   = 64
)

const (
	// DefaultMode is the permission of a table [Open] creates unless [Options] say otherwise:
	// its creator's user and group may read and write it, nobody else. (The original's 0666
	// lets every local user write records and the lock.)
	DefaultMode os.FileMode = 0o660

	// LockTimeout bounds every wait for the table's lock: a holder that keeps it, or a
	// semaphore someone set to 0, makes the operation fail with [ErrLockTimeout] rather
	// than block.
	LockTimeout = 3 * time.Second

	// MinEvery is the shortest time between two sweeps that checkproc --every and the
	// [proctab] every of serve accept: each sweep takes the lock the clients wait for.
	MinEvery = 100 * time.Millisecond

	// lockSlice is the longest single wait for the lock: a cancelled context ends a wait
	// within it.
	lockSlice = 100 * time.Millisecond
)

var (
	// ErrFull is returned by [Table.Register] when every slot is taken.
	ErrFull = errors.New("proctab: table full")
	// ErrNotExist is returned by [Attach] when there is no table with the key; it matches
	// fs.ErrNotExist.
	ErrNotExist = fmt.Errorf("proctab: no table: %w", fs.ErrNotExist)
	// ErrLockTimeout is returned, wrapped with the semaphore's key, when the table's lock
	// was not free within [LockTimeout].
	ErrLockTimeout = errors.New("proctab: lock wait timed out")
	// ErrUnsupported is returned on platforms other than Linux.
	ErrUnsupported = errors.New("proctab: System V tables are supported on Linux only")
)

// record overlays one record of the segment; its offsets are the Off* constants (checked by
// a test and against the C++ client).
type record struct {
	pid     atomic.Int32
	name    [NameSize]byte
	_       [1]byte
	timeout int32
	_       [4]byte
	atime   atomic.Int64
}

// Options select a table, and how [Open] creates it. The zero value means the defaults.
type Options struct {
	Key    int // System V key of the segment; 0 = DefaultKey
	SemKey int // System V key of the semaphore; 0 = Key when Key is set, else DefaultSemKey
	Slots  int // records; 0 = DefaultSlots. Every user of a table must agree on it.

	// Mode is the permission (0 to 0777) of the segment and the semaphore that Open
	// creates; 0 = DefaultMode. A table that exists keeps its own. Whoever may write the
	// table may rewrite its records and its lock, so 0666 (the original's) only when every
	// local user is trusted with the table's clients.
	Mode os.FileMode
	// Group is the gid given to the segment and the semaphore that Open creates, so that
	// clients of several users can share a table of Mode 0660; 0 = none (the creator's
	// group, which is root's when root creates it).
	Group int
}

func (o Options) withDefaults() Options {
	if o.SemKey == 0 {
		// A table of another key gets a lock of that key too: a test table never takes the
		// lock of the real one.
		o.SemKey = o.Key
	}
	if o.Key == 0 {
		o.Key = DefaultKey
	}
	if o.SemKey == 0 {
		o.SemKey = DefaultSemKey
	}
	if o.Slots == 0 {
		o.Slots = DefaultSlots
	}
	if o.Mode == 0 {
		o.Mode = DefaultMode
	}
	return o
}

// ValidateSlots reports whether n is a number of records a table may have: 1 to [MaxSlots].
// The error is a [*field.Error].
func ValidateSlots(n int) error {
	if n < 1 || n > MaxSlots {
		return &field.Error{Pkg: "proctab", Field: "slots", Value: n, Problem: "is out of range", Want: fmt.Sprintf("1 to %d", MaxSlots)}
	}
	return nil
}

// ParseKey parses a System V key as users write it: a positive number, decimal or 0x hex
// ("0x5095", "20629"), at most 2^31-1. Anything else is a [*field.Error] naming the text
// and what is accepted.
func ParseKey(s string) (int, error) {
	problem := "is not a key"
	n, err := strconv.ParseInt(s, 0, 64)
	if err == nil {
		if n > 0 && n <= math.MaxInt32 {
			return int(n), nil
		}
		problem = "is out of range"
	}
	return 0, &field.Error{Pkg: "proctab", Field: "key", Value: s, Problem: problem,
		Want: "a positive number, decimal or 0x hex, e.g. 0x5095"}
}

// Table is an attached process table. Its methods are safe for concurrent use: structural
// changes hold the table's semaphore.
type Table struct {
	opts  Options
	shmid int
	semid int
	mem   []byte
	recs  []record
}

// Open attaches the table of opts, creating the segment and the semaphore (set to 1) when they
// are absent, as the original does, but with opts.Mode (DefaultMode, 0660, unless set) and
// opts.Group.
func Open(opts Options) (*Table, error) { return open(opts, true) }

// Attach attaches an existing table; it returns an error matching [ErrNotExist] (and
// fs.ErrNotExist) when there is none.
func Attach(opts Options) (*Table, error) { return open(opts, false) }

func open(opts Options, create bool) (*Table, error) {
	opts = opts.withDefaults()
	if err := ValidateSlots(opts.Slots); err != nil {
		return nil, err
	}
	switch {
	case opts.Mode&^0o777 != 0:
		return nil, fmt.Errorf("proctab: mode %#o: want permission bits, 0 to 0777", uint32(opts.Mode))
	case opts.Group < 0:
		return nil, fmt.Errorf("proctab: group %d: want a gid, or 0 for none", opts.Group)
	}
	shmid, created, err := shmGet(opts.Key, opts.Slots*RecordSize, opts.Mode, create)
	if err != nil {
		if isNotExist(err) {
			return nil, fmt.Errorf("%w with key %#x", ErrNotExist, opts.Key)
		}
		if errors.Is(err, errInvalid) {
			return nil, fmt.Errorf("proctab: segment %#x is smaller than %d slots: every user of the table must use the same slot count: %w", opts.Key, opts.Slots, err)
		}
		return nil, fmt.Errorf("proctab: segment %#x (%d slots): %w", opts.Key, opts.Slots, err)
	}
	// What this call created goes again if the rest fails: no half-made table is left.
	undo := func() {}
	if created {
		undo = func() { shmRemove(shmid) }
		if opts.Group != 0 {
			if err := shmSetGroup(shmid, opts.Group); err != nil {
				undo()
				return nil, fmt.Errorf("proctab: segment %#x: giving it group %d: %w", opts.Key, opts.Group, err)
			}
		}
	}
	semid, semCreated, err := semGet(opts.SemKey, opts.Mode, create)
	if err != nil {
		undo()
		if isNotExist(err) {
			return nil, fmt.Errorf("%w: no semaphore with key %#x", ErrNotExist, opts.SemKey)
		}
		return nil, fmt.Errorf("proctab: semaphore %#x: %w", opts.SemKey, err)
	}
	if semCreated {
		shmUndo := undo
		undo = func() { shmUndo(); semRemove(semid) }
		if opts.Group != 0 {
			if err := semSetGroup(semid, opts.Group); err != nil {
				undo()
				return nil, fmt.Errorf("proctab: semaphore %#x: giving it group %d: %w", opts.SemKey, opts.Group, err)
			}
		}
	}
	mem, err := shmAttach(shmid)
	if err != nil {
		undo()
		return nil, fmt.Errorf("proctab: attach segment %#x: %w", opts.Key, err)
	}
	if len(mem) < opts.Slots*RecordSize {
		shmDetach(mem)
		undo()
		return nil, fmt.Errorf("proctab: segment %#x has %d bytes, too small for %d slots", opts.Key, len(mem), opts.Slots)
	}
	recs := unsafe.Slice((*record)(unsafe.Pointer(&mem[0])), opts.Slots)
	return &Table{opts: opts, shmid: shmid, semid: semid, mem: mem, recs: recs}, nil
}

// Options returns the table's options, defaults applied.
func (t *Table) Options() Options { return t.opts }

// Close detaches the segment. The table and its records stay for the other processes.
func (t *Table) Close() error {
	if t.mem == nil {
		return nil
	}
	err := shmDetach(t.mem)
	t.mem, t.recs = nil, nil
	return err
}

// Remove deletes the segment and the semaphore (IPC_RMID), e.g. after a test.
func (t *Table) Remove() error {
	return errors.Join(shmRemove(t.shmid), semRemove(t.semid))
}

// locked runs f holding the table's semaphore, once [Table.lock] took it.
func (t *Table) locked(ctx context.Context, f func()) error {
	if err := t.lock(ctx); err != nil {
		return err
	}
	defer semGive(t.semid)
	f()
	return nil
}

// lock takes the table's semaphore, waiting at most LockTimeout ([ErrLockTimeout]) and
// while ctx is not done (its cause). The wait is made of slices of at most lockSlice, and
// ctx is looked at between them, so that a cancel (SIGTERM, say) ends it promptly: a signal
// only interrupts semtimedop with EINTR, which says nothing about giving up.
func (t *Table) lock(ctx context.Context) error {
	deadline := time.Now().Add(LockTimeout)
	for {
		if ctx.Err() != nil {
			return fmt.Errorf("proctab: lock %#x: %w", t.opts.SemKey, context.Cause(ctx))
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%w: semaphore %#x not free within %v (a holder keeps it, or someone who may write it set it to 0)",
				ErrLockTimeout, t.opts.SemKey, LockTimeout)
		}
		taken, err := semTake(t.semid, min(left, lockSlice))
		if err != nil {
			return fmt.Errorf("proctab: lock %#x: %w", t.opts.SemKey, err)
		}
		if taken {
			return nil
		}
	}
}

// Record is one decoded record.
type Record struct {
	Slot    int           `json:"slot"`
	Pid     int           `json:"pid"`
	Name    string        `json:"name"`
	Timeout time.Duration `json:"timeout_ns"`
	Atime   time.Time     `json:"atime"` // last heartbeat
}

func (r *record) decode(slot int) Record {
	name := r.name[:]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	return Record{
		Slot:    slot,
		Pid:     int(r.pid.Load()),
		Name:    string(name),
		Timeout: time.Duration(r.timeout) * time.Second,
		Atime:   time.Unix(r.atime.Load(), 0),
	}
}

// put writes a whole record; the lock must be held.
func (r *record) put(pid int, name string, timeout time.Duration, atime time.Time) {
	clear(r.name[:])
	copy(r.name[:MaxNameLen], name)
	r.timeout = int32(timeout / time.Second)
	r.atime.Store(atime.Unix())
	r.pid.Store(int32(pid))
}

func (r *record) clear() {
	r.pid.Store(0)
	clear(r.name[:])
	r.timeout = 0
	r.atime.Store(0)
}

// List returns the records in use (pid != 0), read under the lock, in slot order. The wait
// for the lock is bounded: see [ErrLockTimeout].
func (t *Table) List() ([]Record, error) { return t.list(context.Background()) }

func (t *Table) list(ctx context.Context) ([]Record, error) {
	var out []Record
	err := t.locked(ctx, func() {
		for i := range t.recs {
			if t.recs[i].pid.Load() != 0 {
				out = append(out, t.recs[i].decode(i))
			}
		}
	})
	return out, err
}

// Peek returns the record in use whose pid match accepts, the one with the newest heartbeat
// when several do, or false when none does. It reads without the lock, each field with one
// load (a record being rewritten may read half old, half new), so it never waits: it is for
// a heartbeat source that polls the table at every check. What may signal a process reads
// under the lock ([Table.Sweep]).
func (t *Table) Peek(match func(pid int) bool) (Record, bool) {
	var best Record
	found := false
	for i := range t.recs {
		if pid := int(t.recs[i].pid.Load()); pid != 0 && match(pid) {
			if r := t.recs[i].decode(i); !found || r.Atime.After(best.Atime) {
				best, found = r, true
			}
		}
	}
	return best, found
}

// record reads slot under the lock; ok is false when it is free.
func (t *Table) record(ctx context.Context, slot int) (r Record, ok bool, err error) {
	err = t.locked(ctx, func() {
		if t.recs[slot].pid.Load() != 0 {
			r, ok = t.recs[slot].decode(slot), true
		}
	})
	return r, ok, err
}

// Slot is this process's record in a table, from [Table.Register].
type Slot struct {
	t    *Table
	slot int
	pid  int32
}

// Register records this process with name (at most 50 bytes) and timeout (whole seconds,
// at least 1) and a heartbeat now, under the lock: it reuses a record that already holds this
// pid, else the first free one. A full table is [ErrFull]; a lock not free in time,
// [ErrLockTimeout].
func (t *Table) Register(name string, timeout time.Duration) (*Slot, error) {
	return t.put(os.Getpid(), name, timeout, time.Now())
}

func (t *Table) put(pid int, name string, timeout time.Duration, atime time.Time) (*Slot, error) {
	switch {
	case name == "" || len(name) > MaxNameLen || bytes.IndexByte([]byte(name), 0) >= 0:
		return nil, fmt.Errorf("proctab: name %q: want 1 to %d bytes without NUL", name, MaxNameLen)
	case timeout < time.Second || timeout/time.Second > 1<<31-1:
		return nil, fmt.Errorf("proctab: timeout %v: want whole seconds, at least 1s", timeout)
	}
	slot := -1
	err := t.locked(context.Background(), func() {
		free := -1
		for i := range t.recs {
			switch p := t.recs[i].pid.Load(); {
			case p == int32(pid):
				slot = i
			case p == 0 && free < 0:
				free = i
			}
			if slot >= 0 {
				break
			}
		}
		if slot < 0 {
			slot = free
		}
		if slot >= 0 {
			t.recs[slot].put(pid, name, timeout, atime)
		}
	})
	if err != nil {
		return nil, err
	}
	if slot < 0 {
		return nil, fmt.Errorf("%w (%d slots)", ErrFull, t.opts.Slots)
	}
	return &Slot{t: t, slot: slot, pid: int32(pid)}, nil
}

// Index returns the slot's index in the table.
func (s *Slot) Index() int { return s.slot }

// Update is a heartbeat: the record's atime becomes now. It takes no lock (one atomic store).
func (s *Slot) Update() { s.t.recs[s.slot].atime.Store(time.Now().Unix()) }

// Close clears the record, under the lock, if it still belongs to this process.
func (s *Slot) Close() error {
	return s.t.clearIf(context.Background(), s.slot, s.pid, nil)
}

// clearIf clears slot under the lock if it still holds pid (and, when atime is not nil, that
// heartbeat): a record re-registered meanwhile is left alone.
func (t *Table) clearIf(ctx context.Context, slot int, pid int32, atime *int64) error {
	return t.locked(ctx, func() {
		r := &t.recs[slot]
		if r.pid.Load() == pid && (atime == nil || r.atime.Load() == *atime) {
			r.clear()
		}
	})
}
