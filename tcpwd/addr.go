package tcpwd

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// DefaultListen is the address of a [tcp_watchdog] table without listen.
const DefaultListen = "127.0.0.1:5005"

// ListenAddr resolves a listen address as the config writes it: "PORT" or ":PORT" is on
// loopback (127.0.0.1:PORT); any other host must be an IP address given explicitly, such as
// "0.0.0.0:5005" or "[::1]:5005". The port must be 1 to 65535. It returns the address as
// IP:PORT; the error names the value and what is accepted.
func ListenAddr(s string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("tcpwd: listen address %q %s (want PORT, :PORT or IP:PORT, e.g. \"5005\" or \"0.0.0.0:5005\"; PORT 1-65535)", shorten(s), why)
	}
	host, port := "", s
	if strings.ContainsRune(s, ':') {
		var err error
		if host, port, err = net.SplitHostPort(s); err != nil {
			return bad("is not HOST:PORT")
		}
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return bad("has no valid port")
	}
	ip := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	if host != "" {
		if ip, err = netip.ParseAddr(host); err != nil {
			return bad("has a host that is not an IP address")
		}
	}
	return netip.AddrPortFrom(ip, uint16(n)).String(), nil
}
