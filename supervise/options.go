package supervise

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/shmmon/shmmon/cgroup"
	"github.com/shmmon/shmmon/internal/field"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/source"
)

// Policy says when a program that ended is started again. The zero Policy stands for the
// default, [Always] ([Options.WithDefaults]); it prints as "", a policy of nothing (a worker
// that is not supervised has none).
type Policy int

// The restart policies.
const (
	Always    Policy = iota + 1 // whatever the way it ended
	OnFailure                   // after a non-zero exit, a signal, or a hang
	Never                       // never
)

// policyNames are the policies as users write them, by value.
var policyNames = [...]string{Always: "always", OnFailure: "on-failure", Never: "never"}

// ParsePolicy parses "always", "on-failure" or "never". Anything else is a [*field.Error]
// naming the text and what is accepted.
func ParsePolicy(s string) (Policy, error) {
	for p, name := range policyNames {
		if name == s && name != "" {
			return Policy(p), nil
		}
	}
	return 0, &field.Error{Pkg: "supervise", Field: "restart", Value: s, Problem: "is not a restart policy",
		Want: `"always", "on-failure" or "never"`}
}

// UnmarshalText parses the policy as [ParsePolicy] does (for configuration files).
func (p *Policy) UnmarshalText(text []byte) error {
	v, err := ParsePolicy(string(text))
	if err == nil {
		*p = v
	}
	return err
}

// String returns the policy's name as ParsePolicy takes it ("" for the zero Policy).
func (p Policy) String() string {
	if p >= 0 && int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("policy(%d)", int(p))
}

// Defaults and limits of [Options].
const (
	DefaultBackoff      = time.Second
	DefaultBackoffMax   = 30 * time.Second
	DefaultBackoffReset = 60 * time.Second
	DefaultStartLimit   = 5
	DefaultStartWindow  = 60 * time.Second
	MaxStartLimit       = 1 << 20
)

// WithDefaults returns o with its zero supervision fields (Signal, KillAfter, Restart,
// Backoff, BackoffMax, BackoffReset, StartLimit, StartWindow, Log.MaxSize) set to their
// defaults: SIGTERM, [proc.DefaultKillAfter], [Always], the Default constants and
// worklog's. Monitor is left alone, and so is Log.Keep (0 keeps no old file).
func (o Options) WithDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.KillAfter, proc.DefaultKillAfter)
	def(&o.Backoff, DefaultBackoff)
	def(&o.BackoffMax, DefaultBackoffMax)
	def(&o.BackoffReset, DefaultBackoffReset)
	def(&o.StartWindow, DefaultStartWindow)
	o.Log = o.Log.WithDefaults()
	if o.Signal == 0 {
		o.Signal = syscall.SIGTERM
	}
	if o.Restart == 0 {
		o.Restart = Always
	}
	if o.StartLimit == 0 {
		o.StartLimit = DefaultStartLimit
	}
	return o
}

// Validate reports the supervision fields of o that are out of range, with zero fields
// standing for their defaults: o.WithDefaults().ValidateResolved().
func (o Options) Validate() error { return o.WithDefaults().ValidateResolved() }

// ValidateResolved reports every supervision field of o that is out of range, taking each as
// it is (a zero Backoff is out of range, not the default; Every 0 is a resident program), as
// [*field.Error] values joined with [errors.Join]; nil when all are valid. Configuration
// files and command lines, where leaving a setting out is how to get its default, check
// their values with it. The rules:
//
//   - KillAfter: more than 0 ([proc.ValidateKillAfter]);
//   - Backoff and BackoffMax: at least 1ms, and Backoff at most BackoffMax;
//   - BackoffReset and StartWindow: more than 0;
//   - StartLimit: 1 to [MaxStartLimit];
//   - Every: 0 or at least 1ms;
//   - Restart: [Always], [OnFailure] or [Never];
//   - Heartbeat: a kind of heartbeat ([source.Check]);
//   - PidsMax: 0 or 1 to [cgroup.MaxPids] ([cgroup.ValidatePidsMax]).
//   - Log: its size and number of old files (worklog.Options.ValidateResolved).
func (o Options) ValidateResolved() error {
	errs := []error{source.Check(o.Heartbeat), o.Log.ValidateResolved()}
	bad := func(name string, v any, problem, want string) {
		errs = append(errs, &field.Error{Pkg: "supervise", Field: name, Value: v, Problem: problem, Want: want})
	}
	if err := proc.ValidateKillAfter(o.KillAfter); err != nil {
		errs = append(errs, err)
	}
	for _, d := range []struct {
		name, problem string
		v, min        time.Duration
	}{
		{"backoff", "must be at least 1ms", o.Backoff, time.Millisecond},
		{"backoff_max", "must be at least 1ms", o.BackoffMax, time.Millisecond},
		{"backoff_reset", "must be more than 0", o.BackoffReset, 1},
		{"start_window", "must be more than 0", o.StartWindow, 1},
	} {
		if d.v < d.min {
			bad(d.name, d.v, d.problem, "")
		}
	}
	// Compared only when both are valid: a problem is reported once.
	if o.Backoff > o.BackoffMax && o.BackoffMax >= time.Millisecond {
		errs = append(errs, &field.Error{Pkg: "supervise", Field: "backoff", Value: o.Backoff, Problem: "must be at most",
			Other: "backoff_max", OtherValue: o.BackoffMax, Inverse: "must be at least"})
	}
	if o.StartLimit < 1 || o.StartLimit > MaxStartLimit {
		bad("start_limit", o.StartLimit, "is out of range", fmt.Sprintf("1 to %d", MaxStartLimit))
	}
	if o.Every != 0 && o.Every < time.Millisecond {
		bad("every", o.Every, "must be 0 (a resident worker) or at least 1ms", "")
	}
	if o.Restart < Always || o.Restart > Never {
		bad("restart", int(o.Restart), "is not a restart policy", `"always", "on-failure" or "never"`)
	}
	if err := cgroup.ValidatePidsMax(o.PidsMax); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
