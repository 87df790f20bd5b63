package config

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/shmmon/shmmon/internal/field"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
)

// parser resolves the decoded TOML of one file and collects every problem it finds.
type parser struct {
	path string
	pos  positions
	errs []*Error
}

// table is one TOML table being read: where its keys are in the text, how messages name
// them, and which keys it accepts.
type table struct {
	path  []string // position path: {"defaults"} or {"worker", "#2"} (0-based)
	label string   // "defaults", `worker "db"`, or "worker #3" (1-based) before a valid name
	where where    // inWorker or inDefaults; 0 for the tables of serve itself
}

// line returns the line of key in t, or of t's header when the key is not found.
func (p *parser) line(t table, key ...string) int {
	return p.pos.line(append(slices.Clone(t.path), key...)...)
}

// add records a problem. err's text is the message; what it wraps becomes [Error.Err].
func (p *parser) add(line int, key string, err error) {
	p.errs = append(p.errs, &Error{File: p.path, Line: line, Key: key, Msg: err.Error(), Err: errors.Unwrap(err)})
}

// keySet holds the keys written in a table; a key maps to true when its value was valid.
type keySet map[string]bool

func (s keySet) has(k string) bool { _, ok := s[k]; return ok }

// file resolves the whole document.
func (p *parser) file(raw map[string]any) *File {
	f := &File{Path: p.path, Defaults: builtin()}
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		if k != "defaults" && k != "worker" && k != "proctab" && k != "serve" && k != "tcp_watchdog" {
			p.add(p.pos.line(k), quoteKey(k), errors.New("unknown key (want a [defaults] table, [[worker]] tables, a [proctab], a [serve] or a [tcp_watchdog] table)"))
		}
	}
	if t, ok := p.subtable(raw, "tcp_watchdog"); ok {
		f.TCPWatchdog = p.tcpWatchdog(t)
	}
	if t, ok := p.subtable(raw, "serve"); ok {
		f.Serve = p.serve(t)
	}
	if t, ok := p.subtable(raw, "proctab"); ok {
		f.Proctab = p.proctab(t)
	}
	if t, ok := p.subtable(raw, "defaults"); ok {
		f.Defaults = p.defaults(t)
	}

	var tables []map[string]any // nil entries for elements that are not tables
	switch ws := raw["worker"].(type) {
	case nil:
	case []map[string]any:
		tables = ws
	case []any: // worker = [{...}, {...}]
		for i, e := range ws {
			m, ok := e.(map[string]any)
			if !ok {
				p.add(p.pos.line("worker"), fmt.Sprintf("worker #%d", i+1), gotWant(e, "a table"))
			}
			tables = append(tables, m)
		}
	default:
		p.add(p.pos.line("worker"), "worker", gotWant(ws, "an array of tables: write [[worker]]"))
	}

	names := make(map[string]seen)
	var indexes []int // of each of f.Workers' [[worker]] table
	for i, m := range tables {
		if m == nil {
			continue
		}
		w, ok := p.worker(i, m, f.Defaults)
		if w.Name == "" {
			continue // no valid name: reported
		}
		t := workerTable(i, w.Name)
		line := p.line(t, "name")
		if first, dup := names[w.Name]; dup {
			p.add(line, t.label+" name", fmt.Errorf("duplicate: worker #%d (line %d) has the same name (want a unique name per worker)",
				first.index+1, first.line))
			continue
		}
		names[w.Name] = seen{i, line}
		if ok && w.Heartbeat == "proctab" && f.Proctab == nil {
			// Its record is looked for in the table serve sweeps: there must be one.
			p.add(p.line(t, "heartbeat"), t.label+" heartbeat",
				errors.New(`"proctab" needs a [proctab] table in the file (the table the program registers in)`))
			ok = false
		}
		if ok {
			f.Workers = append(f.Workers, w)
			indexes = append(indexes, i)
		}
	}
	p.dependencies(f.Workers, indexes, names)
	return f
}

// seen is where a worker's name was first written: its table (0-based) and line.
type seen struct{ index, line int }

// subtable returns the table under key k of the document, ok false when there is none (or it
// is no table: reported).
func (p *parser) subtable(raw map[string]any, k string) (map[string]any, bool) {
	switch t := raw[k].(type) {
	case nil:
		return nil, false
	case map[string]any:
		return t, true
	default:
		p.add(p.pos.line(k), k, gotWant(t, "a table: ["+k+"]"))
		return nil, false
	}
}

// read reads the keys of raw, table t, into dst, whose keys are ks, and returns which were
// written. unknown is the problem of a key that is none of them.
func (p *parser) read(t table, raw map[string]any, dst keyed, ks map[string]keyDef, unknown error) keySet {
	set := make(keySet, len(raw))
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		def, known := ks[k]
		var err error
		switch {
		case !known:
			err = unknown
		case def.where&t.where == 0 && t.where != 0:
			err = errors.New("only allowed in a [[worker]] table, not in [defaults]")
		case k == "env":
			set[k] = p.env(t, dst.(*Worker), raw[k])
		default:
			err = explain(decodeKey(dst, def, raw[k]), raw[k], func() string { return rangeOf(dst, def) })
			set[k] = err == nil
		}
		if err != nil {
			p.add(p.line(t, k), t.label+" "+quoteKey(k), err)
		}
	}
	return set
}

// explain returns the message of err, an error of decodeKey for the value v as written: a
// number of the wrong TOML type is told the range its owner accepts (rangeOf), and a value
// its owner's parser refused is shown as written.
func explain(err error, v any, rangeOf func() string) error {
	var m *mismatch
	var fe *field.Error
	switch {
	case errors.As(err, &m) && m.noun != "":
		m.want = m.noun
		if r := rangeOf(); r != "" {
			m.want += ", " + r
		}
	case errors.As(err, &fe):
		return &problem{msg: shown(v) + " " + fe.Detail(""), cause: fe.Err}
	}
	return err
}

// rangeOf returns the range of the number key k of dst, as its owner states it when it
// refuses 0 ("1 to 1048576"); "" when 0 is fine.
func rangeOf(dst keyed, k keyDef) string {
	v := reflect.New(reflect.TypeOf(dst).Elem())
	v.Elem().Set(reflect.ValueOf(dst).Elem())
	v.Elem().FieldByIndex(k.index).SetZero()
	for _, e := range field.All(v.Interface().(keyed).problems()) {
		if e.Field == k.name {
			return e.Want
		}
	}
	return ""
}

// check reports errs, the problems of the values of t (from problems), at the keys written
// in t: an inherited value is reported where it was written, a value decode refused is not
// judged again, and a problem is reported once.
func (p *parser) check(t table, raw map[string]any, set keySet, errs error) {
	reported := make(map[string]bool)
	for _, e := range field.All(errs) {
		if e.Other != "" && set.has(e.Other) {
			e = e.Flip() // reported at the key written last in the file's order of precedence
		}
		if !set[e.Field] || e.Other != "" && set.has(e.Other) && !set[e.Other] || reported[e.Field] {
			continue
		}
		reported[e.Field] = true
		other := ""
		if e.Other != "" {
			v := strconv.Quote(fmt.Sprint(e.OtherValue))
			if set.has(e.Other) {
				v = shown(raw[e.Other])
			}
			other = e.Other + " (" + v + ")"
		}
		p.add(p.line(t, e.Field), t.label+" "+e.Field, &problem{msg: shown(raw[e.Field]) + " " + e.Detail(other), cause: e.Err})
	}
}

// defaults resolves the [defaults] table over the built-in defaults.
func (p *parser) defaults(raw map[string]any) Worker {
	t := table{path: []string{"defaults"}, label: "defaults", where: inDefaults}
	d := builtin()
	set := p.apply(t, raw, &d)
	p.check(t, raw, set, d.problems())
	p.resolveIDs(t, &d, set)
	return d
}

// apply reads the keys of raw, a [[worker]] or [defaults] table, into w.
func (p *parser) apply(t table, raw map[string]any, w *Worker) keySet {
	return p.read(t, raw, w, keyIndex, fmt.Errorf("unknown key (want one of: %s)", strings.Join(names(keys, t.where), ", ")))
}

// workerTable returns the table of the i-th worker (0-based), labelled by name when it has
// a valid one.
func workerTable(i int, name string) table {
	t := table{path: []string{"worker", "#" + strconv.Itoa(i)}, label: fmt.Sprintf("worker #%d", i+1), where: inWorker}
	if name != "" && shmobj.ValidatePublishName(name) == nil {
		t.label = fmt.Sprintf("worker %q", name)
	}
	return t
}

// worker resolves the i-th [[worker]] table over the defaults d. ok is false when the table
// had problems (they are recorded); w.Name is set whenever the name itself was valid.
func (p *parser) worker(i int, raw map[string]any, d Worker) (w Worker, ok bool) {
	name, _ := raw["name"].(string)
	t := workerTable(i, name)
	n := len(p.errs)
	w = d.clone()
	set := p.apply(t, raw, &w)
	header := p.line(t)
	if !set.has("name") {
		p.add(header, t.label+" name", errors.New(`missing (want a unique object name, e.g. name = "db")`))
	}

	var kinds []string // which of command, pid and pidfile are written, in file order
	for _, k := range []string{"command", "pid", "pidfile"} {
		if set.has(k) {
			kinds = append(kinds, k)
		}
	}
	slices.SortStableFunc(kinds, func(a, b string) int { return p.line(t, a) - p.line(t, b) })
	switch {
	case len(kinds) == 0:
		p.add(header, t.label, errors.New("missing command, pid or pidfile (want command = [...] for a worker serve starts, "+
			"pid or pidfile for one started elsewhere)"))
	case len(kinds) > 1:
		for _, k := range kinds[1:] {
			p.add(p.line(t, k), t.label+" "+k, fmt.Errorf("not allowed with %s (want exactly one of command, pid, pidfile)", kinds[0]))
		}
	case kinds[0] == "command":
		p.resolveIDs(t, &w, set)
		p.resolveLog(t, &w, set)
	default:
		// Watched only: supervision keys written here are mistakes; the values inherited
		// from [defaults] do not apply.
		for _, k := range keys {
			if k.where&supervised != 0 && set.has(k.name) {
				p.add(p.line(t, k.name), t.label+" "+k.name,
					fmt.Errorf("only allowed in a supervised worker, one with command (this one is watched through %s)", kinds[0]))
				set[k.name] = false // refused: its value is not judged
			}
		}
		w = watched(w)
	}
	p.check(t, raw, set, w.problems())
	return w, len(p.errs) == n
}

// resolveLog makes a relative log path written in t absolute: against the worker's dir, else
// serve's working directory (as a relative command is found).
func (p *parser) resolveLog(t table, w *Worker, set keySet) {
	if !set["log"] || w.Log == "" || filepath.IsAbs(w.Log) {
		return
	}
	if w.Dir != "" {
		w.Log = filepath.Join(w.Dir, w.Log)
		return
	}
	abs, err := filepath.Abs(w.Log)
	if err != nil {
		p.add(p.line(t, "log"), t.label+" log", fmt.Errorf("%s: %w", shorten(w.Log), err))
		return
	}
	w.Log = abs
}

// watched returns w without its supervision fields.
func watched(w Worker) Worker {
	v := reflect.ValueOf(&w).Elem()
	for _, k := range keys {
		if k.where&supervised != 0 {
			v.FieldByIndex(k.index).SetZero()
		}
	}
	w.Command, w.Uid, w.Gid = nil, nil, nil
	return w
}

// maxPid is Linux's PID_MAX_LIMIT.
const maxPid = 1 << 22

// own reads the keys of w whose rules are config's own (see [keyed]).
func (w *Worker) own(key string, v any) (x any, ok bool, err error) {
	switch key {
	case "name":
		x, err = objectName(v)
	case "command":
		x, err = command(v)
	case "dir":
		x, err = absPath(v, "/srv/app")
	case "log":
		x, err = text(v, `a path as a string, e.g. "/var/log/shmmon/db.log" (relative: to dir)`)
	case "pidfile":
		x, err = absPath(v, "/run/app.pid")
	case "user":
		x, err = idName(v, "user name or numeric uid")
	case "group":
		x, err = idName(v, "group name or numeric gid")
	case "heartbeat":
		x, err = heartbeat(v)
	case "on_stall", "on_abnormal", "on_kill", "on_restart", "on_give_up", "on_limit":
		x, err = hookCommand(v)
	case "after", "binds_to":
		x, err = workerNames(v)
	default:
		return nil, false, nil
	}
	return x, true, err
}

// problems checks w by the rules of the packages that own its values: the monitor's (its
// checks and limits), the kill's, the object's and the supervisor's (pids_max: package
// cgroup's); and config's own of its pid and hook timeout. (The resource limits' values are
// checked as they are read, by proc.ParseLimit.)
// (Those of a watched worker's zero supervision fields are not reported: not written.)
func (w Worker) problems() error {
	errs := []error{w.MonitorConfig().ValidateResolved(), proc.ValidateKillAfter(w.KillAfter), shmobj.ValidateSize(int64(w.Size)),
		w.SupervisorOptions().ValidateResolved(), w.MonitorOptions().Limits.ValidateResolved()}
	if w.Pid < 2 || w.Pid > maxPid {
		errs = append(errs, &field.Error{Pkg: "config", Field: "pid", Value: w.Pid, Problem: "is out of range",
			Want: fmt.Sprintf("the pid of a running process, 2 to %d", maxPid)})
	}
	if w.ReadyTimeout <= 0 {
		errs = append(errs, &field.Error{Pkg: "config", Field: "ready_timeout", Value: w.ReadyTimeout, Problem: "must be more than 0"})
	}
	if w.HookTimeout <= 0 {
		errs = append(errs, &field.Error{Pkg: "config", Field: "hook_timeout", Value: w.HookTimeout, Problem: "must be more than 0"})
	}
	return errors.Join(errs...)
}

// env reads the env table of a worker and reports whether it was valid.
func (p *parser) env(t table, w *Worker, v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		p.add(p.line(t, "env"), t.label+" env", gotWant(v, `a table of strings, e.g. env = { LOG_LEVEL = "debug" }`))
		return false
	}
	valid := true
	env := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		var err error
		s, isString := m[k].(string)
		switch {
		case !isString:
			err = gotWant(m[k], "a string")
		case k == "" || strings.ContainsAny(k, "=\x00"):
			err = errors.New("invalid variable name (want a name without '=' or NUL)")
		case strings.HasPrefix(k, "SHMMON_"):
			err = errors.New("reserved (shmmon sets the SHMMON_* variables itself)")
		case strings.ContainsRune(s, 0):
			err = errors.New("the value contains a NUL byte (want text)")
		default:
			env = append(env, k+"="+s)
			continue
		}
		p.add(p.line(t, "env", k), t.label+" env."+quoteKey(k), err)
		valid = false
	}
	if valid && len(env) > 0 {
		w.Env = env
	}
	return valid
}

// quoteKey returns k as written in TOML: bare when it can be, quoted otherwise.
func quoteKey(k string) string {
	if k != "" && strings.Trim(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == "" {
		return k
	}
	return strconv.Quote(k)
}
