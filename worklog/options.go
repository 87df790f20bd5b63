package worklog

import (
	"errors"
	"fmt"

	"github.com/shmmon/shmmon/internal/field"
)

// Defaults and limits of [Options].
const (
	DefaultMaxSize = 10 << 20 // log_max_size: "10MiB"
	DefaultKeep    = 5        // log_keep
	MinMaxSize     = 64 << 10 // the least log_max_size: room for a few cut lines
	MaxKeep        = 1000
	// MaxLine is the longest line written as it came: a longer one (or output without a
	// newline) is cut into pieces of this size, each a line of its own, rather than held
	// without bound.
	MaxLine = 16 << 10
	// Buffer bounds what a log process holds that the file has not taken yet: output read
	// beyond it, while the disk is slower than the program, is dropped and counted.
	Buffer = 1 << 20
)

// Options say where a worker's output goes and how the file is rotated.
type Options struct {
	Path string // the log file, an absolute path; its directory is made (0755) if missing
	// MaxSize is the size at which the file is rotated: a line that would take it beyond
	// is written to a new file. 0 means DefaultMaxSize.
	MaxSize int64
	// Keep is how many old files are kept, PATH.1 (the newest) to PATH.Keep; 0 keeps none.
	// It is taken as it is: the default of configuration files and flags is DefaultKeep.
	Keep int
}

// WithDefaults returns o with a zero MaxSize set to DefaultMaxSize.
func (o Options) WithDefaults() Options {
	if o.MaxSize == 0 {
		o.MaxSize = DefaultMaxSize
	}
	return o
}

// ValidateResolved reports the fields of o that are out of range, taken as they are, as
// [*field.Error] values joined with [errors.Join] (nil when all are valid): MaxSize at least
// [MinMaxSize] bytes, Keep 0 to [MaxKeep]. Path is its caller's to check.
func (o Options) ValidateResolved() error {
	var errs []error
	if o.MaxSize < MinMaxSize {
		errs = append(errs, &field.Error{Pkg: "worklog", Field: "log_max_size", Value: o.MaxSize, Problem: "is too small",
			Want: fmt.Sprintf("at least %d (64KiB)", MinMaxSize), Unit: "bytes"})
	}
	if o.Keep < 0 || o.Keep > MaxKeep {
		errs = append(errs, &field.Error{Pkg: "worklog", Field: "log_keep", Value: o.Keep, Problem: "is out of range",
			Want: fmt.Sprintf("0 to %d old files", MaxKeep)})
	}
	return errors.Join(errs...)
}
