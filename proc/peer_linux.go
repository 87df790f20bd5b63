package proc

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PeerOf returns the credentials of the process at the other end of the Unix socket c, as the
// kernel recorded them when the connection was made (SO_PEERCRED: pid, uid and gid; and
// SO_PEERGROUPS: the supplementary groups). They are the peer's at connect (or listen) time,
// not read from /proc, so a peer that exits and whose pid is reused meanwhile cannot pass for
// another. Outcomes:
//
//   - The peer's credentials, nil.
//   - c is not a Unix socket, or the kernel refuses the options (Linux before 4.13 lacks
//     SO_PEERGROUPS): the wrapped error.
func PeerOf(c syscall.Conn) (Peer, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("proc: peer credentials: %w", err)
	}
	var p Peer
	var oerr error
	if err := rc.Control(func(fd uintptr) {
		var cred *unix.Ucred
		if cred, oerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); oerr != nil {
			oerr = fmt.Errorf("SO_PEERCRED: %w", oerr)
			return
		}
		p.Pid, p.Uid, p.Gid = int(cred.Pid), cred.Uid, cred.Gid
		p.Groups, oerr = peerGroups(int(fd))
	}); err != nil {
		return Peer{}, fmt.Errorf("proc: peer credentials: %w", err)
	}
	if oerr != nil {
		return Peer{}, fmt.Errorf("proc: peer credentials: %w", oerr)
	}
	return p, nil
}

// peerGroups reads SO_PEERGROUPS, an array of gid_t; x/sys/unix has no getter of its own for
// it (GetsockoptString would cut the array at its first zero byte).
func peerGroups(fd int) ([]uint32, error) {
	buf := make([]byte, 64*4)
	for {
		n := uint32(len(buf))
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		switch {
		case errno == unix.ERANGE && int(n) > len(buf):
			buf = make([]byte, n) // n is the size it needs
			continue
		case errno != 0:
			return nil, fmt.Errorf("SO_PEERGROUPS: %w", errno)
		}
		groups := make([]uint32, n/4)
		for i := range groups {
			groups[i] = binary.NativeEndian.Uint32(buf[4*i:])
		}
		return groups, nil
	}
}
