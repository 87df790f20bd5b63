package source

import "github.com/shmmon/shmmon/shmobj"

func init() { register("none", shmobj.KindNone, newNone) }

// None is heartbeat "none": a program supervised without a hang verdict, as the original
// framework's scheduler runs programs. It is restarted when it exits, per its restart policy,
// with the backoff and the start limit, or run on schedule as a periodic job; it is never
// checked, so never killed for not beating. Its record's state is running while it runs,
// exited once it ended.
type None struct{}

func newNone(Worker, Env) ([]Source, error) { return []Source{None{}}, nil }

// Kind is none.
func (None) Kind() shmobj.Kind { return shmobj.KindNone }

// Unjudged turns the hang verdict off.
func (None) Unjudged() {}

// Close does nothing.
func (None) Close() error { return nil }
