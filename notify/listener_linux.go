package notify

import (
	"errors"
	"net"

	"golang.org/x/sys/unix"
)

const (
	msgTrunc  = unix.MSG_TRUNC
	msgCtrunc = unix.MSG_CTRUNC
	// maxFds is how many file descriptors a message may carry and still be read (they are
	// closed at once); with more, the control data is truncated and the message dropped.
	maxFds = 16
)

// oobSize holds the credentials and up to maxFds descriptors.
var oobSize = unix.CmsgSpace(unix.SizeofUcred) + unix.CmsgSpace(4*maxFds)

// supported reports nil: Linux has SO_PASSCRED.
func supported() error { return nil }

// passCred turns SO_PASSCRED on: the kernel attaches every sender's credentials.
func passCred(conn *net.UnixConn) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}); err != nil {
		return err
	}
	return serr
}

// credentials returns the sender's credentials from a message's control data, closing any
// file descriptors it carries.
func credentials(oob []byte) (cred, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return cred{}, errors.New("bad control data: " + err.Error())
	}
	var c cred
	found := false
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET {
			continue
		}
		switch m.Header.Type {
		case unix.SCM_RIGHTS:
			fds, _ := unix.ParseUnixRights(&m)
			for _, fd := range fds {
				unix.Close(fd)
			}
		case unix.SCM_CREDENTIALS:
			if u, err := unix.ParseUnixCredentials(&m); err == nil {
				c, found = cred{pid: int(u.Pid), uid: int(u.Uid), gid: int(u.Gid)}, true
			}
		}
	}
	if !found || c.pid <= 0 {
		return cred{}, errors.New("no sender credentials")
	}
	return c, nil
}
