package shmobj

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"time"
)

// Flag chooses how [Open] treats an existing or missing object, as Boost.Interprocess does.
type Flag int

const (
	// CreateOnly creates the object and fails if it exists (O_CREAT|O_EXCL|O_RDWR).
	CreateOnly Flag = iota + 1
	// OpenOnly opens an existing object and fails if it is missing (O_RDWR).
	OpenOnly
	// OpenOrCreate opens the object, creating it when missing (O_CREAT|O_RDWR).
	OpenOrCreate
)

// DefaultMode is the permission shmmon gives the objects it creates. Boost's default is
// 0644; workers of another user need e.g. 0660 and a shared group.
const DefaultMode os.FileMode = 0o600

// tempPrefix starts the names of objects being published.
const tempPrefix = ".shmmon-"

// FileID identifies an object independently of its name.
type FileID struct{ Dev, Ino uint64 }

// Object is an open shared-memory object, not yet mapped. It is not safe for concurrent use.
type Object struct {
	name string
	fd   int
}

// Open opens the object name with Boost's semantics for flag. An object it creates gets
// exactly mode (the umask does not apply, as with Boost's permissions) and size 0: call
// [Object.Truncate] before [Object.Map].
//
// The error wraps [ErrInvalidName] for a bad name; for a missing object with [OpenOnly] it
// matches [fs.ErrNotExist]; for an existing one with [CreateOnly], [fs.ErrExist].
func Open(name string, flag Flag, mode os.FileMode) (*Object, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	perm := uint32(mode.Perm())
	for {
		var fd int
		var err error
		created := false
		switch flag {
		case CreateOnly:
			fd, err = sysOpen(Path(name), true, true, perm)
			created = err == nil
		case OpenOnly:
			fd, err = sysOpen(Path(name), false, false, 0)
		case OpenOrCreate:
			// Like Boost: try to create, and open what exists when that fails, so we know
			// whether to set the mode.
			fd, err = sysOpen(Path(name), true, true, perm)
			created = err == nil
			if isExist(err) {
				fd, err = sysOpen(Path(name), false, false, 0)
				if isNotExist(err) {
					continue // removed between the two calls: try again
				}
			}
		default:
			return nil, fmt.Errorf("shmobj: open %q: unknown flag %d", name, flag)
		}
		if err != nil {
			return nil, fmt.Errorf("shmobj: open %q: %w", name, err)
		}
		if created {
			if err := sysFchmod(fd, perm); err != nil {
				_ = sysClose(fd)
				_ = sysUnlink(Path(name))
				return nil, fmt.Errorf("shmobj: chmod %q: %w", name, err)
			}
		}
		return &Object{name: name, fd: fd}, nil
	}
}

// Remove removes the object name, like shared_memory_object::remove: it reports whether an
// object was removed, and a missing object is not an error.
func Remove(name string) (bool, error) {
	if err := ValidateName(name); err != nil {
		return false, err
	}
	if err := sysUnlink(Path(name)); err != nil {
		if isNotExist(err) {
			return false, nil
		}
		return false, fmt.Errorf("shmobj: remove %q: %w", name, err)
	}
	return true, nil
}

// Name returns the object's name.
func (o *Object) Name() string { return o.name }

// Size returns the object's current size in bytes.
func (o *Object) Size() (int64, error) {
	size, _, err := sysFstat(o.fd)
	if err != nil {
		return 0, fmt.Errorf("shmobj: stat %q: %w", o.name, err)
	}
	return size, nil
}

// Truncate sets the object's size, like shared_memory_object::truncate.
func (o *Object) Truncate(size int64) error {
	if err := sysFtruncate(o.fd, size); err != nil {
		return fmt.Errorf("shmobj: truncate %q to %d: %w", o.name, size, err)
	}
	return nil
}

// Map maps the whole object, read-write and shared. The mapping stays valid after the Object
// is closed. An object smaller than [MinSize] is refused with [ErrTooSmall].
func (o *Object) Map() (*Segment, error) {
	size, id, err := sysFstat(o.fd)
	if err != nil {
		return nil, fmt.Errorf("shmobj: stat %q: %w", o.name, err)
	}
	if size < MinSize {
		return nil, fmt.Errorf("%w: %q has %d bytes, want at least %d", ErrTooSmall, o.name, size, MinSize)
	}
	if size != int64(int(size)) {
		return nil, fmt.Errorf("shmobj: map %q: size %d too large", o.name, size)
	}
	mem, err := sysMmap(o.fd, int(size))
	if err != nil {
		return nil, fmt.Errorf("shmobj: map %q: %w", o.name, err)
	}
	return newSegment(o.name, mem, id), nil
}

// Close closes the object's descriptor. It is safe to call more than once.
func (o *Object) Close() error {
	if o.fd < 0 {
		return nil
	}
	err := sysClose(o.fd)
	o.fd = -1
	if err != nil {
		return fmt.Errorf("shmobj: close %q: %w", o.name, err)
	}
	return nil
}

// Attach opens the existing object name ([OpenOnly]) and maps it whole, as a worker does. The
// error matches [fs.ErrNotExist] when there is no such object and wraps [ErrTooSmall] when it
// is smaller than [MinSize] (e.g. created but not yet sized).
func Attach(name string) (*Segment, error) {
	o, err := Open(name, OpenOnly, 0)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return o.Map()
}

// PublishOptions describe the object [Publish] creates. The zero value is usable.
type PublishOptions struct {
	Size       int64         // bytes; 0 means DefaultSize; at least MinSize
	Mode       os.FileMode   // permissions; 0 means DefaultMode
	WatchedPid int64         // pid of the watched worker, 0 = unknown
	Interval   time.Duration // check interval, recorded for readers
	Threshold  uint32        // stall threshold, recorded for readers
}

// Publish atomically replaces the object name with a new, zeroed one and maps it: the object
// is created under a temporary name of its own in /dev/shm, sized, given a status record in
// its monitor half (state [StateWaiting], this process as monitor), and then renamed over
// name, so a worker that opens name never sees a missing or empty object. A shmmon object it
// replaces is first marked retired, so its workers move to the new one. The temporary object
// is removed on every error path.
func Publish(name string, opts PublishOptions) (*Segment, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if opts.Size == 0 {
		opts.Size = DefaultSize
	}
	if opts.Size < MinSize {
		return nil, fmt.Errorf("%w: size %d, want at least %d", ErrTooSmall, opts.Size, MinSize)
	}
	if opts.Mode == 0 {
		opts.Mode = DefaultMode
	}
	var tmp *Object
	var err error
	for range 10 {
		tmpName := fmt.Sprintf("%s%d-%08x", tempPrefix, os.Getpid(), rand.Uint32())
		tmp, err = Open(tmpName, CreateOnly, opts.Mode)
		if err == nil || !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("shmobj: publish %q: %w", name, err)
	}
	defer tmp.Close()
	seg, err := func() (*Segment, error) {
		if err := tmp.Truncate(opts.Size); err != nil {
			return nil, err
		}
		seg, err := tmp.Map()
		if err != nil {
			return nil, err
		}
		seg.initRecord(opts, false)
		retire(name)
		if err := sysRename(Path(tmp.name), Path(name)); err != nil {
			seg.Close()
			return nil, fmt.Errorf("shmobj: rename %q to %q: %w", tmp.name, name, err)
		}
		seg.name = name
		return seg, nil
	}()
	if err != nil {
		_, _ = Remove(tmp.name)
		return nil, fmt.Errorf("shmobj: publish %q: %w", name, err)
	}
	return seg, nil
}

// initRecord writes a fresh status record for this monitor: state waiting, no stalls, the
// retired flag clear. keep keeps the kill and restart counters of an adopted record.
func (s *Segment) initRecord(opts PublishOptions, keep bool) (err error) {
	r := s.rec
	if r == nil {
		return nil
	}
	defer Unguard(Guard(), &err)
	if !keep {
		r.kills.Store(0)
		r.restarts.Store(0)
	}
	copy(r.magic[:], Magic)
	r.version.Store(RecordVersion)
	r.length.Store(RecordLen)
	r.monitorPid.Store(int64(os.Getpid()))
	r.watchedPid.Store(opts.WatchedPid)
	r.interval.Store(int64(opts.Interval))
	r.threshold.Store(opts.Threshold)
	r.lastSeq.Store(0)
	r.lastProgress.Store(0)
	r.lastCheck.Store(0)
	r.stalls.Store(0)
	r.retired.Store(0)
	r.state.Store(uint32(StateWaiting))
	return nil
}

// retire marks the shmmon object that currently holds name as retired, when there is one
// with a status record. It is best effort: a missing, foreign or too small object is left
// alone, and workers still notice the replacement by its inode.
func retire(name string) {
	o, err := Open(name, OpenOnly, 0)
	if err != nil {
		return
	}
	defer o.Close()
	seg, err := o.Map()
	if err != nil {
		return
	}
	defer seg.Close()
	_ = seg.MarkRetired()
}

// Adopt takes over the existing object name when it can, as a restarted monitor does: an
// object of exactly opts.Size bytes whose monitor half holds a shmmon record (or is all zero)
// is mapped as it is — the worker half, and so the sequence, is kept — and its record is
// written anew (this process as monitor, state [StateWaiting], counters kept). Anything else
// (missing, another size, a foreign monitor half) is replaced by [Publish]. It reports
// whether the object was adopted.
func Adopt(name string, opts PublishOptions) (*Segment, bool, error) {
	if opts.Size == 0 {
		opts.Size = DefaultSize
	}
	seg, err := Attach(name)
	if err != nil {
		seg, err = Publish(name, opts)
		return seg, false, err
	}
	if ok, _ := seg.adoptable(int64(opts.Size)); !ok {
		seg.Close()
		seg, err = Publish(name, opts)
		return seg, false, err
	}
	if err := seg.initRecord(opts, true); err != nil {
		seg.Close()
		seg, err = Publish(name, opts)
		return seg, false, err
	}
	return seg, true, nil
}

// adoptable reports whether the segment has the wanted size and a monitor half that is
// shmmon's or empty.
func (s *Segment) adoptable(size int64) (ok bool, err error) {
	if int64(len(s.mem)) != size {
		return false, nil
	}
	if s.rec == nil {
		return true, nil
	}
	defer Unguard(Guard(), &err)
	if bytes.Equal(s.rec.magic[:], []byte(Magic)) {
		return true, nil
	}
	for _, b := range s.mem[len(s.mem)/2 : len(s.mem)/2+RecordLen] {
		if b != 0 {
			return false, nil
		}
	}
	return true, nil
}
