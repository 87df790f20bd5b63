package fleet

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/supervise"
)

// The errors of the control actions (shmmon ctl), to match with errors.Is.
var (
	// ErrUnknownWorker: the configuration has no worker of that name.
	ErrUnknownWorker = errors.New("fleet: no such worker")
	// ErrWrongKind: the action is not for this kind of worker (a restart of a watched one).
	ErrWrongKind = errors.New("fleet: not for this kind of worker")
	// ErrNotRunning: nothing of the worker runs to act on (a signal to a stopped program).
	ErrNotRunning = errors.New("fleet: not running")
)

var errNotWatched = fmt.Errorf("%w: no process is watched", ErrNotRunning)

// The control actions act on one worker as its supervisor would, for an operator: each
// returns a short text of what it did ("restarted (pid 4250, was 4242)"), and waits until it
// is done. Actions on one worker are taken one at a time; an action asked during a reload
// waits for it. A worker stopped by StopWorker stays stopped across reloads that leave its
// configuration unchanged, until StartWorker (a changed configuration starts it anew). A
// control action takes precedence over the dependencies (see deps.go): a worker stopped so is
// not started by them, and StartWorker starts a worker waiting for them at once.

// StartWorker starts the supervised worker name when it is stopped (StopWorker), waiting to
// be restarted (backoff, a periodic job between runs), or no longer supervised (it gave up, or
// finished by its restart policy): a start that is no failure and not counted against the
// start limit, so the backoff and a given-up state start over. A watched worker is watched
// again.
func (f *Fleet) StartWorker(ctx context.Context, name string) (string, error) {
	m, err := f.member(name)
	if err != nil {
		return "", err
	}
	m.ctl.Lock()
	defer m.ctl.Unlock()
	m.override(false)
	if m.x != nil {
		if m.x.release() {
			return "watching again", nil
		}
		return "already watched", nil
	}
	changed, err := m.sup.Ask(ctx, supervise.RequestStart)
	if errors.Is(err, supervise.ErrNotRunning) {
		return f.startAnew(ctx, m)
	}
	if err != nil {
		return "", err
	}
	if !changed {
		return fmt.Sprintf("already running (pid %d)", pidOf(m)), nil
	}
	return fmt.Sprintf("started (pid %d)", pidOf(m)), nil
}

// StopWorker stops the supervised worker name's program (its signal, then SIGKILL after its
// kill_after) and keeps it stopped; a watched worker is no longer watched (its process is left
// alone).
func (f *Fleet) StopWorker(ctx context.Context, name string) (string, error) {
	m, err := f.member(name)
	if err != nil {
		return "", err
	}
	m.ctl.Lock()
	defer m.ctl.Unlock()
	m.override(true)
	if m.x != nil {
		if m.x.hold() {
			return "no longer watched (the process is left alone)", nil
		}
		return "already not watched", nil
	}
	pid := pidOf(m)
	changed, err := m.sup.Ask(ctx, supervise.RequestStop)
	switch {
	case errors.Is(err, supervise.ErrNotRunning):
		return fmt.Sprintf("not running (%s)", m.sup.Worker().Books().Phase), nil
	case err != nil:
		return "", err
	case !changed:
		return "already stopped", nil
	case pid == 0:
		return "stopped (it was waiting to be started)", nil
	}
	return fmt.Sprintf("stopped (pid %d)", pid), nil
}

// RestartWorker stops the supervised worker name's program and starts it again (see
// StartWorker for how it counts); a stopped or waiting one is started. A watched worker is an
// [ErrWrongKind]: serve does not start it.
func (f *Fleet) RestartWorker(ctx context.Context, name string) (string, error) {
	m, err := f.member(name)
	if err != nil {
		return "", err
	}
	m.ctl.Lock()
	defer m.ctl.Unlock()
	if m.x != nil {
		return "", fmt.Errorf("%w: %s is watched, not supervised: serve never starts it (stop, then start, to watch it anew)", ErrWrongKind, name)
	}
	m.override(false)
	was := pidOf(m)
	_, err = m.sup.Ask(ctx, supervise.RequestRestart)
	if errors.Is(err, supervise.ErrNotRunning) {
		return f.startAnew(ctx, m)
	}
	if err != nil {
		return "", err
	}
	if was == 0 {
		return fmt.Sprintf("started (pid %d)", pidOf(m)), nil
	}
	return fmt.Sprintf("restarted (pid %d, was %d)", pidOf(m), was), nil
}

// SignalWorker sends sig to the process group of the supervised worker name's program, or to
// a watched worker's process, through the handle that holds it.
func (f *Fleet) SignalWorker(name string, sig syscall.Signal) (string, error) {
	m, err := f.member(name)
	if err != nil {
		return "", err
	}
	if m.x != nil {
		pid, err := m.x.signal(sig)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("sent %s to pid %d", proc.SignalName(sig), pid), nil
	}
	pid, err := m.sup.Signal(sig)
	if errors.Is(err, supervise.ErrNotRunning) {
		return "", fmt.Errorf("%w: %v", ErrNotRunning, err)
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("sent %s to the process group of pid %d", proc.SignalName(sig), pid), nil
}

// Config returns the configuration of the worker name.
func (f *Fleet) Config(name string) (config.Worker, error) {
	f.bmu.Lock()
	defer f.bmu.Unlock()
	e := f.entries[name]
	if e == nil {
		return config.Worker{}, fmt.Errorf("%w %q", ErrUnknownWorker, name)
	}
	return *e.w, nil
}

// member returns the member running the worker name, after any reload under way.
func (f *Fleet) member(name string) (*member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.members[name]
	if m == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownWorker, name)
	}
	return m, nil
}

// startAnew starts a new supervision of m's worker, whose supervision ended (it gave up, or
// its restart policy let it finish), and waits until its program runs.
func (f *Fleet) startAnew(ctx context.Context, m *member) (string, error) {
	name := m.w.Name
	f.mu.Lock()
	switch {
	case f.stopped:
		f.mu.Unlock()
		return "", errors.New("fleet: serve is stopping")
	case f.members[name] != m:
		f.mu.Unlock()
		return "", fmt.Errorf("fleet: %s was changed by a reload meanwhile: try again", name)
	}
	f.stopMember(m) // its supervision ended: this keeps its books for the next
	delete(f.members, name)
	err := f.start(m.w)
	nm := f.members[name]
	f.mu.Unlock()
	if err != nil {
		return "", err
	}
	nm.override(false)
	// Taken once the first run has started (or its start failed, and was tried again).
	if _, err := nm.sup.Ask(ctx, supervise.RequestStart); err != nil {
		return "", err
	}
	return fmt.Sprintf("started (pid %d)", pidOf(nm)), nil
}

// override records a control action on m, which its dependencies do not undo: a stop (held)
// keeps it stopped, a start starts it whether they are ready or not.
func (m *member) override(held bool) {
	m.gmu.Lock()
	defer m.gmu.Unlock()
	m.gate.opHeld, m.gate.parked = held, false
}

// pidOf returns the pid of m's program now, 0 when none runs.
func pidOf(m *member) int64 {
	if mw := m.worker(); mw != nil {
		return mw.Pid()
	}
	return 0
}
