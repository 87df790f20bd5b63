package config

import (
	"fmt"
	"net"
	"reflect"
	"strconv"
	"strings"
)

// Serve is the optional [serve] table: settings of `shmmon serve` itself rather than of a
// worker. A change to it takes effect when serve restarts (a reload logs a warning).
type Serve struct {
	// Listen is the address of serve's HTTP endpoint (/metrics, /status, /healthz), resolved
	// by [ListenAddress]; "" (the default, or listen = "") = no endpoint.
	Listen string `toml:"listen"`
}

var serveIndex = keysOf(reflect.TypeFor[Serve]())

// serveKeys are the keys of [serve].
var serveKeys = names(serveIndex, 0)

// DefaultListenHost is the host of a listen address given without one: the endpoint is local
// unless an address says otherwise.
const DefaultListenHost = "127.0.0.1"

// ListenAddress resolves a listen address as the [serve] listen key and serve's --listen take
// it: "PORT" or ":PORT" is DefaultListenHost:PORT; "HOST:PORT" (an IP address, "[::1]:PORT",
// or a host name) is kept. PORT is 0 to 65535; 0 picks a free port. Anything else is an error
// naming the value and what is accepted.
func ListenAddress(s string) (string, error) {
	bad := fmt.Errorf(`%s is not a listen address (want PORT, :PORT or HOST:PORT, e.g. "9464" or "0.0.0.0:9464"; `+
		`without a host, %s)`, shorten(s), DefaultListenHost)
	host, port := "", s
	if strings.Contains(s, ":") {
		var err error
		if host, port, err = net.SplitHostPort(s); err != nil {
			return "", bad
		}
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || strings.ContainsAny(host, " /\x00") {
		return "", bad
	}
	if host == "" {
		host = DefaultListenHost
	}
	return net.JoinHostPort(host, strconv.FormatUint(n, 10)), nil
}

// serve resolves the [serve] table.
func (p *parser) serve(raw map[string]any) Serve {
	var sv Serve
	t := table{path: []string{"serve"}, label: "serve"}
	p.read(t, raw, &sv, index(serveIndex), fmt.Errorf("unknown key (want one of %v)", serveKeys))
	return sv
}

// own reads the listen key ("" is no endpoint).
func (sv *Serve) own(key string, v any) (any, bool, error) {
	s, ok := v.(string)
	if !ok {
		return nil, true, gotWant(v, `a string such as "127.0.0.1:9464" or "9464"`)
	}
	if s == "" {
		return s, true, nil
	}
	addr, err := ListenAddress(s)
	return addr, true, err
}

// problems has nothing to check: own checked listen.
func (Serve) problems() error { return nil }
