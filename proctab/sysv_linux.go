//go:build linux

package proctab

import (
	"errors"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// System V constants of Linux that x/sys does not name.
const (
	semSetVal = 16     // SETVAL
	semUndo   = 0x1000 // SEM_UNDO
	ipcRmid   = 0      // IPC_RMID
	ipcSet    = 1      // IPC_SET
	ipcStat   = 2      // IPC_STAT
	ipc64     = 0x100  // IPC_64: the layouts below, which some architectures must ask for
)

type sembuf struct {
	num uint16
	op  int16
	flg int16
}

// semidDS is the kernel's semid64_ds: the permissions first, then times and a count that
// are not used here (the padding covers every architecture's layout).
type semidDS struct {
	perm unix.SysvIpcPerm
	_    [128]byte
}

// ctlCmd is cmd as the architecture's shmctl and semctl want it (see x/sys's SysvShmCtl).
func ctlCmd(cmd int) int {
	switch runtime.GOARCH {
	case "arm", "mips64", "mips64le":
		return cmd | ipc64
	}
	return cmd
}

// shmGet returns the segment of key; with create it makes it (mode, owned by the caller)
// when absent, and created reports whether it did.
func shmGet(key, size int, mode os.FileMode, create bool) (id int, created bool, err error) {
	if create {
		id, err := unix.SysvShmGet(key, size, unix.IPC_CREAT|unix.IPC_EXCL|int(mode.Perm()))
		if err == nil {
			return id, true, nil
		}
		if err != unix.EEXIST {
			return -1, false, err
		}
	}
	// No permission bits: shmat checks the access it asks for.
	id, err = unix.SysvShmGet(key, size, 0)
	return id, false, err
}

func shmAttach(id int) ([]byte, error) { return unix.SysvShmAttach(id, 0, 0) }
func shmDetach(b []byte) error         { return unix.SysvShmDetach(b) }

func shmRemove(id int) error {
	_, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil)
	return err
}

// shmStat returns the permissions of segment id.
func shmStat(id int) (perm, error) {
	var ds unix.SysvShmDesc
	if _, err := unix.SysvShmCtl(id, unix.IPC_STAT, &ds); err != nil {
		return perm{}, err
	}
	return permOf(ds.Perm), nil
}

// shmSetGroup gives segment id the group gid.
func shmSetGroup(id, gid int) error {
	var ds unix.SysvShmDesc
	if _, err := unix.SysvShmCtl(id, unix.IPC_STAT, &ds); err != nil {
		return err
	}
	ds.Perm.Gid = uint32(gid)
	_, err := unix.SysvShmCtl(id, unix.IPC_SET, &ds)
	return err
}

func permOf(p unix.SysvIpcPerm) perm {
	return perm{Uid: p.Uid, Gid: p.Gid, Cuid: p.Cuid, Cgid: p.Cgid, Mode: os.FileMode(p.Mode).Perm()}
}

// semGet returns the semaphore set of key; with create it makes it (mode, owned by the
// caller) and sets it to 1 (unlocked) when absent, and created reports whether it did.
func semGet(key int, mode os.FileMode, create bool) (id int, created bool, err error) {
	if create {
		id, _, errno := unix.Syscall(unix.SYS_SEMGET, uintptr(key), 1, uintptr(unix.IPC_CREAT|unix.IPC_EXCL|int(mode.Perm())))
		if errno == 0 {
			if _, _, errno := unix.Syscall6(unix.SYS_SEMCTL, id, 0, semSetVal, 1, 0, 0); errno != 0 {
				semRemove(int(id)) // do not leave a lock nobody can take
				return -1, false, errno
			}
			return int(id), true, nil
		}
		if errno != unix.EEXIST {
			return -1, false, errno
		}
	}
	// No permission bits: semop checks the access it asks for.
	sid, _, errno := unix.Syscall(unix.SYS_SEMGET, uintptr(key), 1, 0)
	if errno != 0 {
		return -1, false, errno
	}
	return int(sid), false, nil
}

// semSetGroup gives semaphore set id the group gid.
func semSetGroup(id, gid int) error {
	var ds semidDS
	if _, _, errno := unix.Syscall6(unix.SYS_SEMCTL, uintptr(id), 0, uintptr(ctlCmd(ipcStat)), uintptr(unsafe.Pointer(&ds)), 0, 0); errno != 0 {
		return errno
	}
	ds.perm.Gid = uint32(gid)
	if _, _, errno := unix.Syscall6(unix.SYS_SEMCTL, uintptr(id), 0, uintptr(ctlCmd(ipcSet)), uintptr(unsafe.Pointer(&ds)), 0, 0); errno != 0 {
		return errno
	}
	return nil
}

// semTake takes the semaphore (-1, SEM_UNDO, so that it is given back should this process
// die holding it), waiting at most wait: taken is false when it was not free by then. EINTR
// is retried with what is left of wait.
func semTake(id int, wait time.Duration) (taken bool, err error) {
	b := sembuf{num: 0, op: -1, flg: semUndo}
	deadline := time.Now().Add(wait)
	for {
		ts := unix.NsecToTimespec(max(time.Until(deadline), 0).Nanoseconds())
		_, _, errno := unix.Syscall6(unix.SYS_SEMTIMEDOP, uintptr(id), uintptr(unsafe.Pointer(&b)), 1, uintptr(unsafe.Pointer(&ts)), 0, 0)
		switch errno {
		case 0:
			return true, nil
		case unix.EAGAIN:
			return false, nil
		case unix.EINTR:
			continue
		}
		return false, errno
	}
}

// semGive gives the semaphore back (+1, SEM_UNDO), which never waits. ERANGE (someone set
// it to its maximum) leaves it at that: it is free either way.
func semGive(id int) error {
	b := sembuf{num: 0, op: 1, flg: semUndo}
	for {
		_, _, errno := unix.Syscall(unix.SYS_SEMOP, uintptr(id), uintptr(unsafe.Pointer(&b)), 1)
		switch errno {
		case 0, unix.ERANGE:
			return nil
		case unix.EINTR:
			continue
		}
		return errno
	}
}

func semRemove(id int) error {
	if _, _, errno := unix.Syscall(unix.SYS_SEMCTL, uintptr(id), 0, ipcRmid); errno != 0 {
		return errno
	}
	return nil
}

func isNotExist(err error) bool { return errors.Is(err, unix.ENOENT) }

// errInvalid is shmget's answer for an existing segment smaller than the size asked for.
var errInvalid error = unix.EINVAL
