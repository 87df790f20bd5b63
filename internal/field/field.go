// Package field describes a value that a package refuses for one of its settings, so that
// whoever read the value — a configuration file, a command line — can report it the way its
// user wrote it: by key and line, or by flag.
//
// The package that owns a setting (monitor the check interval, supervise the restart
// backoff, proc the signals, ...) states each rule once and returns an [*Error]. Its Error
// method reads on its own ("monitor: interval 0s must be at least 1ms"); [Error.Detail] is
// the part after the value, for a caller that names the setting and shows the value itself
// (`shmmon.toml:12: worker "db" interval: "0s" must be at least 1ms`,
// `invalid --interval 0s: must be at least 1ms`).
package field

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Error is a value refused for one setting.
type Error struct {
	Pkg   string // the package that refused it: "monitor"
	Field string // the setting as configuration files name it: "interval", "backoff_max"
	Value any    // the value: a number, a duration, or the text that did not parse
	// Problem says what is wrong with Value, as a predicate: "must be at least 1ms", "is out
	// of range", "is not a signal".
	Problem string
	// Want says what is accepted when Problem does not: "1 to 1048576"; "" when it does.
	Want string
	// Unit is the unit of the numbers of Want ("bytes"), which follows them in messages.
	Unit string
	// Other is set for a rule between two settings: the setting Value is compared with
	// ("backoff_max") and its value. Problem then ends with the comparison ("must be at
	// most"), and Inverse is the rule seen from Other ("must be at least").
	Other      string
	OtherValue any
	Inverse    string
	Err        error // what the refusal wraps, if anything
}

// Error reads "PKG: FIELD VALUE PROBLEM (want WANT)".
func (e *Error) Error() string {
	other := ""
	if e.Other != "" {
		other = e.Other + " (" + Show(e.OtherValue) + ")"
	}
	return strings.TrimSpace(e.Pkg+": "+e.Field) + " " + Show(e.Value) + " " + e.Detail(other)
}

// Unwrap returns the error the refusal wraps.
func (e *Error) Unwrap() error { return e.Err }

// Detail is the message after the value: Problem, then other (the caller's name of Other and
// its value, for a rule between two settings), then what is wanted.
func (e *Error) Detail(other string) string {
	s := e.Problem
	if other != "" {
		s += " " + other
	}
	if e.Want != "" {
		s += " (want " + strings.TrimSpace(e.Want+" "+e.Unit) + ")"
	}
	return s
}

// Flip returns a rule between two settings as seen from Other: Other's value must be at least
// Value rather than Value at most Other's.
func (e *Error) Flip() *Error {
	f := *e
	f.Field, f.Value, f.Other, f.OtherValue = e.Other, e.OtherValue, e.Field, e.Value
	f.Problem, f.Inverse = e.Inverse, e.Problem
	return &f
}

// Show formats a value as messages show it: text quoted, anything else as fmt's %v does.
func Show(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

// All returns the [*Error] values in err: err itself, or those of an [errors.Join] (nested
// ones too), in order. Other errors are left out.
func All(err error) []*Error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*Error
		for _, e := range j.Unwrap() {
			out = append(out, All(e)...)
		}
		return out
	}
	var fe *Error
	if errors.As(err, &fe) {
		return []*Error{fe}
	}
	return nil
}
