//go:build unix

package config

import "syscall"

// openNonBlock makes the open of a FIFO return at once instead of waiting for a writer.
const openNonBlock = syscall.O_NONBLOCK
