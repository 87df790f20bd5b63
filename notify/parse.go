package notify

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// MaxSize is the largest datagram accepted, as systemd's (PIPE_BUF): longer ones are dropped.
const MaxSize = 4096

// ErrMalformed is returned, wrapped, by [Parse] for a datagram that is dropped as a whole: one
// holding a NUL byte, or longer than [MaxSize].
var ErrMalformed = errors.New("notify: malformed message")

// Message is one datagram of the notify protocol: newline-separated KEY=VALUE lines. Only the
// keys below are read. As in systemd, a flag (READY=1, STOPPING=1, WATCHDOG=1,
// WATCHDOG=trigger) counts wherever it appears, and a key with a value counts the first time
// it appears. A known key with a value it does not take is ignored and listed in Invalid;
// lines of unknown keys, and lines without "=", are ignored silently.
type Message struct {
	// The sender, from its SCM_CREDENTIALS; zero when the message came from [Parse].
	Pid, UID, GID int

	Ready    bool // READY=1: startup is finished
	Stopping bool // STOPPING=1: the program is shutting down
	Watchdog bool // WATCHDOG=1: a beat
	Trigger  bool // WATCHDOG=trigger: the program asks to be treated as hung now

	// Status is the text of STATUS= (valid UTF-8; HasStatus tells an empty text from none).
	Status    string
	HasStatus bool

	WatchdogInterval time.Duration // WATCHDOG_USEC=: a new watchdog interval; 0 = none (0 is invalid)
	ExtendTimeout    time.Duration // EXTEND_TIMEOUT_USEC=: extend the current timeout; 0 = none
	MainPid          int           // MAINPID=: the program's main process moved; 0 = none

	Invalid []string // "KEY=VALUE" lines of known keys with a value they do not take
}

// Parse parses one datagram. It never panics. A datagram holding a NUL byte or longer than
// [MaxSize] is an error wrapping [ErrMalformed], with a zero Message. Invalid values do not
// make an error: see [Message].
func Parse(b []byte) (Message, error) {
	var m Message
	if len(b) > MaxSize {
		return Message{}, fmt.Errorf("%w: %d bytes, at most %d are accepted", ErrMalformed, len(b), MaxSize)
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return Message{}, fmt.Errorf("%w: NUL byte at offset %d", ErrMalformed, i)
	}
	var seenStatus, seenUsec, seenExtend, seenMain bool
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte("="))
		if !ok {
			continue
		}
		valid := true
		switch string(k) {
		case "READY":
			m.Ready = m.Ready || string(v) == "1"
		case "STOPPING":
			m.Stopping = m.Stopping || string(v) == "1"
		case "WATCHDOG":
			switch string(v) {
			case "1":
				m.Watchdog = true
			case "trigger":
				m.Trigger = true
			default:
				valid = false
			}
		case "STATUS":
			if first(&seenStatus) {
				if valid = utf8.Valid(v); valid {
					m.Status, m.HasStatus = string(v), true
				}
			}
		case "WATCHDOG_USEC":
			if first(&seenUsec) {
				m.WatchdogInterval, valid = usec(v)
				valid = valid && m.WatchdogInterval > 0
			}
		case "EXTEND_TIMEOUT_USEC":
			if first(&seenExtend) {
				m.ExtendTimeout, valid = usec(v)
			}
		case "MAINPID":
			if first(&seenMain) {
				n, err := strconv.Atoi(string(v))
				if valid = err == nil && n > 0; valid {
					m.MainPid = n
				}
			}
		}
		if !valid {
			m.Invalid = append(m.Invalid, string(line))
		}
	}
	return m, nil
}

// first reports whether *seen was false, and sets it.
func first(seen *bool) bool {
	f := !*seen
	*seen = true
	return f
}

// usec parses a number of microseconds that fits a time.Duration.
func usec(v []byte) (time.Duration, bool) {
	n, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil || n > math.MaxInt64/uint64(time.Microsecond) {
		return 0, false
	}
	return time.Duration(n) * time.Microsecond, true
}
