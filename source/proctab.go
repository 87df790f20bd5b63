package source

import (
	"errors"
	"time"

	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/proctab"
	"github.com/shmmon/shmmon/shmobj"
)

func init() { register("proctab", shmobj.KindProctab, newProctab) }

// Proctab is heartbeat "proctab": a supervised program that registers itself in the System V
// process table of the original framework (the table of serve's [proctab]) is judged by its
// own record, the one whose pid is the program's or a process of its tree, the newest when
// there are several. The owner polls it before each check: while the record is alive (its
// heartbeat within its timeout, see [proctab.Record.TimedOut]) the poll beats the worker, so
// a record that times out stops the beats and the usual stall rules judge the worker: it is
// killed at most stalls intervals after the record timed out. A program that has not
// registered yet is in its grace, as one that has not beaten. The table is attached, never
// created, at the first poll that finds it.
type Proctab struct {
	w    Worker
	opts proctab.Options
	tab  *proctab.Table // nil until attached
}

func newProctab(w Worker, env Env) ([]Source, error) {
	if env.Proctab == nil {
		return nil, errors.New(`source: heartbeat "proctab" needs serve's [proctab] table`)
	}
	return []Source{&Proctab{w: w, opts: *env.Proctab}}, nil
}

// Kind is proctab.
func (p *Proctab) Kind() shmobj.Kind { return shmobj.KindProctab }

// Poll beats the worker when the running program's record in the table is alive at now. It
// reads the table without its lock (see [proctab.Table.Peek]): it never waits.
func (p *Proctab) Poll(now time.Time) {
	root := int(p.w.Pid())
	if root <= 0 {
		return
	}
	if p.tab == nil {
		tab, err := proctab.Attach(p.opts)
		if err != nil {
			return // not there yet: the program has not registered
		}
		p.tab = tab
	}
	r, ok := p.tab.Peek(func(pid int) bool { return proc.InTree(pid, root) })
	if ok && !r.TimedOut(now) {
		p.w.Beat(shmobj.KindProctab)
	}
}

// Close detaches the table.
func (p *Proctab) Close() error {
	if p.tab == nil {
		return nil
	}
	return p.tab.Close()
}
