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
	// Control is the path of serve's control socket (shmmon ctl), absolute; "" = the default
	// (see package control: SHMMON_CONTROL, else /run/shmmon/control.sock as root, else
	// $XDG_RUNTIME_DIR/shmmon/control.sock).
	Control string `toml:"control"`
	// ControlGroup is the group whose members may use the control socket besides root and
	// serve's user (the socket is then 0660 and of that group); nil = none (0600).
	ControlGroup *uint32 `toml:"control_group"`
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

// own reads the listen key ("" is no endpoint), the control socket's path and its group.
func (sv *Serve) own(key string, v any) (any, bool, error) {
	switch key {
	case "control":
		x, err := absPath(v, "/run/shmmon/control.sock")
		if err == nil && len(x.(string)) > maxSocketPath {
			err = fmt.Errorf("%s is %d bytes (want a path of at most %d bytes: the longest a Unix socket may have)",
				shorten(x.(string)), len(x.(string)), maxSocketPath)
		}
		return x, true, err
	case "control_group":
		x, err := idName(v, "group name or numeric gid")
		if err != nil {
			return nil, true, err
		}
		gid, err := lookupGroup(x.(string))
		return &gid, true, err
	}
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

// maxSocketPath is the longest path a Unix socket may have (sun_path holds 108 bytes, the
// last a NUL).
const maxSocketPath = 107

// problems has nothing to check: own checked listen and control.
func (Serve) problems() error { return nil }
