//go:build !linux

package pidfile

import (
	"errors"
	"fmt"
	"runtime"
)

// read is Linux only: the walk it makes needs openat with O_PATH.
func read(path string, euid uint32) (File, error) {
	return File{}, &Error{Path: path, Owner: -1, Why: fmt.Sprintf("reading pidfiles safely needs Linux, not %s", runtime.GOOS),
		Err: errors.ErrUnsupported}
}
