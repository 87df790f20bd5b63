package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/shmmon/shmmon/tcpwd"
)

// TCPWatchdog is the optional [tcp_watchdog] table: serve then runs the socket watchdog of
// the original framework (package tcpwd), whose clients feed the workers named in the file over TCP.
type TCPWatchdog struct {
	Listen string // listen = "127.0.0.1:5005", resolved by [ListenAddress]; a port alone is on 127.0.0.1
	// MaxConnections is max_connections = 1024: how many clients may be connected at once
	// (1 to 1,048,576); one more is closed at once (tcpwd.Options.MaxConns).
	MaxConnections int
}

// tcpWatchdogKeys are the keys of [tcp_watchdog].
var tcpWatchdogKeys = []string{"listen", "max_connections"}

// tcpWatchdog resolves the [tcp_watchdog] table.
func (p *parser) tcpWatchdog(raw map[string]any) *TCPWatchdog {
	tw := &TCPWatchdog{Listen: tcpwd.DefaultListen, MaxConnections: tcpwd.DefaultMaxConns}
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		v, line, label := raw[k], p.pos.line("tcp_watchdog", k), "tcp_watchdog "+k
		switch k {
		case "listen":
			s, ok := v.(string)
			if !ok {
				p.add(line, label, gotWant(v, `a string such as "127.0.0.1:5005" or "5005"`))
				continue
			}
			addr, err := ListenAddress(s)
			if err == nil && strings.HasSuffix(addr, ":0") {
				err = fmt.Errorf("%s is not a listen address: clients need a fixed port (want 1-65535)", shorten(s))
			}
			if err != nil {
				p.add(line, label, err)
				continue
			}
			tw.Listen = addr
		case "max_connections":
			n, err := integer(v, 1, 1<<20, "%d to %d")
			if err != nil {
				p.add(line, label, err)
				continue
			}
			tw.MaxConnections = int(n)
		default:
			p.add(line, label, fmt.Errorf("unknown key (want one of %v)", tcpWatchdogKeys))
		}
	}
	return tw
}
