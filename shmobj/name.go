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
// It is the rule for opening an object (as Boost opens it); a name shmmon publishes obeys
// [ValidatePublishName] too.
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
	return invalidName(name, why, `want 1-%d bytes, no '/' or NUL, not "." or ".."`)
}

// ValidatePublishName reports whether shmmon may publish an object under name: a valid name
// ([ValidateName]) without control characters (bytes below 0x20, and 0x7f), which would
// garble the logs and listings that show it. The error wraps [ErrInvalidName] and names the
// bad value.
func ValidatePublishName(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	for i := range len(name) {
		if c := name[i]; c < 0x20 || c == 0x7f {
			return invalidName(name, fmt.Sprintf("control character 0x%02x at byte %d", c, i),
				`want 1-%d bytes, no '/', NUL or control characters, not "." or ".."`)
		}
	}
	return nil
}

// invalidName is the error for name, rejected for why; want says what is accepted (with a
// %d for MaxNameLen).
func invalidName(name, why, want string) error {
	shown := name
	if len(shown) > 40 {
		shown = shown[:40] + "..."
	}
	return fmt.Errorf("%w %q (%s): "+want, ErrInvalidName, shown, why, MaxNameLen)
}

// Path returns the file that shows the object name, e.g. "/dev/shm/abcd". It does not
// validate name.
func Path(name string) string { return Dir + "/" + name }
