//go:build linux

package shmobj

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The raw system calls of this package. Everything above them is platform independent.

// openFlags are the flags of every open of a path in /dev/shm, where another user may have
// put anything under the name: O_NOFOLLOW (as glibc's shm_open) so a symbolic link is
// refused, O_NONBLOCK so a FIFO or a device cannot block the open, O_CLOEXEC so no program
// shmmon starts inherits the descriptor.
const openFlags = unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK

func sysOpen(path string, create, excl bool, perm uint32) (int, error) {
	flags := unix.O_RDWR | openFlags
	if create {
		flags |= unix.O_CREAT
	}
	if excl {
		flags |= unix.O_EXCL
	}
	return open(path, flags, perm)
}

func sysOpenRead(path string) (int, error) { return open(path, unix.O_RDONLY|openFlags, 0) }

func open(path string, flags int, perm uint32) (int, error) {
	for {
		fd, err := unix.Open(path, flags, perm)
		if err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

func sysFstat(fd int) (Info, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return Info{}, err
	}
	return statInfo(&st), nil
}

func sysLstat(path string) (Info, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return Info{}, err
	}
	return statInfo(&st), nil
}

// statInfo converts a stat result, its mode as os.FileMode has it.
func statInfo(st *unix.Stat_t) Info {
	mode := os.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFDIR:
		mode |= os.ModeDir
	case unix.S_IFLNK:
		mode |= os.ModeSymlink
	case unix.S_IFIFO:
		mode |= os.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= os.ModeSocket
	case unix.S_IFCHR:
		mode |= os.ModeDevice | os.ModeCharDevice
	case unix.S_IFBLK:
		mode |= os.ModeDevice
	default:
		mode |= os.ModeIrregular
	}
	for _, b := range []struct {
		bit  uint32
		mode os.FileMode
	}{{unix.S_ISUID, os.ModeSetuid}, {unix.S_ISGID, os.ModeSetgid}, {unix.S_ISVTX, os.ModeSticky}} {
		if st.Mode&b.bit != 0 {
			mode |= b.mode
		}
	}
	return Info{ID: FileID{Dev: st.Dev, Ino: st.Ino}, Size: st.Size, Mode: mode,
		Uid: st.Uid, Gid: st.Gid, Links: uint64(st.Nlink)}
}

func sysPread(fd int, b []byte, off int64) (int, error) {
	for {
		n, err := unix.Pread(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
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

// isDenied reports a permission error: EPERM or EACCES.
func isDenied(err error) bool { return err == unix.EPERM || err == unix.EACCES }
