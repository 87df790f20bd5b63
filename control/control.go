// Package control is serve's control socket: how `shmmon ctl` (and any script or tool that
// speaks its protocol) asks a running serve to act on its workers. It holds the protocol, the
// server (which checks who asks) and a client; what each action does is serve's (package
// serve hands the server a [Handler]).
//
// # The socket
//
// A Unix stream socket, by default [DefaultPath]: $SHMMON_CONTROL when set, else
// /run/shmmon/control.sock when serve runs as root, else $XDG_RUNTIME_DIR/shmmon/control.sock.
// [Listen] makes its directory (0755) when missing and the socket 0600, or 0660 and of the
// control group when there is one. A socket left by a serve that died (nobody answers) is
// replaced; one a live serve answers at is an error ([ErrInUse]). The file's permissions are
// the first gate; the second is the peer's credentials, as the kernel recorded them at
// connect (SO_PEERCRED, SO_PEERGROUPS): root, serve's own user, or a member of the control
// group. Anyone else gets one answer, {"ok":false,"refused":true,"error":"..."}, and the
// connection is closed.
//
// # The protocol
//
// One request per connection, newline-delimited JSON: the client sends one [Request] line;
// serve answers with one [Answer] line, preceded for "logs" by {"line": "..."} lines (and,
// with "follow", followed by none: lines come until the client closes the connection).
//
//	→ {"action":"status","workers":["db"]}
//	← {"ok":true,"workers":[{"name":"db","supervision":"running","pid":4242,...}]}
//	→ {"action":"restart","workers":["db","web"]}
//	← {"ok":true,"results":[{"worker":"db","done":"restarted (pid 4250, was 4242)"},{"worker":"web","done":"..."}]}
//	→ {"action":"signal","signal":"HUP","workers":["db"]}
//	→ {"action":"reload"}
//	← {"ok":true,"reload":{"started":0,"stopped":0,"restarted":1,"unchanged":2}}
//	→ {"action":"logs","workers":["db"],"lines":5,"follow":true}
//	← {"line":"2026-03-01T10:00:00.123456Z out listening on :8080"}
//	→ {"action":"frobnicate"}
//	← {"ok":false,"usage":true,"error":"unknown action \"frobnicate\" (want status, start, stop, restart, signal, reload or logs)"}
//
// The actions: "status" (workers: the names, none for all), "start", "stop", "restart"
// (workers: at least one), "signal" (signal: a name such as "HUP" or a number; workers: at
// least one), "reload" (none), "logs" (workers: exactly one; lines: how many of the last,
// default 20; follow). Unknown fields are errors. An answer is "ok" when every part of the
// request was done; "usage" marks a request that was wrong (an unknown action or worker, a
// bad signal, an action not for that kind of worker), which nothing was done for; "error"
// says what went wrong, and "results" what was done for each worker, in order.
package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// EnvPath is the environment variable that names the control socket for [DefaultPath].
const EnvPath = "SHMMON_CONTROL"

// DefaultPath returns the control socket's path when none is given: $SHMMON_CONTROL when set;
// else /run/shmmon/control.sock for root; else $XDG_RUNTIME_DIR/shmmon/control.sock; and ""
// when none of these applies (not root, and no XDG_RUNTIME_DIR).
func DefaultPath() string {
	if p := os.Getenv(EnvPath); p != "" {
		return p
	}
	if os.Geteuid() == 0 {
		return "/run/shmmon/control.sock"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "shmmon", "control.sock")
	}
	return ""
}

// MaxPath is the longest path a Unix socket may have (sun_path holds 108 bytes, the last a
// NUL).
const MaxPath = 107

// ValidatePath reports whether path can be the control socket's: absolute, and at most
// [MaxPath] bytes.
func ValidatePath(path string) error {
	switch {
	case !filepath.IsAbs(path):
		return fmt.Errorf("control: socket path %q is not absolute", path)
	case len(path) > MaxPath:
		return fmt.Errorf("control: socket path %q is %d bytes (a Unix socket's may have at most %d)", path, len(path), MaxPath)
	}
	return nil
}

// The actions of a [Request].
const (
	ActionStatus  = "status"
	ActionStart   = "start"
	ActionStop    = "stop"
	ActionRestart = "restart"
	ActionSignal  = "signal"
	ActionReload  = "reload"
	ActionLogs    = "logs"
)

// Actions are the actions, in the order the documentation lists them.
var Actions = []string{ActionStatus, ActionStart, ActionStop, ActionRestart, ActionSignal, ActionReload, ActionLogs}

// DefaultLines is how many of the last lines of a worker's log "logs" sends when the request
// does not say.
const DefaultLines = 20

// Request is one request, the line a client sends.
type Request struct {
	Action  string   `json:"action"`
	Workers []string `json:"workers,omitempty"` // the workers acted on
	Signal  string   `json:"signal,omitempty"`  // signal: the signal, "HUP", "SIGUSR1" or a number
	Lines   *int     `json:"lines,omitempty"`   // logs: how many of the last lines; nil = DefaultLines
	Follow  bool     `json:"follow,omitempty"`  // logs: then the lines as they are written
}

// Answer is the last line serve sends for a request.
type Answer struct {
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
	Usage   bool   `json:"usage,omitempty"`   // the request was wrong: nothing was done (exit 2)
	Refused bool   `json:"refused,omitempty"` // the peer may not use the socket
	// Workers are the workers of "status", as serve's /status lists them (package view's
	// Worker, with serve's part).
	Workers json.RawMessage `json:"workers,omitempty"`
	Results []Result        `json:"results,omitempty"` // start, stop, restart, signal: per worker, in order
	Reload  *Reload         `json:"reload,omitempty"`  // reload: what changed
}

// Result is what an action did for one worker: Done says what, else Error why not.
type Result struct {
	Worker string `json:"worker"`
	Done   string `json:"done,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Reload is what a reload changed: workers started, stopped, restarted (their configuration
// changed) and left alone.
type Reload struct {
	Started   int `json:"started"`
	Stopped   int `json:"stopped"`
	Restarted int `json:"restarted"`
	Unchanged int `json:"unchanged"`
}

// Line is a line of a worker's log, as "logs" sends it before its answer.
type Line struct {
	Line string `json:"line"`
}

// Usagef returns the answer to a request that was wrong.
func Usagef(format string, args ...any) Answer {
	return Answer{Usage: true, Error: fmt.Sprintf(format, args...)}
}

// Failf returns the answer to a request that could not be done.
func Failf(format string, args ...any) Answer { return Answer{Error: fmt.Sprintf(format, args...)} }

// ErrInUse is the error of [Listen] when a serve answers at the socket's path.
var ErrInUse = errors.New("control: another serve answers at the control socket")

// ErrRefused is the error of [Do] when serve refused the peer.
var ErrRefused = errors.New("control: refused")
