package monitor

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/shmmon/shmmon/internal/field"
	"github.com/shmmon/shmmon/sched"
	"github.com/shmmon/shmmon/shmobj"
)

// Result is the outcome of one check, with the values of the Boost C++ checker.
type Result int

// The check results.
const (
	OK       Result = 0  // progress, startup grace, restart, or a late (unjudged) check
	Stalled  Result = -1 // no progress, below the threshold
	Abnormal Result = -2 // the threshold was reached: the worker is hung
)

// String returns "ok", "stalled" or "abnormal".
func (r Result) String() string {
	switch r {
	case OK:
		return "ok"
	case Stalled:
		return "stalled"
	case Abnormal:
		return "abnormal"
	}
	return fmt.Sprintf("result(%d)", int(r))
}

// Defaults of [Config].
const (
	DefaultInterval = time.Second
	DefaultStalls   = 3
	// MinGrace is the shortest default startup grace, so that a worker that retries its
	// open once a second is not judged before it could have beaten.
	MinGrace = 3 * time.Second
	// MaxInterval is the longest check interval: the default grace, 10 intervals, must fit
	// in a time.Duration.
	MaxInterval = time.Duration(math.MaxInt64 / 10)
	// MaxStalls is the largest stall threshold.
	MaxStalls = 1 << 20
	// StarvationOff as [Config.StarvedMax] turns the starvation rule off: every stall counts.
	StarvationOff time.Duration = -1
)

// ParseStarvedMax reads a bound of the starvation rule as a configuration file or a flag
// writes it (starved_max, --starved-max): a duration in Go syntax ("30s"); "0s" turns the rule
// off ([StarvationOff]). Anything else, a negative duration included, is a [*field.Error].
func ParseStarvedMax(text string) (time.Duration, error) {
	d, err := time.ParseDuration(text)
	switch {
	case err != nil:
		return 0, &field.Error{Pkg: "monitor", Field: "starved_max", Value: text, Problem: "is not a duration",
			Want: `a duration such as "30s", or "0s" to turn the starvation rule off`}
	case d < 0:
		return 0, &field.Error{Pkg: "monitor", Field: "starved_max", Value: d, Problem: "must not be negative",
			Want: `a duration such as "30s", or "0s" to turn the starvation rule off`}
	case d == 0:
		return StarvationOff, nil
	}
	return d, nil
}

// StarvedMax is a [Config.StarvedMax] as a configuration file writes it (see
// [ParseStarvedMax]): the zero value is the default, "0s" is [StarvationOff].
type StarvedMax time.Duration

// UnmarshalText reads the bound as [ParseStarvedMax] does.
func (m *StarvedMax) UnmarshalText(text []byte) error {
	d, err := ParseStarvedMax(string(text))
	if err == nil {
		*m = StarvedMax(d)
	}
	return err
}

// ValidateInterval reports whether d is a check interval shmmon accepts: 1ms to
// [MaxInterval]. The error is a [*field.Error].
func ValidateInterval(d time.Duration) error {
	problem := ""
	switch {
	case d < time.Millisecond:
		problem = "must be at least 1ms"
	case d > MaxInterval:
		problem = "must be at most " + MaxInterval.String() + " (10 intervals, the default grace, must fit in a duration)"
	default:
		return nil
	}
	return &field.Error{Pkg: "monitor", Field: "interval", Value: d, Problem: problem}
}

// Config holds the parameters of the check rules. The zero value means the defaults.
type Config struct {
	Interval time.Duration // time between checks; 0 means DefaultInterval
	Stalls   int           // consecutive stalls that make a worker abnormal; 0 means DefaultStalls
	Grace    time.Duration // startup grace; 0 means 10 intervals, but at least MinGrace
	// StarvedMax bounds the starvation rule (see the package doc): a worker whose sequence
	// stood still for longer than this is judged as usual, starved or not. 0 means 10
	// intervals, but at least 10s ([sched.DefaultBound]); [StarvationOff] turns the rule off.
	StarvedMax time.Duration
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Stalls == 0 {
		c.Stalls = DefaultStalls
	}
	if c.Grace == 0 {
		c.Grace = max(10*c.Interval, MinGrace)
	}
	if c.StarvedMax == 0 {
		c.StarvedMax = sched.DefaultBound(c.Interval)
	}
	return c
}

// Validate reports the fields of c that are out of range, with zero fields standing for
// their defaults: c.WithDefaults().ValidateResolved().
func (c Config) Validate() error { return c.WithDefaults().ValidateResolved() }

// ValidateResolved reports every field of c that is out of range, taking each as it is (a
// zero Interval or Stalls is out of range, not the default; a zero Grace stays the default,
// which depends on the interval), as [*field.Error] values joined with [errors.Join]; nil when
// all are valid. Configuration files and command lines, where leaving a setting out is how to
// get its default, check their values with it. The rules: Interval as [ValidateInterval],
// Stalls 1 to [MaxStalls], Grace not negative, StarvedMax not negative unless [StarvationOff].
func (c Config) ValidateResolved() error {
	errs := []error{ValidateInterval(c.Interval)}
	if c.Stalls < 1 || c.Stalls > MaxStalls {
		errs = append(errs, &field.Error{Pkg: "monitor", Field: "stalls", Value: c.Stalls, Problem: "is out of range",
			Want: fmt.Sprintf("1 to %d", MaxStalls)})
	}
	if c.Grace < 0 {
		errs = append(errs, &field.Error{Pkg: "monitor", Field: "grace", Value: c.Grace, Problem: "must not be negative",
			Want: "0 for the default, 10 intervals but at least " + MinGrace.String() + ", or more"})
	}
	if c.StarvedMax < 0 && c.StarvedMax != StarvationOff {
		errs = append(errs, &field.Error{Pkg: "monitor", Field: "starved_max", Value: c.StarvedMax, Problem: "must not be negative",
			Want: `a duration such as "30s", or "0s" to turn the starvation rule off`})
	}
	return errors.Join(errs...)
}

// clockBase is the origin of the checker's monotonic readings.
var clockBase = time.Now()

// Checker applies the check rules to a stream of sequence readings. It does no I/O and is
// not safe for concurrent use. Create it with [NewChecker].
//
// Times are kept as monotonic readings (durations since clockBase): only the monotonic
// clock decides lateness and the grace, and integer arithmetic keeps Observe cheap.
type Checker struct {
	cfg          Config
	last         uint64
	beaten       bool // a beat (s > 0) was seen since the rules started
	stalls       int
	started      time.Duration // when the rules started: the grace runs from here
	prev         time.Duration // previous check, or started
	lastProgress time.Duration // valid when beaten
	progressWall int64         // Unix ns of lastProgress, for the status record
	state        shmobj.State
	// resumed is when the last late (unjudged) check happened; until a full interval has
	// passed since then, checks are not judged either. The ticker keeps its phase across a
	// pause, so the check after a late one may come milliseconds later, before a worker that
	// was paused too (the machine slept) could beat.
	resumed time.Duration
	paused  bool // resumed is set
	// graceEnd is when the startup grace ends (started + Grace, moved by Ready and Extend);
	// suspendEnd is when a suspension for a worker's shutdown ends (Suspend, Extend).
	graceEnd, suspendEnd time.Duration
}

// NewChecker returns a Checker whose rules start at now (the object was just published). cfg
// must be valid; its zero fields take their defaults.
func NewChecker(cfg Config, now time.Time) *Checker {
	c := &Checker{cfg: cfg.WithDefaults()}
	c.Reset(now)
	return c
}

// Reset starts the rules over at now, as for a freshly published object: last = 0, no stalls,
// a new grace period.
func (c *Checker) Reset(now time.Time) {
	m := now.Sub(clockBase)
	*c = Checker{cfg: c.cfg, started: m, prev: m, state: shmobj.StateWaiting, graceEnd: m + c.cfg.Grace}
}

// Observe judges the sequence seq read at now. now must carry a monotonic clock reading
// (time.Now does): only the monotonic clock decides lateness and the grace. It makes no
// system call and no allocation.
func (c *Checker) Observe(seq uint64, now time.Time) Result {
	return c.observe(seq, now.Sub(clockBase), now.UnixNano())
}

// observe is Observe with now as a monotonic reading and Unix ns.
func (c *Checker) observe(seq uint64, mono time.Duration, wall int64) Result {
	late := mono-c.prev > 2*c.cfg.Interval
	c.prev = mono
	if late {
		c.resumed, c.paused = mono, true
	} else if c.paused && mono-c.resumed < c.cfg.Interval {
		late = true // too soon after a pause to judge
	} else {
		c.paused = false
	}
	if late || mono < c.suspendEnd {
		// The monitor was stopped, starved or the machine slept: what happened in between
		// is unknown, so this check judges nothing. It only follows the sequence. The same
		// while the worker shuts down (Suspend).
		if seq != 0 && seq != c.last {
			c.progress(seq, mono, wall)
			if c.state == shmobj.StateWaiting {
				c.state = shmobj.StateOK
			}
		}
		return OK
	}
	switch {
	case seq > c.last, seq != 0 && seq < c.last:
		// Progress, or a restarted worker whose counter began again: rebase either way.
		c.progress(seq, mono, wall)
		c.stalls = 0
		c.state = shmobj.StateOK
		return OK
	case seq == 0 && !c.beaten && mono < c.graceEnd:
		return OK // still waiting for the first beat
	}
	// No progress: s == last (> 0), a 0 after a beat, or no beat by the end of the grace.
	c.stalls++
	if c.stalls >= c.cfg.Stalls {
		c.state = shmobj.StateAbnormal
		return Abnormal
	}
	c.state = shmobj.StateStalled
	return Stalled
}

// excuse takes back the stall the last check counted: the worker could not have run (the
// starvation rule, see package sched). The count goes back and the state is
// [shmobj.StateStarved]; the result is [Stalled] (the sequence did not move). Call it only
// right after a check that returned Stalled or Abnormal.
func (c *Checker) excuse() Result {
	c.stalls--
	c.state = shmobj.StateStarved
	return Stalled
}

func (c *Checker) progress(seq uint64, mono time.Duration, wall int64) {
	c.last, c.beaten, c.lastProgress, c.progressWall = seq, true, mono, wall
}

// Ready ends the startup grace at now, as a worker's READY=1 (notify protocol) says: a
// worker that has not beaten yet is judged from the next check on. Once the worker has
// beaten, or after the grace, it does nothing.
func (c *Checker) Ready(now time.Time) {
	if m := now.Sub(clockBase); !c.beaten && m < c.graceEnd {
		c.graceEnd = m
	}
}

// Extend makes the current wait last at least until now+d (EXTEND_TIMEOUT_USEC=): the
// suspension of a worker that shuts down (see [Checker.Suspend]), else the startup grace
// while no beat was seen. It reports whether there was such a wait to extend; a running
// worker's checks are never put off.
func (c *Checker) Extend(now time.Time, d time.Duration) bool {
	m := now.Sub(clockBase)
	switch {
	case m < c.suspendEnd:
		c.suspendEnd = max(c.suspendEnd, m+d)
	case !c.beaten && m < c.graceEnd:
		c.graceEnd = max(c.graceEnd, m+d)
	default:
		return false
	}
	return true
}

// Suspend stops judging from now for the grace period, as for a worker shutting down
// (STOPPING=1): its beats are still followed, but a stall is not counted. The suspension
// is bounded so that a worker stuck in its shutdown is still caught: once it ends the
// checks judge again, from the stall count they had.
func (c *Checker) Suspend(now time.Time) {
	c.suspendEnd = max(c.suspendEnd, now.Sub(clockBase)+c.cfg.Grace)
}

// Suspended reports whether judging is suspended at now (see [Checker.Suspend]).
func (c *Checker) Suspended(now time.Time) bool { return now.Sub(clockBase) < c.suspendEnd }

// Trigger makes the worker abnormal at once, as its WATCHDOG=trigger asks.
func (c *Checker) Trigger() { c.state = shmobj.StateAbnormal }

// SetInterval changes the check interval to d from now on (a worker's WATCHDOG_USEC=); the
// stall count and the grace stay. A d [ValidateInterval] refuses is refused.
func (c *Checker) SetInterval(d time.Duration, now time.Time) error {
	if err := ValidateInterval(d); err != nil {
		return err
	}
	c.cfg.Interval = d
	// The next check comes d after now: measured from the previous one it could look late.
	c.prev = now.Sub(clockBase)
	return nil
}

// Config returns the checker's configuration, with defaults applied.
func (c *Checker) Config() Config { return c.cfg }

// Stalls returns the current count of consecutive stalls.
func (c *Checker) Stalls() int { return c.stalls }

// Last returns the last sequence seen (0 before the first beat).
func (c *Checker) Last() uint64 { return c.last }

// Beaten reports whether a beat was seen since the rules (re)started.
func (c *Checker) Beaten() bool { return c.beaten }

// State returns the worker's state after the last check: [shmobj.StateWaiting] before the
// first beat, then [shmobj.StateOK], [shmobj.StateStalled], [shmobj.StateStarved] (see
// [Worker.Check]) or [shmobj.StateAbnormal].
func (c *Checker) State() shmobj.State { return c.state }

// StalledFor returns how long the sequence has not moved at now: since the last progress, or
// since the rules started when no beat was seen.
func (c *Checker) StalledFor(now time.Time) time.Duration {
	if c.beaten {
		return now.Sub(clockBase) - c.lastProgress
	}
	return now.Sub(clockBase) - c.started
}

// status is the status record after the last check, made at wall (Unix ns).
func (c *Checker) status(wall int64) shmobj.Status {
	return shmobj.Status{
		LastSeq:      c.last,
		LastProgress: c.progressWall,
		LastCheck:    wall,
		Stalls:       uint32(c.stalls),
		State:        c.state,
	}
}
