package proc

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// procFile opens the /proc directory of pid, the error matching [ErrNotExist] when there is
// no such process.
func procFile(pid int, what string) (procfs.Proc, error) {
	if pid <= 0 {
		return procfs.Proc{}, fmt.Errorf("%w: pid %d", ErrNotExist, pid)
	}
	p, err := procfs.NewProc(pid)
	if err != nil {
		return procfs.Proc{}, procError(pid, what, err)
	}
	return p, nil
}

// procError wraps an error reading /proc/PID: a process that is gone (or went while being
// read) is [ErrNotExist].
func procError(pid int, what string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("%w: pid %d", ErrNotExist, pid)
	}
	return fmt.Errorf("proc: %s of pid %d: %w", what, pid, err)
}

// MapsFile reports whether the process pid has the file of device dev and inode ino mapped
// into its memory, from /proc/PID/maps (the st_dev and st_ino of the file: a shared-memory
// object, or a System V segment's inode on the kernel's shm mount). The file is matched by
// its numbers, not by the path the maps show, which follows renames and may end in
// " (deleted)". Reading another user's maps needs root (ptrace read access). Outcomes:
//
//   - true, nil: a mapping of the file is there.
//   - false, nil: none is.
//   - false and an error matching [ErrNotExist]: there is no such process.
//   - false and another error: the maps could not be read (e.g. matching fs.ErrPermission).
func MapsFile(pid int, dev, ino uint64) (bool, error) {
	p, err := procFile(pid, "maps")
	if err != nil {
		return false, err
	}
	maps, err := p.ProcMaps()
	if err != nil {
		return false, procError(pid, "maps", err)
	}
	for _, m := range maps {
		if m.Dev == dev && m.Inode == ino {
			return true, nil
		}
	}
	return false, nil
}

// IDs are a process's real and effective user and group ids.
type IDs struct {
	Uid, Euid uint32
	Gid, Egid uint32
}

// ProcessIDs returns the real and effective user and group ids of the process pid, from
// /proc/PID/status. The error matches [ErrNotExist] when there is no such process.
func ProcessIDs(pid int) (IDs, error) {
	p, err := procFile(pid, "ids")
	if err != nil {
		return IDs{}, err
	}
	st, err := p.NewStatus()
	if err != nil {
		return IDs{}, procError(pid, "ids", err)
	}
	return IDs{Uid: uint32(st.UIDs[0]), Euid: uint32(st.UIDs[1]), Gid: uint32(st.GIDs[0]), Egid: uint32(st.GIDs[1])}, nil
}
