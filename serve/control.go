package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/control"
	"github.com/shmmon/shmmon/fleet"
	"github.com/shmmon/shmmon/internal/field"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/view"
	"github.com/shmmon/shmmon/worklog"
)

// listenControl listens at the control socket's path: Options.Control, else the file's
// [serve] control, else control.DefaultPath(); with none (not root, no XDG_RUNTIME_DIR), serve
// runs without one (event=control-off).
func (s *server) listenControl(sv config.Serve) (*control.Server, error) {
	path := s.opts.Control
	if path == "" {
		path = sv.Control
	}
	if path == "" {
		path = control.DefaultPath()
	}
	if path == "" {
		s.log.Warn("no control socket: shmmon ctl cannot reach serve (give --control, or set XDG_RUNTIME_DIR)", "event", "control-off")
		return nil, nil
	}
	srv, err := control.Listen(path, control.Options{Group: sv.ControlGroup, Logger: s.log})
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	return srv, nil
}

// sameControl reports whether a and b have the same control socket settings.
func sameControl(a, b config.Serve) bool {
	return a.Control == b.Control && (a.ControlGroup == nil) == (b.ControlGroup == nil) &&
		(a.ControlGroup == nil || *a.ControlGroup == *b.ControlGroup)
}

// handle answers one request of the control socket (see package control), and logs it: the
// actions that change something at info, status and logs at debug (a terminal view polls
// status every second).
func (s *server) handle(ctx context.Context, peer proc.Peer, req control.Request, line func(string) error) control.Answer {
	a := s.answer(ctx, req, line)
	lvl := slog.LevelInfo
	if req.Action == control.ActionStatus || req.Action == control.ActionLogs {
		lvl = slog.LevelDebug
	}
	attrs := []any{"event", "control", "action", req.Action, "uid", peer.Uid, "peer_pid", peer.Pid}
	if len(req.Workers) > 0 {
		attrs = append(attrs, "worker", strings.Join(req.Workers, ","))
	}
	if req.Signal != "" {
		attrs = append(attrs, "signal", req.Signal)
	}
	var done []string
	for _, r := range a.Results {
		if r.Done != "" {
			done = append(done, r.Worker+": "+r.Done)
		}
	}
	if len(done) > 0 {
		attrs = append(attrs, "result", strings.Join(done, "; "))
	}
	if !a.OK {
		lvl = max(lvl, slog.LevelWarn)
		attrs = append(attrs, "err", a.Error)
	}
	s.log.Log(context.Background(), lvl, "control request", attrs...)
	return a
}

// answer does what req asks.
func (s *server) answer(ctx context.Context, req control.Request, line func(string) error) control.Answer {
	// Every name first: a request naming an unknown worker does nothing at all.
	ws := map[string]config.Worker{}
	for _, name := range req.Workers {
		w, err := s.f.Config(name)
		if err != nil {
			return control.Usagef("unknown worker %q (shmmon ctl status lists serve's workers)", name)
		}
		ws[name] = w
		switch {
		case req.Action == control.ActionRestart && !w.Supervised():
			return control.Usagef("%s is watched, not supervised: serve never starts it, so it cannot restart it (stop, then start, to watch it anew)", name)
		case req.Action == control.ActionLogs && w.Log == "":
			return control.Usagef("%s has no log file (its output goes to serve's; set log in its [[worker]])", name)
		}
	}
	switch req.Action {
	case control.ActionStatus:
		return s.status(req.Workers)
	case control.ActionStart:
		return s.each(req.Workers, func(name string) (string, error) { return s.f.StartWorker(ctx, name) })
	case control.ActionStop:
		// A worker before the workers it needs: its dependents stop first.
		return s.each(s.f.StopOrder(req.Workers), func(name string) (string, error) { return s.f.StopWorker(ctx, name) })
	case control.ActionRestart:
		return s.each(req.Workers, func(name string) (string, error) { return s.f.RestartWorker(ctx, name) })
	case control.ActionSignal:
		sig, err := proc.ParseSignal(req.Signal)
		if err != nil {
			if fe := (*field.Error)(nil); errors.As(err, &fe) {
				return control.Usagef("invalid signal %s: %s", field.Show(fe.Value), fe.Detail(""))
			}
			return control.Usagef("%v", err)
		}
		return s.each(req.Workers, func(name string) (string, error) { return s.f.SignalWorker(name, sig) })
	case control.ActionReload:
		return s.reloadNow(ctx)
	case control.ActionLogs:
		return logs(ctx, ws[req.Workers[0]], req, line)
	}
	return control.Usagef("unknown action %q", req.Action)
}

// status answers with the view of the workers named (all without names), as /status shows
// them.
func (s *server) status(names []string) control.Answer {
	now := time.Now()
	out := []view.Worker{}
	for _, st := range s.f.Status() {
		if len(names) == 0 || slices.Contains(names, st.Worker.Name) {
			out = append(out, view.Served(st, now))
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return control.Failf("%v", err)
	}
	return control.Answer{OK: true, Workers: b}
}

// each does act for every worker named, in order, and answers with what each did.
func (s *server) each(names []string, act func(name string) (string, error)) control.Answer {
	a := control.Answer{OK: true}
	for _, name := range names {
		done, err := act(name)
		r := control.Result{Worker: name, Done: done}
		if err != nil {
			r.Error = strings.TrimPrefix(err.Error(), "fleet: ")
			a.OK = false
			if a.Error == "" {
				a.Error = name + ": " + r.Error
			}
			// The kind of a worker was checked first; what fails now failed doing it.
			a.Usage = a.Usage || errors.Is(err, fleet.ErrWrongKind) || errors.Is(err, fleet.ErrUnknownWorker)
		}
		a.Results = append(a.Results, r)
	}
	return a
}

// reloadNow has the reload loop reload the file, as on SIGHUP, and answers what changed.
func (s *server) reloadNow(ctx context.Context) control.Answer {
	r := make(chan reloadResult, 1)
	select {
	case s.reloadReqs <- r:
	case <-ctx.Done():
		return control.Failf("serve is stopping")
	}
	var res reloadResult
	select {
	case res = <-r:
	case <-ctx.Done():
		return control.Failf("serve is stopping (the reload goes on)")
	}
	if res.Err != nil {
		return control.Failf("%s", strings.TrimPrefix(res.Err.Error(), "config: "))
	}
	return control.Answer{OK: true, Reload: &control.Reload{Started: res.Started, Stopped: res.Stopped,
		Restarted: res.Restarted, Unchanged: res.Unchanged}}
}

// logs sends the last lines of w's log file and, to follow it, its lines as they are written.
func logs(ctx context.Context, w config.Worker, req control.Request, line func(string) error) control.Answer {
	n := control.DefaultLines
	if req.Lines != nil {
		n = *req.Lines
	}
	ls, pos, err := worklog.Tail(w.Log, w.LogKeep, n)
	if err != nil {
		if n < 0 || n > worklog.MaxTail {
			return control.Usagef("logs: %d lines: want 0 to %d", n, worklog.MaxTail)
		}
		return control.Failf("%s: %v", w.Name, err)
	}
	for _, l := range ls {
		if err := line(l); err != nil {
			return control.Failf("%v", err)
		}
	}
	if req.Follow {
		if err := worklog.Follow(ctx, w.Log, pos, line); err != nil && ctx.Err() == nil {
			return control.Failf("%s: %v", w.Name, err)
		}
	}
	return control.Answer{OK: true}
}
