//go:build !linux

package notify

import (
	"errors"
	"net"
)

const (
	msgTrunc  = 0
	msgCtrunc = 0
	oobSize   = 0
)

// passCred fails: sender credentials (SO_PASSCRED) are Linux only.
func passCred(*net.UnixConn) error {
	return errors.ErrUnsupported
}

func credentials([]byte) (cred, error) { return cred{}, errors.ErrUnsupported }
