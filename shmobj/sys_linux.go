//go:build linux

package shmobj

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The raw system calls of this package. Everything above them is platform independent.

func sysOpen(path string, create, excl bool, perm uint32) (int, error) {
	flags := unix.O_RDWR | unix.O_CLOEXEC | unix.O_NOFOLLOW // as glibc's shm_open
	if create {
		flags |= unix.O_CREAT
	}
	if excl {
		flags |= unix.O_EXCL
	}
	for {
		fd, err := unix.Open(path, flags, perm)
		if err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

func sysFstat(fd int) (size int64, id FileID, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, FileID{}, err
	}
	return st.Size, FileID{Dev: st.Dev, Ino: st.Ino}, nil
}

func sysStat(path string) (size int64, id FileID, perm uint32, err error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, FileID{}, 0, err
	}
	return st.Size, FileID{Dev: st.Dev, Ino: st.Ino}, st.Mode & 0o777, nil
}

func sysFchmod(fd int, perm uint32) error   { return unix.Fchmod(fd, perm) }
func sysFtruncate(fd int, size int64) error { return unix.Ftruncate(fd, size) }
func sysClose(fd int) error                 { return unix.Close(fd) }
func sysUnlink(path string) error           { return unix.Unlink(path) }
func sysRename(from, to string) error       { return unix.Rename(from, to) }

// sysMmap and sysMunmap use the pointer forms: unix.Mmap keeps every mapping in a map of its
// own, tens of bytes per object that a monitor of thousands does not need.
func sysMmap(fd int, size int) ([]byte, error) {
	p, err := unix.MmapPtr(fd, 0, nil, uintptr(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	return unsafe.Slice((*byte)(p), size), nil
}

func sysMunmap(b []byte) error {
	return unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(b)), uintptr(len(b)))
}

func isNotExist(err error) bool { return err == unix.ENOENT }
func isExist(err error) bool    { return err == unix.EEXIST }
