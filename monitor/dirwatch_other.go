//go:build !linux

package monitor

import "sync/atomic"

// dirWatch would watch shmobj.Dir for changes; there is none on this platform, so every
// check verifies its object.
type dirWatch struct{}

// subscribe returns nil: there is no watch.
func subscribe(string, *atomic.Bool) *dirWatch { return nil }

// unsubscribe does nothing.
func (d *dirWatch) unsubscribe(string, *atomic.Bool) {}

// trusted reports false.
func (d *dirWatch) trusted() bool { return false }
