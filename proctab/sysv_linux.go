//go:build linux

package proctab

import (
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"
)

// System V semaphore constants of Linux.
const (
	semSetVal = 16     // SETVAL
	semUndo   = 0x1000 // SEM_UNDO
	ipcRmid   = 0      // IPC_RMID
)

type sembuf struct {
	num uint16
	op  int16
	flg int16
}

func shmGet(key, size int, create bool) (int, error) {
	flag := 0o666
	if create {
		flag |= unix.IPC_CREAT
	}
	return unix.SysvShmGet(key, size, flag)
}

func shmAttach(id int) ([]byte, error) { return unix.SysvShmAttach(id, 0, 0) }
func shmDetach(b []byte) error         { return unix.SysvShmDetach(b) }

func shmRemove(id int) error {
	_, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil)
	return err
}

// semGet returns the semaphore set of key, creating it and setting it to 1 (unlocked) when
// create is set and it is absent.
func semGet(key int, create bool) (int, error) {
	if create {
		id, _, errno := unix.Syscall(unix.SYS_SEMGET, uintptr(key), 1, uintptr(unix.IPC_CREAT|unix.IPC_EXCL|0o666))
		if errno == 0 {
			if _, _, errno := unix.Syscall6(unix.SYS_SEMCTL, id, 0, semSetVal, 1, 0, 0); errno != 0 {
				return -1, errno
			}
			return int(id), nil
		}
		if errno != unix.EEXIST {
			return -1, errno
		}
	}
	id, _, errno := unix.Syscall(unix.SYS_SEMGET, uintptr(key), 1, 0o666)
	if errno != 0 {
		return -1, errno
	}
	return int(id), nil
}

// semOp adds op to the semaphore with SEM_UNDO, waiting as the kernel does; EINTR is retried.
func semOp(id int, op int16) error {
	b := sembuf{num: 0, op: op, flg: semUndo}
	for {
		_, _, errno := unix.Syscall(unix.SYS_SEMOP, uintptr(id), uintptr(unsafe.Pointer(&b)), 1)
		switch errno {
		case 0:
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
