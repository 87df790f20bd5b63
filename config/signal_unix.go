//go:build unix

package config

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// signalNum returns the signal named name ("SIGTERM"), or 0 if there is none.
func signalNum(name string) syscall.Signal { return unix.SignalNum(name) }
