package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

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
	where where    // inWorker or inDefaults
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
	switch t := raw["tcp_watchdog"].(type) {
	case nil:
	case map[string]any:
		f.TCPWatchdog = p.tcpWatchdog(t)
	default:
		p.add(p.pos.line("tcp_watchdog"), "tcp_watchdog", gotWant(t, "a table: [tcp_watchdog]"))
	}
	switch t := raw["serve"].(type) {
	case nil:
	case map[string]any:
		f.Serve = p.serve(t)
	default:
		p.add(p.pos.line("serve"), "serve", gotWant(t, "a table: [serve]"))
	}
	switch t := raw["proctab"].(type) {
	case nil:
	case map[string]any:
		f.Proctab = p.proctab(t)
	default:
		p.add(p.pos.line("proctab"), "proctab", gotWant(t, "a table: [proctab]"))
	}
	switch d := raw["defaults"].(type) {
	case nil:
	case map[string]any:
		f.Defaults = p.defaults(d)
	default:
		p.add(p.pos.line("defaults"), "defaults", gotWant(d, "a table: [defaults]"))
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

	type seen struct{ index, line int }
	names := make(map[string]seen)
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
		}
	}
	return f
}

// defaults resolves the [defaults] table over the built-in defaults.
func (p *parser) defaults(raw map[string]any) Worker {
	t := table{path: []string{"defaults"}, label: "defaults", where: inDefaults}
	d := builtin()
	set := p.apply(t, raw, &d)
	p.checkBackoff(t, raw, d, set)
	p.resolveIDs(t, &d, set)
	return d
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
		p.checkBackoff(t, raw, w, set)
		p.resolveIDs(t, &w, set)
	default:
		// Watched only: supervision keys written here are mistakes; the values inherited
		// from [defaults] do not apply.
		for _, k := range keys {
			if k.where&supervised != 0 && set.has(k.name) {
				p.add(p.line(t, k.name), t.label+" "+k.name,
					fmt.Errorf("only allowed in a supervised worker, one with command (this one is watched through %s)", kinds[0]))
			}
		}
		w = watched(w)
	}
	return w, len(p.errs) == n
}

// watched returns w without its supervision fields.
func watched(w Worker) Worker {
	w.Command, w.Env, w.Dir = nil, nil, ""
	w.User, w.Group, w.Uid, w.Gid = "", "", nil, nil
	w.Heartbeat, w.Restart, w.Every = "", "", 0
	w.Backoff, w.BackoffMax, w.BackoffReset = 0, 0, 0
	w.StartLimit, w.StartWindow = 0, 0
	w.OnRestart, w.OnGiveUp = "", ""
	return w
}

// apply reads the keys of raw into w and returns which keys were written.
func (p *parser) apply(t table, raw map[string]any, w *Worker) keySet {
	set := make(keySet, len(raw))
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		line, label := p.line(t, k), t.label+" "+quoteKey(k)
		def, known := keyIndex[k]
		switch {
		case !known:
			p.add(line, label, fmt.Errorf("unknown key (want one of: %s)", acceptedKeys(t.where)))
		case def.where&t.where == 0:
			p.add(line, label, errors.New("only allowed in a [[worker]] table, not in [defaults]"))
		case k == "env":
			set[k] = p.env(t, w, raw[k])
		default:
			err := def.set(w, raw[k])
			if err != nil {
				p.add(line, label, err)
			}
			set[k] = err == nil
		}
	}
	return set
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

// checkBackoff reports backoff > backoff_max on the key of t that made it so.
func (p *parser) checkBackoff(t table, raw map[string]any, w Worker, set keySet) {
	if w.Backoff <= w.BackoffMax {
		return
	}
	for _, k := range []string{"backoff", "backoff_max"} {
		if set.has(k) && !set[k] {
			return // the invalid value is reported already
		}
	}
	// Show the values as written where they were written here.
	show := func(k string, d time.Duration) string {
		if s, ok := raw[k].(string); ok {
			return strconv.Quote(s)
		}
		return strconv.Quote(d.String())
	}
	switch {
	case set.has("backoff_max"):
		p.add(p.line(t, "backoff_max"), t.label+" backoff_max",
			fmt.Errorf("%s must be at least backoff (%s)", show("backoff_max", w.BackoffMax), show("backoff", w.Backoff)))
	case set.has("backoff"):
		p.add(p.line(t, "backoff"), t.label+" backoff",
			fmt.Errorf("%s must be at most backoff_max (%s)", show("backoff", w.Backoff), show("backoff_max", w.BackoffMax)))
	}
}

// quoteKey returns k as written in TOML: bare when it can be, quoted otherwise.
func quoteKey(k string) string {
	if k != "" && strings.Trim(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == "" {
		return k
	}
	return strconv.Quote(k)
}
