package config

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/shmmon/shmmon/internal/field"
	"github.com/shmmon/shmmon/tcpwd"
)

// TCPWatchdog is the optional [tcp_watchdog] table: serve then runs the socket watchdog of
// the original framework (package tcpwd), whose clients feed the workers named in the file over TCP.
type TCPWatchdog struct {
	Listen string `toml:"listen"` // listen = "127.0.0.1:5005", resolved by [ListenAddress]; a port alone is on 127.0.0.1
	// MaxConnections is max_connections = 1024: how many clients may be connected at once
	// (1 to 1,048,576); one more is closed at once (tcpwd.Options.MaxConns).
	MaxConnections int `toml:"max_connections"`
}

// maxConnections is the largest max_connections.
const maxConnections = 1 << 20

var tcpWatchdogIndex = keysOf(reflect.TypeFor[TCPWatchdog]())

// tcpWatchdogKeys are the keys of [tcp_watchdog].
var tcpWatchdogKeys = names(tcpWatchdogIndex, 0)

// tcpWatchdog resolves the [tcp_watchdog] table.
func (p *parser) tcpWatchdog(raw map[string]any) *TCPWatchdog {
	tw := &TCPWatchdog{Listen: tcpwd.DefaultListen, MaxConnections: tcpwd.DefaultMaxConns}
	t := table{path: []string{"tcp_watchdog"}, label: "tcp_watchdog"}
	set := p.read(t, raw, tw, index(tcpWatchdogIndex), fmt.Errorf("unknown key (want one of %v)", tcpWatchdogKeys))
	p.check(t, raw, set, tw.problems())
	return tw
}

// own reads the listen key: an address of a fixed port, which clients need to know.
func (tw *TCPWatchdog) own(key string, v any) (any, bool, error) {
	if key != "listen" {
		return nil, false, nil
	}
	s, ok := v.(string)
	if !ok {
		return nil, true, gotWant(v, `a string such as "127.0.0.1:5005" or "5005"`)
	}
	addr, err := ListenAddress(s)
	if err == nil && strings.HasSuffix(addr, ":0") {
		err = fmt.Errorf("%s is not a listen address: clients need a fixed port (want 1-65535)", shorten(s))
	}
	return addr, true, err
}

// problems checks max_connections.
func (tw TCPWatchdog) problems() error {
	if tw.MaxConnections < 1 || tw.MaxConnections > maxConnections {
		return &field.Error{Pkg: "config", Field: "max_connections", Value: tw.MaxConnections,
			Problem: "is out of range", Want: fmt.Sprintf("1 to %d", maxConnections)}
	}
	return nil
}
