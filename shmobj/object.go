package shmobj

import (
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
// Anyone may create a file in /dev/shm, so the open never blocks and never follows a link
// (O_NONBLOCK|O_NOFOLLOW), and only a regular file is an object: anything else under the
// name (a FIFO, a socket, a directory) is closed at once, unread.
//
// The error wraps [ErrInvalidName] for a bad name and [ErrNotRegular] for a file that is not
// an object; for a missing object with [OpenOnly] it matches [fs.ErrNotExist]; for an
// existing one with [CreateOnly], [fs.ErrExist].
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
		if err := checkRegular(fd, name); err != nil {
			_ = sysClose(fd)
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

// checkRegular returns nil when fd is a regular file, else an error wrapping
// [ErrNotRegular] (or fstat's).
func checkRegular(fd int, name string) error {
	fi, err := sysFstat(fd)
	if err != nil {
		return err
	}
	return fi.regular(name)
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
	fi, err := o.Stat()
	return fi.Size, err
}

// Stat returns what the file system says about the open object (fstat).
func (o *Object) Stat() (Info, error) {
	fi, err := sysFstat(o.fd)
	if err != nil {
		return Info{}, fmt.Errorf("shmobj: stat %q: %w", o.name, err)
	}
	return fi, nil
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
	fi, err := o.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size
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
	return newSegment(o.name, mem, fi.ID), nil
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
// replaces is first marked retired, so its workers move to the new one; a file that is no
// object (a FIFO, a socket) is replaced unread. The temporary object is removed on every
// error path. The name must pass [ValidatePublishName].
//
// /dev/shm is sticky: only root, or the owner of what holds name, may replace it. For any
// other caller, another user's file under name is an error saying whose it is.
func Publish(name string, opts PublishOptions) (*Segment, error) {
	if err := ValidatePublishName(name); err != nil {
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
			return nil, renameError(tmp.name, name, err)
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

// renameError explains why the temporary object tmp could not replace name.
func renameError(tmp, name string, err error) error {
	fi, serr := sysLstat(Path(name))
	switch {
	case serr != nil:
	case isDenied(err) && int(fi.Uid) != os.Geteuid():
		return fmt.Errorf("shmobj: cannot replace %s: it belongs to uid %d, and in the sticky %s only its owner or root may (%w)",
			Path(name), fi.Uid, Dir, err)
	case fi.Mode.IsDir():
		return fmt.Errorf("shmobj: cannot replace %s: it is a directory (%w)", Path(name), err)
	}
	return fmt.Errorf("shmobj: rename %q to %q: %w", tmp, name, err)
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

// Adoption is what [Adopt] did with the object it found under the name.
type Adoption struct {
	// Adopted is true when the existing object was taken over. Prev is then what it held
	// just before Adopt wrote this process's record: the previous monitor's record.
	Adopted bool
	Prev    Snapshot
	// Refused says why an object found under the name was replaced rather than adopted; it
	// is nil when the object was adopted, or when there was none.
	Refused error
}

// Adopt takes over the existing object name when it can trust it, as a restarted monitor
// does: a regular file that this process's effective uid owns, with one link (no other
// name), that no one may write beyond opts.Mode allows (and no other group, when the mode
// lets the group write), of exactly opts.Size bytes, whose monitor half holds a shmmon
// record (or is all zero). It is mapped as it is — the worker half, and so the sequence, is
// kept — and its record is written anew (this process as monitor, state [StateWaiting],
// counters kept). Anything else (missing, another size, another owner, a FIFO, a foreign
// monitor half) is replaced by [Publish], and the Adoption says why.
func Adopt(name string, opts PublishOptions) (*Segment, Adoption, error) {
	if err := ValidatePublishName(name); err != nil {
		return nil, Adoption{}, err
	}
	if opts.Size == 0 {
		opts.Size = DefaultSize
	}
	if opts.Mode == 0 {
		opts.Mode = DefaultMode
	}
	seg, prev, err := adopt(name, opts)
	if err == nil {
		return seg, Adoption{Adopted: true, Prev: prev}, nil
	}
	var a Adoption
	if !errors.Is(err, fs.ErrNotExist) {
		a.Refused = err
	}
	seg, err = Publish(name, opts)
	return seg, a, err
}

// adopt maps the object name and writes this process's record into it when the object
// passes the checks of [Adopt], and returns what it held before; otherwise it returns why
// not, having written nothing.
func adopt(name string, opts PublishOptions) (*Segment, Snapshot, error) {
	o, err := Open(name, OpenOnly, 0)
	if err != nil {
		return nil, Snapshot{}, err
	}
	defer o.Close()
	fi, err := o.Stat()
	if err != nil {
		return nil, Snapshot{}, err
	}
	if err := trusted(fi, opts); err != nil {
		return nil, Snapshot{}, fmt.Errorf("shmobj: not adopting %q: %w", name, err)
	}
	seg, err := o.Map()
	if err != nil {
		return nil, Snapshot{}, err
	}
	if int64(seg.Size()) != opts.Size { // resized since the stat
		seg.Close()
		return nil, Snapshot{}, fmt.Errorf("shmobj: not adopting %q: %d bytes, want %d", name, seg.Size(), opts.Size)
	}
	prev, err := seg.adoptable()
	if err == nil {
		err = seg.initRecord(opts, true)
	}
	if err != nil {
		seg.Close()
		return nil, Snapshot{}, fmt.Errorf("shmobj: not adopting %q: %w", name, err)
	}
	return seg, prev, nil
}

// trusted returns nil when an object of this file is one this process may adopt for opts
// (see [Adopt]), else why not.
func trusted(fi Info, opts PublishOptions) error {
	perm := fi.Mode.Perm()
	switch {
	case int(fi.Uid) != os.Geteuid():
		return fmt.Errorf("owned by uid %d, not this process's %d", fi.Uid, os.Geteuid())
	case perm&^opts.Mode.Perm() != 0:
		return fmt.Errorf("mode %#o allows more than the configured %#o", perm, opts.Mode.Perm())
	case perm&0o020 != 0 && int(fi.Gid) != os.Getegid():
		return fmt.Errorf("writable by group %d, not this process's %d", fi.Gid, os.Getegid())
	case fi.Links != 1:
		return fmt.Errorf("it has %d links (other names)", fi.Links)
	case fi.Size != opts.Size:
		return fmt.Errorf("%d bytes, want %d", fi.Size, opts.Size)
	}
	return nil
}

// adoptable returns the segment's contents when its monitor half is shmmon's or empty, else
// why not.
func (s *Segment) adoptable() (snap Snapshot, err error) {
	snap, err = s.Snapshot()
	if err != nil || snap.HasRecord || s.rec == nil {
		return snap, err
	}
	defer Unguard(Guard(), &err)
	for _, b := range s.mem[len(s.mem)/2 : len(s.mem)/2+RecordLen] {
		if b != 0 {
			return snap, errors.New("its monitor half is not shmmon's")
		}
	}
	return snap, nil
}
