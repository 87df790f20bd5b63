//go:build !linux

package shmobj

// hostMemory returns 0: the host's memory is not known here.
func hostMemory() int64 { return 0 }
