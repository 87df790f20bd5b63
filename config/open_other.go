//go:build !unix

package config

// openNonBlock is 0 where there are no FIFOs to wait on an open.
const openNonBlock = 0
