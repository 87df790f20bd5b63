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

// supported fails: sender credentials (SO_PASSCRED), which authenticate every message, are
// Linux only.
func supported() error { return errors.ErrUnsupported }

func passCred(*net.UnixConn) error { return errors.ErrUnsupported }

func credentials([]byte) (cred, error) { return cred{}, errors.ErrUnsupported }
