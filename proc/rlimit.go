package proc

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/shmmon/shmmon/internal/field"
)

// Resource names a resource limit (getrlimit(2)) that a supervised program may be started
// with; see [ChildOptions.Rlimits].
type Resource int

// The resources shmmon sets, by the names of prlimit(1)'s options.
const (
	Nofile Resource = iota + 1 // RLIMIT_NOFILE: open file descriptors
	Core                       // RLIMIT_CORE: bytes of a core dump (0: none)
	Nproc                      // RLIMIT_NPROC: processes (threads) of the program's real user, all of them counted
)

// resourceNames are the resources as prlimit(1) and the configuration keys name them.
var resourceNames = [...]string{Nofile: "nofile", Core: "core", Nproc: "nproc"}

// String returns "nofile", "core" or "nproc".
func (r Resource) String() string {
	if r > 0 && int(r) < len(resourceNames) {
		return resourceNames[r]
	}
	return fmt.Sprintf("resource(%d)", int(r))
}

// Unlimited is the value of a limit that does not limit (RLIM_INFINITY).
const Unlimited = math.MaxUint64

// Limit is the value of one resource limit as prlimit(1) and systemd's LimitNOFILE= write
// it: "SOFT:HARD", or one number for both; a number may be "unlimited" (or "infinity"). Both
// limits are always set: prlimit(1)'s "SOFT:" and ":HARD", which keep the other limit as the
// program would have it, are not accepted, since what it would have is the monitor's own
// limit (a Go monitor raises its soft limit of open files at its start). A hard limit above
// the current one needs root.
type Limit struct {
	Soft, Hard uint64 // the limits; [Unlimited] for none
}

// Rlimit is a resource and the limit to start a program with.
type Rlimit struct {
	Resource Resource
	Limit    Limit
}

// ParseLimit parses a limit as [Limit] describes it. Anything else (a negative or
// non-numeric value, a soft limit above the hard one, a missing half) is a [*field.Error]
// naming the text and what is accepted.
func ParseLimit(s string) (Limit, error) {
	num := func(t string) (uint64, bool) {
		switch t = strings.TrimSpace(t); t {
		case "unlimited", "infinity":
			return Unlimited, true
		}
		n, err := strconv.ParseUint(t, 10, 64)
		return n, err == nil && n != Unlimited
	}
	soft, hard, pair := strings.Cut(s, ":")
	if !pair {
		hard = soft
	}
	l := Limit{}
	var okSoft, okHard bool
	l.Soft, okSoft = num(soft)
	l.Hard, okHard = num(hard)
	problem := ""
	switch {
	case !okSoft || !okHard:
		problem = "is not a resource limit"
	case l.Soft > l.Hard:
		problem = "has a soft limit above the hard one"
	default:
		return l, nil
	}
	return Limit{}, &field.Error{Pkg: "proc", Value: s, Problem: problem,
		Want: `"SOFT:HARD" or one number for both, each a number or "unlimited", e.g. "1024:4096"`}
}

// UnmarshalText parses the limit as [ParseLimit] does (for configuration files).
func (l *Limit) UnmarshalText(text []byte) error {
	v, err := ParseLimit(string(text))
	if err == nil {
		*l = v
	}
	return err
}

// String writes the limit as ParseLimit reads it: "1024:4096", "0:unlimited".
func (l Limit) String() string {
	n := func(v uint64) string {
		if v == Unlimited {
			return "unlimited"
		}
		return strconv.FormatUint(v, 10)
	}
	return n(l.Soft) + ":" + n(l.Hard)
}
