package shmobj

import "fmt"

// ValidateSize reports whether size is an object size shmmon accepts: at least [MinSize], and
// no more than the host's memory (an object lives in tmpfs pages; a larger one could never be
// written whole, and a typo of a few zeros should be an error, not a monitor that dies when it
// touches its record). The error names the value and what is accepted.
func ValidateSize(size int64) error {
	mem := hostMemory()
	switch {
	case size < MinSize:
		return fmt.Errorf("%w: size %d (want at least %d bytes)", ErrTooSmall, size, MinSize)
	case mem > 0 && size > mem:
		return fmt.Errorf("shmobj: size %d is more than this host's memory (want %d to %d bytes)", size, MinSize, mem)
	}
	return nil
}
