//go:build !linux

package worklog

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
)

// ProcessArg is the first argument of the log process (Linux only).
const ProcessArg = "log-writer"

var errUnsupported = fmt.Errorf("worklog: log files need Linux (SOCK_SEQPACKET, abstract sockets), not %s: %w",
	runtime.GOOS, errors.ErrUnsupported)

// Log is a worker's log; none can be opened on this platform.
type Log struct{}

// Open returns an error matching errors.ErrUnsupported.
func Open(opts Options, worker string, log *slog.Logger) (*Log, error) { return nil, errUnsupported }

// Main reports false: there is no log process on this platform.
func Main(args []string) (int, bool) { return 0, false }

// Pipes returns an error matching errors.ErrUnsupported.
func (l *Log) Pipes() (stdout, stderr *os.File, err error) { return nil, nil, errUnsupported }

// Path returns "".
func (l *Log) Path() string { return "" }

// Dropped returns 0.
func (l *Log) Dropped() int64 { return 0 }

// Err returns "".
func (l *Log) Err() string { return "" }

// Close returns nil.
func (l *Log) Close() error { return nil }
