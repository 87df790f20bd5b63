package shmobj

import (
	"errors"
	"io/fs"
)

var (
	// ErrInvalidName is returned for a name that [ValidateName] rejects.
	ErrInvalidName = errors.New("shmobj: invalid name")
	// ErrNotRegular is returned for a name that shows something other than a regular file
	// (a FIFO, a socket, a directory, a symbolic link, a device): not an object. Such a file
	// is never read or mapped; a monitor publishing the name replaces it as a stale object.
	ErrNotRegular = errors.New("shmobj: not a shared-memory object")
	// ErrTooSmall is returned when an object is smaller than [MinSize], so it has no room for
	// a sequence.
	ErrTooSmall = errors.New("shmobj: object too small")
	// ErrFault is returned by an access to a mapping whose object was truncated (or unmapped)
	// under it: the memory fault was recovered.
	ErrFault = errors.New("shmobj: memory fault (object truncated under its mapping)")
	// ErrGone is returned by [Segment.Verify] when the object's name no longer exists.
	// It matches [fs.ErrNotExist].
	ErrGone = &goneError{}
	// ErrReplaced is returned by [Segment.Verify] when the name now names another object.
	ErrReplaced = errors.New("shmobj: object replaced under its name")
	// ErrTruncated is returned by [Segment.Verify] when the object became smaller than its
	// mapping.
	ErrTruncated = errors.New("shmobj: object truncated")
	// ErrModeChanged is returned by [Segment.VerifyMode] when the object's permissions are no
	// longer the ones it was published with.
	ErrModeChanged = errors.New("shmobj: object mode changed")
	// ErrUnsupported is returned on platforms without POSIX shared memory support in shmmon.
	ErrUnsupported = errors.New("shmobj: unsupported platform")
)

type goneError struct{}

func (*goneError) Error() string        { return "shmobj: object removed" }
func (*goneError) Is(target error) bool { return target == fs.ErrNotExist }
