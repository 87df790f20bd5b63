package shmobj

import (
	"os"
	"strconv"

	"github.com/shmmon/shmmon/internal/field"
)

// ValidateSize reports whether size is an object size shmmon accepts: at least [MinSize], and
// no more than the host's memory (an object lives in tmpfs pages; a larger one could never be
// written whole, and a typo of a few zeros should be an error, not a monitor that dies when it
// touches its record). The error is a [*field.Error]; one for a size below MinSize wraps
// [ErrTooSmall].
func ValidateSize(size int64) error {
	mem := hostMemory()
	switch {
	case size < MinSize:
		return &field.Error{Pkg: "shmobj", Field: "size", Value: size, Problem: "is too small",
			Want: "at least " + strconv.Itoa(MinSize), Unit: "bytes", Err: ErrTooSmall}
	case mem > 0 && size > mem:
		return &field.Error{Pkg: "shmobj", Field: "size", Value: size, Problem: "is more than this host's memory",
			Want: "at least " + strconv.Itoa(MinSize) + " and at most " + strconv.FormatInt(mem, 10), Unit: "bytes"}
	}
	return nil
}

// ParseMode parses object permissions as users write them: octal, "0001" to "0777" ("0660",
// "644"). Anything else is a [*field.Error] naming the text and what is accepted.
func ParseMode(s string) (os.FileMode, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m == 0 || m > 0o777 {
		return 0, &field.Error{Pkg: "shmobj", Field: "mode", Value: s, Problem: "is not a permission mode",
			Want: `an octal string from "0001" to "0777", e.g. "0600" or "0660"`}
	}
	return os.FileMode(m), nil
}

// Mode is object permissions as users write them; its UnmarshalText parses the text as
// [ParseMode] does (for configuration files).
type Mode os.FileMode

// UnmarshalText parses text as [ParseMode] does.
func (m *Mode) UnmarshalText(text []byte) error {
	v, err := ParseMode(string(text))
	if err == nil {
		*m = Mode(v)
	}
	return err
}
