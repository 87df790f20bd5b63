package shmobj

import (
	"fmt"
	"strings"
)

// Dir is where Linux shows POSIX shared-memory objects.
const Dir = "/dev/shm"

// MaxNameLen is the longest valid object name, in bytes.
const MaxNameLen = 255

// ValidateName reports whether name can name a shared-memory object: 1 to 255 bytes, no '/',
// no NUL, and neither "." nor "..". The error wraps [ErrInvalidName] and names the bad value.
func ValidateName(name string) error {
	var why string
	switch {
	case name == "":
		why = "empty"
	case len(name) > MaxNameLen:
		why = fmt.Sprintf("%d bytes long", len(name))
	case strings.ContainsRune(name, '/'):
		why = "contains '/'"
	case strings.ContainsRune(name, 0):
		why = "contains a NUL byte"
	case name == "." || name == "..":
		why = "reserved"
	default:
		return nil
	}
	shown := name
	if len(shown) > 40 {
		shown = shown[:40] + "..."
	}
	return fmt.Errorf("%w %q (%s): want 1-%d bytes, no '/' or NUL, not \".\" or \"..\"",
		ErrInvalidName, shown, why, MaxNameLen)
}

// Path returns the file that shows the object name, e.g. "/dev/shm/abcd". It does not
// validate name.
func Path(name string) string { return Dir + "/" + name }
