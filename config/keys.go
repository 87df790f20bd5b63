package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/source"
)

// where says which tables accept a key.
type where uint8

const (
	inWorker   where = 1 << iota // a [[worker]] table
	inDefaults                   // the [defaults] table
	supervised                   // only meaningful with command: an error in a watched worker
)

// keyDef is one key of a worker table.
type keyDef struct {
	name  string
	where where
	// set parses v into w, leaving w alone when v is invalid. The error names the value and
	// what is accepted. nil for env, which [parser.env] reads.
	set func(w *Worker, v any) error
}

// Limits of integer keys.
const (
	maxStalls = 1 << 20 // as monitor.Config.Validate
	maxPid    = 1 << 22 // Linux's PID_MAX_LIMIT
)

// keys are the keys of [[worker]] and [defaults], in the documented order.
var keys = []keyDef{
	{"name", inWorker, func(w *Worker, v any) error {
		s, ok := v.(string)
		if !ok {
			return gotWant(v, `a string, e.g. name = "db"`)
		}
		if err := shmobj.ValidatePublishName(s); err != nil {
			return wrapf(err, "%s is not a valid object name (want 1-%d bytes, no '/', NUL or control characters, not \".\" or \"..\")",
				shorten(s), shmobj.MaxNameLen)
		}
		w.Name = s
		return nil
	}},
	{"command", inWorker, func(w *Worker, v any) error {
		const want = `want an array of strings, the program first, e.g. ["bin/worker", "-v"]`
		a, ok := v.([]any)
		if !ok {
			return gotWant(v, want[len("want "):])
		}
		if len(a) == 0 {
			return errors.New("empty (" + want + ")")
		}
		argv := make([]string, len(a))
		for i, e := range a {
			s, ok := e.(string)
			switch {
			case !ok:
				return fmt.Errorf("element %d: %s", i+1, gotWant(e, "a string"))
			case strings.ContainsRune(s, 0):
				return fmt.Errorf("element %d contains a NUL byte (want text)", i+1)
			}
			argv[i] = s
		}
		if argv[0] == "" {
			return errors.New(`the program is "" (want its path or name first, e.g. "bin/worker")`)
		}
		w.Command = argv
		return nil
	}},
	{"env", inWorker | supervised, nil},
	{"dir", inWorker | supervised, func(w *Worker, v any) error {
		s, err := absPath(v, "/srv/app")
		if err == nil {
			w.Dir = s
		}
		return err
	}},
	{"user", inWorker | inDefaults | supervised, func(w *Worker, v any) error {
		s, err := idName(v, "user name or numeric uid", "www-data")
		if err == nil {
			w.User = s
		}
		return err
	}},
	{"group", inWorker | inDefaults | supervised, func(w *Worker, v any) error {
		s, err := idName(v, "group name or numeric gid", "www-data")
		if err == nil {
			w.Group = s
		}
		return err
	}},
	{"pid", inWorker, func(w *Worker, v any) error {
		n, err := integer(v, 2, maxPid, "the pid of a running process, 2 to %[2]d")
		if err == nil {
			w.Pid = int(n)
		}
		return err
	}},
	{"pidfile", inWorker, func(w *Worker, v any) error {
		s, err := absPath(v, "/run/app.pid")
		if err == nil {
			w.PidFile = s
		}
		return err
	}},
	{"heartbeat", inWorker | inDefaults | supervised, func(w *Worker, v any) error {
		s, ok := v.(string)
		if !ok {
			return gotWant(v, `"shm", "proctab" or "none"`)
		}
		if source.Check(s) != nil || s == "" {
			return fmt.Errorf("%q is not a kind of heartbeat (want \"%s\")", s, strings.Join(source.Kinds(), `", "`))
		}
		w.Heartbeat = s
		return nil
	}},
	{"restart", inWorker | inDefaults | supervised, func(w *Worker, v any) error {
		const want = `"always", "on-failure" or "never"`
		s, ok := v.(string)
		if !ok {
			return gotWant(v, want)
		}
		switch s {
		case RestartAlways, RestartOnFailure, RestartNever:
			w.Restart = s
			return nil
		}
		return fmt.Errorf("%q is not a restart policy (want %s)", s, want)
	}},
	{"every", inWorker | inDefaults | supervised, durationKey(func(w *Worker) *time.Duration { return &w.Every },
		func(d time.Duration) string {
			if d != 0 && d < time.Millisecond {
				return "must be 0 (a resident worker) or at least 1ms"
			}
			return ""
		})},
	{"interval", inWorker | inDefaults, durationKey(func(w *Worker) *time.Duration { return &w.Interval },
		func(d time.Duration) string {
			switch {
			case monitor.ValidateInterval(d) == nil:
				return ""
			case d > monitor.MaxInterval:
				return fmt.Sprintf("must be at most %v (10 intervals, the default grace, must fit in a duration)", monitor.MaxInterval)
			}
			return atLeastMs(d)
		})},
	{"stalls", inWorker | inDefaults, intKey(func(w *Worker) *int { return &w.Stalls }, 1, maxStalls)},
	{"grace", inWorker | inDefaults, durationKey(func(w *Worker) *time.Duration { return &w.Grace },
		func(d time.Duration) string {
			if d < 0 {
				return "must not be negative (want 0 for the default, 10 intervals but at least 3s, or more)"
			}
			return ""
		})},
	{"signal", inWorker | inDefaults, func(w *Worker, v any) error {
		const want = `a signal name such as "TERM", "INT", "HUP", "QUIT", "USR1", or a number 1-64`
		switch s := v.(type) {
		case string:
			sig := parseSignal(s)
			if sig == 0 {
				return fmt.Errorf("%q is not a signal (want %s)", s, want)
			}
			w.Signal = sig
			return nil
		case int64:
			if s < 1 || s > 64 {
				return fmt.Errorf("%d is not a signal (want %s)", s, want)
			}
			w.Signal = syscall.Signal(s)
			return nil
		}
		return gotWant(v, want)
	}},
	{"kill_after", inWorker | inDefaults, durationKey(func(w *Worker) *time.Duration { return &w.KillAfter }, positive)},
	{"size", inWorker | inDefaults, func(w *Worker, v any) error {
		n, ok := v.(int64)
		if !ok {
			return gotWant(v, fmt.Sprintf("an integer number of bytes, at least %d", shmobj.MinSize))
		}
		if n < shmobj.MinSize {
			return fmt.Errorf("%d is too small (want at least %d bytes)", n, shmobj.MinSize)
		}
		if err := shmobj.ValidateSize(n); err != nil {
			return fmt.Errorf("%d is more than this host's memory (want at least %d bytes and at most the host's memory)", n, shmobj.MinSize)
		}
		w.Size = n
		return nil
	}},
	{"mode", inWorker | inDefaults, func(w *Worker, v any) error {
		const want = `an octal string from "0001" to "0777", e.g. "0600" or "0660"`
		s, ok := v.(string)
		if !ok {
			return gotWant(v, want)
		}
		m, err := strconv.ParseUint(s, 8, 32)
		if err != nil || m == 0 || m > 0o777 {
			return fmt.Errorf("%q is not a permission mode (want %s)", s, want)
		}
		w.Mode = os.FileMode(m)
		return nil
	}},
	{"backoff", inWorker | inDefaults | supervised, durationKey(func(w *Worker) *time.Duration { return &w.Backoff }, atLeastMs)},
	{"backoff_max", inWorker | inDefaults | supervised, durationKey(func(w *Worker) *time.Duration { return &w.BackoffMax }, atLeastMs)},
	{"backoff_reset", inWorker | inDefaults | supervised, durationKey(func(w *Worker) *time.Duration { return &w.BackoffReset }, positive)},
	{"start_limit", inWorker | inDefaults | supervised, intKey(func(w *Worker) *int { return &w.StartLimit }, 1, maxStalls)},
	{"start_window", inWorker | inDefaults | supervised, durationKey(func(w *Worker) *time.Duration { return &w.StartWindow }, positive)},
	{"on_stall", inWorker | inDefaults, hookKey(func(w *Worker) *string { return &w.OnStall })},
	{"on_abnormal", inWorker | inDefaults, hookKey(func(w *Worker) *string { return &w.OnAbnormal })},
	{"on_kill", inWorker | inDefaults, hookKey(func(w *Worker) *string { return &w.OnKill })},
	{"on_restart", inWorker | inDefaults | supervised, hookKey(func(w *Worker) *string { return &w.OnRestart })},
	{"on_give_up", inWorker | inDefaults | supervised, hookKey(func(w *Worker) *string { return &w.OnGiveUp })},
	{"hook_timeout", inWorker | inDefaults, durationKey(func(w *Worker) *time.Duration { return &w.HookTimeout }, positive)},
}

// hookKey returns the setter of a hook command: a string run by /bin/sh -c; "" for none.
func hookKey(field func(*Worker) *string) func(*Worker, any) error {
	return func(w *Worker, v any) error {
		const want = `a shell command as a string, e.g. "logger -t shmmon $SHMMON_EVENT $SHMMON_NAME", or "" for none`
		s, ok := v.(string)
		if !ok {
			return gotWant(v, want)
		}
		if strings.ContainsRune(s, 0) {
			return fmt.Errorf("%s contains a NUL byte (want %s)", shorten(s), want)
		}
		*field(w) = s
		return nil
	}
}

// keyIndex maps a key name to its definition.
var keyIndex = func() map[string]keyDef {
	m := make(map[string]keyDef, len(keys))
	for _, k := range keys {
		m[k.name] = k
	}
	return m
}()

// acceptedKeys lists the keys a table accepts, for messages.
func acceptedKeys(in where) string {
	var names []string
	for _, k := range keys {
		if k.where&in != 0 {
			names = append(names, k.name)
		}
	}
	return strings.Join(names, ", ")
}

// Rules of durations: each returns "" when d is acceptable, else the problem.
func atLeastMs(d time.Duration) string {
	if d < time.Millisecond {
		return "must be at least 1ms"
	}
	return ""
}

func positive(d time.Duration) string {
	if d <= 0 {
		return "must be more than 0"
	}
	return ""
}

// durationKey returns the setter of a duration field: a TOML string in Go syntax that rule
// accepts.
func durationKey(field func(*Worker) *time.Duration, rule func(time.Duration) string) func(*Worker, any) error {
	return func(w *Worker, v any) error {
		const want = `a duration string such as "500ms", "1s" or "1m30s"`
		s, ok := v.(string)
		if !ok {
			return gotWant(v, want)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration (want %s)", s, want)
		}
		if problem := rule(d); problem != "" {
			return fmt.Errorf("%q %s", s, problem)
		}
		*field(w) = d
		return nil
	}
}

// intKey returns the setter of an integer field from lo to hi.
func intKey(field func(*Worker) *int, lo, hi int64) func(*Worker, any) error {
	return func(w *Worker, v any) error {
		n, err := integer(v, lo, hi, "%d to %d")
		if err == nil {
			*field(w) = int(n)
		}
		return err
	}
}

// integer returns v as an integer from lo to hi; accepted describes the range for messages,
// with lo and hi as its arguments.
func integer(v any, lo, hi int64, accepted string) (int64, error) {
	want := fmt.Sprintf(accepted, lo, hi)
	n, ok := v.(int64)
	if !ok {
		return 0, gotWant(v, "an integer, "+want)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is out of range (want %s)", n, want)
	}
	return n, nil
}

// absPath returns v as an absolute path.
func absPath(v any, example string) (string, error) {
	want := fmt.Sprintf("an absolute path, e.g. %q", example)
	s, ok := v.(string)
	switch {
	case !ok:
		return "", gotWant(v, want)
	case strings.ContainsRune(s, 0):
		return "", fmt.Errorf("%q contains a NUL byte (want %s)", s, want)
	case !filepath.IsAbs(s):
		return "", fmt.Errorf("%q is not absolute (want %s)", s, want)
	}
	return s, nil
}

// idName returns v as a user or group name.
func idName(v any, what, example string) (string, error) {
	want := fmt.Sprintf("a %s as a string, e.g. %q", what, example)
	s, ok := v.(string)
	if !ok || s == "" || strings.ContainsRune(s, 0) {
		return "", gotWant(v, want)
	}
	return s, nil
}

// gotWant is the error of a value of the wrong type: "got TYPE VALUE (want ...)".
func gotWant(v any, want string) error {
	return fmt.Errorf("got %s (want %s)", describe(v), want)
}

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

// parseSignal parses a signal name (TERM, SIGTERM, term) or number (15); 0 means invalid.
func parseSignal(s string) syscall.Signal {
	if n, err := strconv.Atoi(s); err == nil {
		if n >= 1 && n <= 64 {
			return syscall.Signal(n)
		}
		return 0
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	return signalNum(name)
}
