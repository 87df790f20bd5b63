//go:build !linux

package tcpwd

import (
	"errors"
	"fmt"
	"net"
	"runtime"
)

// peerProcess is Linux only: a registration on loopback cannot be verified elsewhere, so it
// is refused.
func peerProcess(ours, peer *net.TCPAddr, root int) (int, error) {
	return 0, fmt.Errorf("tcpwd: finding the process of a peer needs Linux's /proc, not %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
