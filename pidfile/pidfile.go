// Package pidfile reads pidfiles safely: the files a daemon started elsewhere writes its pid
// to, which serve watches (a watched worker's pidfile key). A pidfile is a fact another user
// may have written, and serve runs as root and kills what it watches, so a pidfile is trusted,
// as systemd trusts a service's PIDFile=, only when nobody but root (or serve's own user)
// could have written it:
//
//   - The path is absolute. It is resolved one component at a time from /, and every
//     directory passed and every symbolic link followed on the way must be owned by root or
//     by the caller's effective user, and must not be writable by group or others, except
//     that a directory passed (not the file's own) may be writable by all if it is sticky,
//     like /tmp: there, nobody may rename or remove what is not theirs, and what the walk
//     enters next is checked in turn. The file's own directory may not be writable by group
//     or others at all, sticky or not: anyone could take the file's name before its daemon
//     writes it, or, where fs.protected_hardlinks is off, link another root file there.
//   - The file itself is not a symbolic link (it is opened with O_NOFOLLOW), is a regular
//     file (a FIFO or a device is refused before any read, and the open, O_NONBLOCK, never
//     waits), is owned by root or by the caller's effective user, and is not writable by
//     group or others.
//   - It holds at most [MaxSize] bytes: a decimal pid above 1, with spaces or newlines around
//     it.
//   - The process it names, once held by a pidfd ([proc.Open]), belongs to the file's owner
//     (its real uid), unless the owner is root; and it started before the file was last
//     written, or else the pid was reused after the file's process died: the file is stale.
//     The slack is [Slack], or a second when the file's time has no fraction of a second
//     (a file system that keeps whole seconds).
//   - Once the process a file named has ended, the file is stale until it is written again
//     or names another pid ([OpenAfter]): whatever holds that pid now is not the file's
//     process, however soon after the file it started.
//
// [Read] checks the file, [Open] and [OpenAfter] the file and its process. Every refusal is an [*Error]
// naming the path, the file's owner and the pid when known, and why; it matches [ErrUntrusted]
// (a rule above), [ErrInvalid] (not a pid), [ErrStale], or wraps the error of the system
// (errors.Is(err, fs.ErrNotExist) for a missing file, [proc.ErrNotExist] for a pid naming no
// process).
//
// This package is Linux only: elsewhere Read and Open return an error matching
// [errors.ErrUnsupported].
package pidfile

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/shmmon/shmmon/proc"
)

// MaxSize is the most a pidfile may hold, in bytes: room for any pid and whitespace.
const MaxSize = 64

// Conditions an [*Error] matches with errors.Is.
var (
	// ErrUntrusted: the file, its directory, a directory or link on its path, or the process it
	// names breaks a trust rule (see the package doc).
	ErrUntrusted = errors.New("pidfile: untrusted")
	// ErrInvalid: the file does not hold a pid, or the path is not absolute.
	ErrInvalid = errors.New("pidfile: not a pid")
	// ErrStale: the process the file names started after the file was last written, or the
	// file was not written since its last process ended ([OpenAfter]).
	ErrStale = errors.New("pidfile: stale")
)

// Error is a pidfile refused or not read.
type Error struct {
	Path  string // the pidfile
	Owner int    // the uid of the file's owner; -1 when it was not seen
	Pid   int    // the pid the file names; 0 when not read
	Why   string // what is wrong, for people
	Err   error  // ErrUntrusted, ErrInvalid, ErrStale, or the error of the system
}

// Error formats e as "pidfile PATH: WHY".
func (e *Error) Error() string { return "pidfile " + e.Path + ": " + e.Why }

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// File is what a trusted pidfile says.
type File struct {
	Path    string
	Pid     int       // the pid it names, above 1
	Owner   uint32    // the uid of its owner: 0 (root) or the caller's effective uid
	ModTime time.Time // when it was last written
}

// Read reads the pidfile at path and checks it and its path (not its process: see [Open]).
// Outcomes:
//
//   - The file, nil.
//   - A rule broken: an [*Error] matching [ErrUntrusted] or [ErrInvalid].
//   - The file or a directory on its path is missing, or cannot be read: an [*Error]
//     wrapping the error of the system (errors.Is(err, fs.ErrNotExist) for a missing one).
func Read(path string) (File, error) { return read(path, uint32(os.Geteuid())) }

// Slack is how much later than its pidfile was last written a process may have started and
// still be the file's: start times are in 1/100 s, rounded down, and a file's time is the
// kernel's coarse clock, a tick behind at most.
const Slack = 50 * time.Millisecond

// Open reads the pidfile at path as [Read] does and takes hold of the process it names,
// checking that process. Outcomes:
//
//   - The process, which the caller must Close, what the file says, nil.
//   - An error of [Read].
//   - The pid names no process: an [*Error] wrapping [proc.ErrNotExist] (matching
//     fs.ErrNotExist too).
//   - The pid names a process of another user than the file's owner (who is not root): an
//     [*Error] matching [ErrUntrusted].
//   - The process started after the file was written: an [*Error] matching [ErrStale].
//   - The process cannot be held or read ([proc.ErrRefused] for serve's own pid, say): an
//     [*Error] wrapping the error of package proc.
//
// The checks of the process are made while it is held by its pidfd: what is read about it is
// about this process, not another that got its pid after it ended.
func Open(path string) (*proc.Process, File, error) { return open(path, uint32(os.Geteuid()), nil) }

// OpenAfter is [Open] for a pidfile whose last process has ended: last is what the Open that
// took hold of it returned. While the file still names that pid and has not been written
// since, it is stale (an [*Error] matching [ErrStale]), whatever now holds the pid.
func OpenAfter(path string, last File) (*proc.Process, File, error) {
	return open(path, uint32(os.Geteuid()), &last)
}

func open(path string, euid uint32, last *File) (*proc.Process, File, error) {
	f, err := read(path, euid)
	if err != nil {
		return nil, File{}, err
	}
	refuse := func(why string, err error) error {
		return &Error{Path: path, Owner: int(f.Owner), Pid: f.Pid, Why: why, Err: err}
	}
	if last != nil && f.Pid == last.Pid && f.ModTime.Equal(last.ModTime) {
		return nil, File{}, refuse(fmt.Sprintf("names pid %d, whose process ended, and was not written since: stale", f.Pid), ErrStale)
	}
	p, err := proc.Open(f.Pid)
	if errors.Is(err, proc.ErrNotExist) {
		return nil, File{}, refuse(fmt.Sprintf("names pid %d: no such process", f.Pid), err)
	}
	if err != nil {
		return nil, File{}, refuse(fmt.Sprintf("names pid %d: %v", f.Pid, err), err)
	}
	// Both reads happen before Credentials looks at the pidfd: they are of the process held.
	started, serr := proc.StartTime(f.Pid)
	cred, err := p.Credentials()
	if err == nil {
		err = serr
	}
	uid := cred.RealUid
	switch {
	case errors.Is(err, os.ErrProcessDone) || errors.Is(err, proc.ErrNotExist):
		err = refuse(fmt.Sprintf("names pid %d: no such process", f.Pid), proc.ErrNotExist)
	case err != nil:
		err = refuse(fmt.Sprintf("names pid %d: %v", f.Pid, err), err)
	case f.Owner != 0 && uid != f.Owner:
		err = refuse(fmt.Sprintf("names pid %d, a process of uid %d, not of the file's owner", f.Pid, uid), ErrUntrusted)
	case started.After(f.ModTime.Add(slack(f.ModTime))):
		err = refuse(fmt.Sprintf("names pid %d, which started after the file was written: stale", f.Pid), ErrStale)
	}
	if err != nil {
		p.Close()
		return nil, File{}, err
	}
	return p, f, nil
}

// slack is how much later than mtime a file's process may have started: [Slack], or a second
// for a time in whole seconds.
func slack(mtime time.Time) time.Duration {
	if mtime.Nanosecond() == 0 {
		return time.Second
	}
	return Slack
}

// parse returns the pid in b, the bytes of a pidfile.
func parse(path string, owner uint32, b []byte) (int, error) {
	text := strings.TrimSpace(string(b))
	pid, err := strconv.Atoi(text)
	if err != nil || pid <= 1 {
		return 0, &Error{Path: path, Owner: int(owner), Why: fmt.Sprintf("%q is not a pid (a decimal number above 1)", text), Err: ErrInvalid}
	}
	return pid, nil
}
