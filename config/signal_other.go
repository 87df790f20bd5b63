//go:build !unix

package config

import "syscall"

// signalNum returns the signal named name ("SIGTERM"), or 0 if there is none. Only the
// signals the syscall package defines everywhere are known here; shmmon serve runs on Linux.
func signalNum(name string) syscall.Signal {
	switch name {
	case "SIGTERM":
		return syscall.SIGTERM
	case "SIGKILL":
		return syscall.SIGKILL
	case "SIGINT":
		return syscall.SIGINT
	case "SIGHUP":
		return syscall.SIGHUP
	case "SIGQUIT":
		return syscall.SIGQUIT
	}
	return 0
}
