package config

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shmmon/shmmon/internal/field"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/source"
)

// where says which tables accept a key: the letters of a field's in tag.
type where uint8

const (
	inWorker   where = 1 << iota // W: a [[worker]] table
	inDefaults                   // D: the [defaults] table
	supervised                   // S: only meaningful with command: an error in a watched worker
)

// keyDef is one key of a table: a tagged field of the table's struct.
type keyDef struct {
	name  string
	where where
	index []int // of the field, for reflect.Value.FieldByIndex
}

// keysOf returns the keys of the struct type t (embedded structs' keys in their place), in
// field order, which is the documented order.
func keysOf(t reflect.Type) []keyDef {
	var ks []keyDef
	for _, f := range reflect.VisibleFields(t) {
		name := f.Tag.Get("toml")
		if name == "" {
			continue
		}
		k := keyDef{name: name, index: f.Index}
		for i, c := range "WDS" {
			if strings.ContainsRune(f.Tag.Get("in"), c) {
				k.where |= 1 << i
			}
		}
		ks = append(ks, k)
	}
	return ks
}

// keys are the keys of [[worker]] and [defaults], in the documented order.
var keys = keysOf(reflect.TypeFor[Worker]())

// keyIndex maps a key of [[worker]] and [defaults] to its definition.
var keyIndex = index(keys)

func index(ks []keyDef) map[string]keyDef {
	m := make(map[string]keyDef, len(ks))
	for _, k := range ks {
		m[k.name] = k
	}
	return m
}

// names returns the names of the keys of ks that are accepted in (all of them for in == 0).
func names(ks []keyDef, in where) []string {
	var out []string
	for _, k := range ks {
		if in == 0 || k.where&in != 0 {
			out = append(out, k.name)
		}
	}
	return out
}

// A keyed is the struct of a table ([Worker], [Proctab], [Serve], [TCPWatchdog]), whose
// tagged fields are its keys (see [keysOf]).
type keyed interface {
	// own reads the keys whose rules are config's own (names, paths, users, commands,
	// hooks, addresses): it returns the value to store, or ok false for a key that
	// [decode] reads by its field's type.
	own(key string, v any) (value any, ok bool, err error)
	// problems returns the values that their owners refuse, as [*field.Error] values
	// joined with errors.Join.
	problems() error
}

// decodeKey reads the TOML value v of key k into its field of dst (a pointer to a table's
// struct), which it leaves alone when v is invalid.
func decodeKey(dst keyed, k keyDef, v any) error {
	f := reflect.ValueOf(dst).Elem().FieldByIndex(k.index)
	x, ok, err := dst.own(k.name, v)
	if !ok {
		return decode(v, f)
	}
	if err == nil {
		f.Set(reflect.ValueOf(x))
	}
	return err
}

// textTypes map the Go types of keys that are written as text but cannot parse it to a type
// of the same underlying type that can: its owner's parser.
var textTypes = map[reflect.Type]reflect.Type{
	reflect.TypeFor[time.Duration]():  reflect.TypeFor[duration](),
	reflect.TypeFor[syscall.Signal](): reflect.TypeFor[proc.Signal](),
	reflect.TypeFor[os.FileMode]():    reflect.TypeFor[shmobj.Mode](),
}

// decode reads the TOML value v into dst, a key's field, by the field's type:
//
//   - int: an integer, whose range its owner checks;
//   - bool: true or false;
//   - [Bytes]: an integer number of bytes, or a string with a unit ("64KiB");
//   - a type with UnmarshalText, itself or through textTypes (durations, signals, modes,
//     restart policies, CPU shares, resource limits): a string, parsed by it; a signal or a
//     resource limit may be an integer too;
//   - a pointer (an optional value): the value it points to, read as above.
//
// The BurntSushi/toml decoder would call the same UnmarshalText methods, but it hands them
// integers and booleans as text and keeps no type of their errors (its ParseError has no
// Unwrap); messages need both. A value of the wrong TOML type is a [*mismatch].
func decode(v any, dst reflect.Value) error {
	t := dst.Type()
	if t.Kind() == reflect.Pointer {
		// An optional value (a resource limit): nil unless written.
		p := reflect.New(t.Elem())
		if err := decode(v, p.Elem()); err != nil {
			return err
		}
		dst.Set(p)
		return nil
	}
	if tt, ok := textTypes[t]; ok {
		t, dst = tt, dst.Addr().Convert(reflect.PointerTo(tt)).Elem()
	}
	switch u, isText := dst.Addr().Interface().(encoding.TextUnmarshaler); {
	case t == reflect.TypeFor[Bytes]():
		n, isInt := v.(int64)
		if s, ok := v.(string); ok && !isNumber(s) {
			return u.UnmarshalText([]byte(s))
		} else if !isInt {
			// A number of bytes without a unit is an integer, not "4096".
			return &mismatch{v: v, noun: "an integer number of bytes"}
		}
		dst.SetInt(n)
	case isText:
		s, ok := v.(string)
		if n, isInt := v.(int64); isInt && (t == reflect.TypeFor[proc.Signal]() || t == reflect.TypeFor[proc.Limit]()) {
			s, ok = strconv.FormatInt(n, 10), true
		}
		if !ok {
			return &mismatch{v: v, want: accepted(t)}
		}
		return u.UnmarshalText([]byte(s))
	case t.Kind() == reflect.Int:
		n, ok := v.(int64)
		if !ok {
			return &mismatch{v: v, noun: "an integer"}
		}
		dst.SetInt(n)
	case t.Kind() == reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			return gotWant(v, "true or false")
		}
		dst.SetBool(b)
	default:
		panic("config: no decoding of a key of type " + t.String())
	}
	return nil
}

// accepted says what the text type t accepts: what its parser says of an empty text, which
// none accepts.
func accepted(t reflect.Type) string {
	var fe *field.Error
	if errors.As(reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText(nil), &fe) {
		return fe.Want
	}
	return "text"
}

func isNumber(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// duration is a time.Duration written as a Go duration string ("500ms", "1m30s").
type duration time.Duration

func (d *duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return &field.Error{Pkg: "config", Value: string(text), Problem: "is not a duration",
			Want: `a duration string such as "500ms", "1s" or "1m30s"`}
	}
	*d = duration(v)
	return nil
}

// Bytes is a size in bytes. In a configuration file it is an integer number of bytes (4096),
// or a string of a whole number and an IEC unit: "64KiB", "512MiB", "1GiB" (B, KiB, MiB, GiB,
// TiB; a space may come between).
type Bytes int64

// units are the IEC units of [Bytes], by name.
var units = map[string]int64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}

// UnmarshalText parses a number of bytes with an optional unit ("4096", "64KiB", "1 GiB").
func (b *Bytes) UnmarshalText(text []byte) error {
	s := string(text)
	num := strings.TrimRight(s, "BKMGTi ")
	n, err := strconv.ParseInt(num, 10, 64)
	unit, known := units[strings.TrimSpace(s[len(num):])]
	if s[len(num):] == "" {
		unit, known = 1, true
	}
	if err != nil || !known || n < 0 || n > math.MaxInt64/unit {
		return &field.Error{Pkg: "config", Value: s, Problem: "is not a size",
			Want: `a whole number and a unit: B, KiB, MiB, GiB or TiB, e.g. "64KiB"`}
	}
	*b = Bytes(n * unit)
	return nil
}

// mismatch is a value of the wrong TOML type for its key. want says what the key takes; for a
// number, noun says how it is written ("an integer") and the parser adds the range its
// owner accepts.
type mismatch struct {
	v          any
	want, noun string
}

func (m *mismatch) Error() string { return fmt.Sprintf("got %s (want %s)", describe(m.v), m.want) }

// gotWant is the error of a value of the wrong type: "got TYPE VALUE (want ...)".
func gotWant(v any, want string) error { return &mismatch{v: v, want: want} }

// describe names the TOML type of v, with its value when it is short.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		if v == "" {
			return "an empty string"
		}
		return "string " + shorten(v)
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("float %v", v)
	case bool:
		return fmt.Sprintf("boolean %v", v)
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return "datetime " + v.String()
	}
	return fmt.Sprintf("%T", v)
}

// shown is a value as it was written, for messages: a string quoted (and cut), a number as
// it is.
func shown(v any) string {
	if s, ok := v.(string); ok {
		return shorten(s)
	}
	return fmt.Sprint(v)
}

// shorten quotes s, cut to 40 bytes.
func shorten(s string) string {
	if len(s) > 40 {
		return strconv.Quote(s[:40]) + "..."
	}
	return strconv.Quote(s)
}

// problem is an error whose text is its own message while it wraps a cause.
type problem struct {
	msg   string
	cause error
}

func (e *problem) Error() string { return e.msg }
func (e *problem) Unwrap() error { return e.cause }

// wrapf returns an error reading like the format that wraps cause without repeating its text.
func wrapf(cause error, format string, args ...any) error {
	return &problem{msg: fmt.Sprintf(format, args...), cause: cause}
}

// The rules of the keys config owns, each reading a TOML value v.

// text returns v as a string without NUL bytes; want says what the key takes.
func text(v any, want string) (string, error) {
	s, ok := v.(string)
	switch {
	case !ok:
		return "", gotWant(v, want)
	case strings.ContainsRune(s, 0):
		return "", fmt.Errorf("%s contains a NUL byte (want %s)", shorten(s), want)
	}
	return s, nil
}

// objectName returns v as the name of a worker's object.
func objectName(v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, gotWant(v, `a string, e.g. name = "db"`)
	}
	if err := shmobj.ValidatePublishName(s); err != nil {
		return nil, wrapf(err, "%s is not a valid object name (want 1-%d bytes, no '/', NUL or control characters, not \".\" or \"..\")",
			shorten(s), shmobj.MaxNameLen)
	}
	return s, nil
}

// heartbeat returns v as the name of a kind of heartbeat, which package supervise checks.
func heartbeat(v any) (any, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	return nil, gotWant(v, source.Want())
}

// command returns v as a program and its arguments.
func command(v any) (any, error) {
	const want = `an array of strings, the program first, e.g. ["bin/worker", "-v"]`
	a, ok := v.([]any)
	if !ok {
		return nil, gotWant(v, want)
	}
	if len(a) == 0 {
		return nil, errors.New("empty (want " + want + ")")
	}
	argv := make([]string, len(a))
	for i, e := range a {
		s, ok := e.(string)
		switch {
		case !ok:
			return nil, fmt.Errorf("element %d: %w", i+1, gotWant(e, "a string"))
		case strings.ContainsRune(s, 0):
			return nil, fmt.Errorf("element %d contains a NUL byte (want text)", i+1)
		}
		argv[i] = s
	}
	if argv[0] == "" {
		return nil, errors.New(`the program is "" (want its path or name first, e.g. "bin/worker")`)
	}
	return argv, nil
}

// absPath returns v as an absolute path.
func absPath(v any, example string) (any, error) {
	want := fmt.Sprintf("an absolute path, e.g. %q", example)
	s, err := text(v, want)
	if err == nil && !filepath.IsAbs(s) {
		err = fmt.Errorf("%s is not absolute (want %s)", shorten(s), want)
	}
	return s, err
}

// idName returns v as a user or group name.
func idName(v any, what string) (any, error) {
	s, ok := v.(string)
	if !ok || s == "" || strings.ContainsRune(s, 0) {
		return nil, gotWant(v, fmt.Sprintf(`a %s as a string, e.g. "www-data"`, what))
	}
	return s, nil
}

// hookCommand returns v as the shell command of a hook.
func hookCommand(v any) (any, error) {
	s, err := text(v, `a shell command as a string, e.g. "logger -t shmmon $SHMMON_EVENT $SHMMON_NAME", or "" for none`)
	return s, err
}

// workerNames returns v as the names of other workers (after, binds_to); that they are
// workers of the file is checked once every worker is read ([parser.dependencies]).
func workerNames(v any) (any, error) {
	const want = `an array of worker names, e.g. ["db", "cache"]`
	a, ok := v.([]any)
	if !ok {
		return nil, gotWant(v, want)
	}
	names := make([]string, 0, len(a))
	for i, e := range a {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("element %d: %w", i+1, gotWant(e, "a worker's name as a string"))
		}
		if slices.Contains(names, s) {
			return nil, fmt.Errorf("%s is listed twice (want each worker once)", shorten(s))
		}
		names = append(names, s)
	}
	if len(names) == 0 {
		return []string(nil), nil
	}
	return names, nil
}
