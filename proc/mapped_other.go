//go:build !linux

package proc

// MapsFile is Linux only: it returns an error matching [errors.ErrUnsupported].
func MapsFile(pid int, dev, ino uint64) (bool, error) { return false, errUnsupported }

// IDs are a process's real and effective user and group ids.
type IDs struct {
	Uid, Euid uint32
	Gid, Egid uint32
}

// ProcessIDs is Linux only: it returns an error matching [errors.ErrUnsupported].
func ProcessIDs(pid int) (IDs, error) { return IDs{}, errUnsupported }
