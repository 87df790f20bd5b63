package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/shmmon/shmmon/hook"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/supervise"
)

const testFile = "test.toml"

// Heads of a worker table, three lines each, so that the key under test is on line 4.
const (
	supervisedHead = "[[worker]]\nname = \"w\"\ncommand = [\"bin/w\"]\n"
	watchedHead    = "[[worker]]\nname = \"w\"\npidfile = \"/run/w.pid\"\n"
	nameOnlyHead   = "[[worker]]\nname = \"w\"\n# command, pid or pidfile follows\n"
	noNameHead     = "[[worker]]\ncommand = [\"bin/w\"]\n# name follows\n"
	defaultsHead   = "[defaults]\n#\n#\n"
)

func parse(src string) (*File, error) { return Parse(testFile, []byte(src)) }

// problems returns the [*Error] values joined in err, failing the test on any other error.
func problems(t *testing.T, err error) []*Error {
	t.Helper()
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	out := make([]*Error, len(errs))
	for i, e := range errs {
		if !errors.As(e, &out[i]) {
			t.Fatalf("error %d is a %T, not a *config.Error: %v", i, e, e)
		}
	}
	return out
}

// baseWorker is what the worker of a head resolves to with nothing else written.
func baseWorker(head string) Worker {
	w := builtin()
	switch head {
	case supervisedHead, noNameHead:
		w.Name, w.Command = "w", []string{"bin/w"}
	case watchedHead:
		w = watched(w)
		w.Name, w.PidFile = "w", "/run/w.pid"
	case nameOnlyHead:
		w.Name = "w"
	}
	return w
}

// asRoot makes the root rule see euid for the rest of the test.
func asRoot(t *testing.T, euid int) {
	t.Helper()
	old := geteuid
	geteuid = func() int { return euid }
	t.Cleanup(func() { geteuid = old })
}

func TestParseEmpty(t *testing.T) {
	for _, src := range []string{"", "# nothing yet\n", "[defaults]\n", "\ufeff\n"} {
		f, err := parse(src)
		if err != nil {
			t.Fatalf("Parse(%q): %v", src, err)
		}
		if len(f.Workers) != 0 || !f.Defaults.Equal(builtin()) || f.Path != testFile {
			t.Errorf("Parse(%q) = %+v, want no workers, the built-in defaults and Path %q", src, f, testFile)
		}
	}
}

func TestBuiltinDefaults(t *testing.T) {
	f, err := parse(supervisedHead + strings.Replace(watchedHead, `"w"`, `"v"`, 1))
	if err != nil {
		t.Fatal(err)
	}
	sup, wat := f.Workers[0], f.Workers[1]
	want := Worker{
		Name: "w", Command: []string{"bin/w"},
		Restart: supervise.Always, Backoff: time.Second, BackoffMax: 30 * time.Second, BackoffReset: time.Minute,
		StartLimit: 5, StartWindow: time.Minute,
		Interval: time.Second, Stalls: 3, Signal: syscall.SIGTERM, KillAfter: 5 * time.Second,
		Size: 4096, Mode: 0o600, Cgroup: true, Hooks: Hooks{HookTimeout: 10 * time.Second},
		LogMaxSize: 10 << 20, LogKeep: 5, Deps: Deps{ReadyTimeout: time.Minute},
	}
	if !sup.Equal(want) {
		t.Errorf("supervised worker:\nhave %+v\nwant %+v", sup, want)
	}
	want = Worker{
		Name: "v", PidFile: "/run/w.pid",
		Interval: time.Second, Stalls: 3, Signal: syscall.SIGTERM, KillAfter: 5 * time.Second,
		Size: 4096, Mode: 0o600, Hooks: Hooks{HookTimeout: 10 * time.Second}, Deps: Deps{ReadyTimeout: time.Minute},
	}
	if !wat.Equal(want) {
		t.Errorf("watched worker:\nhave %+v\nwant %+v", wat, want)
	}
	if !sup.Supervised() || wat.Supervised() {
		t.Errorf("Supervised() = %v, %v; want true, false", sup.Supervised(), wat.Supervised())
	}
	if mc := sup.MonitorConfig(); mc.Interval != time.Second || mc.Stalls != 3 || mc.Grace != 0 {
		t.Errorf("MonitorConfig() = %+v", mc)
	}
}

func TestValidValues(t *testing.T) {
	tests := []struct {
		name string
		head string
		line string // on line 4
		want func(w *Worker)
	}{
		{"interval", supervisedHead, `interval = "250ms"`, func(w *Worker) { w.Interval = 250 * time.Millisecond }},
		{"interval minimum", supervisedHead, `interval = "1ms"`, func(w *Worker) { w.Interval = time.Millisecond }},
		{"interval watched", watchedHead, `interval = "2s"`, func(w *Worker) { w.Interval = 2 * time.Second }},
		{"stalls 1", supervisedHead, `stalls = 1`, func(w *Worker) { w.Stalls = 1 }},
		{"stalls max", supervisedHead, `stalls = 1048576`, func(w *Worker) { w.Stalls = 1 << 20 }},
		{"grace 0", supervisedHead, `grace = "0s"`, func(w *Worker) {}},
		{"grace", supervisedHead, `grace = "1m30s"`, func(w *Worker) { w.Grace = 90 * time.Second }},
		{"signal name", supervisedHead, `signal = "KILL"`, func(w *Worker) { w.Signal = syscall.SIGKILL }},
		{"signal SIG lower case", supervisedHead, `signal = "sighup"`, func(w *Worker) { w.Signal = syscall.SIGHUP }},
		{"signal number string", supervisedHead, `signal = "2"`, func(w *Worker) { w.Signal = syscall.SIGINT }},
		{"signal integer", watchedHead, `signal = 3`, func(w *Worker) { w.Signal = syscall.SIGQUIT }},
		{"signal 64", supervisedHead, `signal = 64`, func(w *Worker) { w.Signal = 64 }},
		{"kill_after", watchedHead, `kill_after = "100ms"`, func(w *Worker) { w.KillAfter = 100 * time.Millisecond }},
		{"size minimum", supervisedHead, `size = 16`, func(w *Worker) { w.Size = 16 }},
		{"size", watchedHead, `size = 1_048_576`, func(w *Worker) { w.Size = 1 << 20 }},
		{"mode", supervisedHead, `mode = "0660"`, func(w *Worker) { w.Mode = 0o660 }},
		{"mode without 0", watchedHead, `mode = "644"`, func(w *Worker) { w.Mode = 0o644 }},
		{"restart always", supervisedHead, `restart = "always"`, func(w *Worker) {}},
		{"restart on-failure", supervisedHead, `restart = "on-failure"`, func(w *Worker) { w.Restart = supervise.OnFailure }},
		{"restart never", supervisedHead, `restart = "never"`, func(w *Worker) { w.Restart = supervise.Never }},
		{"heartbeat none", supervisedHead, `heartbeat = "none"`, func(w *Worker) { w.Heartbeat = "none" }},
		{"every", supervisedHead, `every = "30s"`, func(w *Worker) { w.Every = 30 * time.Second }},
		{"every 0", supervisedHead, `every = "0s"`, func(w *Worker) {}},
		{"backoff", supervisedHead, `backoff = "10ms"`, func(w *Worker) { w.Backoff = 10 * time.Millisecond }},
		{"backoff equal to max", supervisedHead, `backoff = "30s"`, func(w *Worker) { w.Backoff = 30 * time.Second }},
		{"backoff_max", supervisedHead, `backoff_max = "5m"`, func(w *Worker) { w.BackoffMax = 5 * time.Minute }},
		{"backoff and backoff_max", supervisedHead, "backoff = \"2m\"\nbackoff_max = \"3m\"",
			func(w *Worker) { w.Backoff, w.BackoffMax = 2*time.Minute, 3*time.Minute }},
		{"backoff_reset", supervisedHead, `backoff_reset = "10m"`, func(w *Worker) { w.BackoffReset = 10 * time.Minute }},
		{"start_limit", supervisedHead, `start_limit = 1`, func(w *Worker) { w.StartLimit = 1 }},
		{"start_window", supervisedHead, `start_window = "1h"`, func(w *Worker) { w.StartWindow = time.Hour }},
		{"dir", supervisedHead, `dir = "/srv/w"`, func(w *Worker) { w.Dir = "/srv/w" }},
		{"env inline", supervisedHead, `env = { B = "2", A = "1=one" }`, func(w *Worker) { w.Env = []string{"A=1=one", "B=2"} }},
		{"env table", supervisedHead, "[worker.env]\nHOME = \"/home/w\"\nEMPTY = \"\"\n\"odd name\" = \"x\"",
			func(w *Worker) { w.Env = []string{"EMPTY=", "HOME=/home/w", "odd name=x"} }},
		{"env dotted", supervisedHead, `env.PATH = "/bin"`, func(w *Worker) { w.Env = []string{"PATH=/bin"} }},
		{"env empty", supervisedHead, `env = {}`, func(w *Worker) {}},
		{"command", nameOnlyHead, `command = ["prog", "-v", ""]`, func(w *Worker) { w.Command = []string{"prog", "-v", ""} }},
		{"pid", nameOnlyHead, `pid = 4242`, func(w *Worker) { *w = watched(*w); w.Pid = 4242 }},
		{"pid max", nameOnlyHead, `pid = 4194304`, func(w *Worker) { *w = watched(*w); w.Pid = 1 << 22 }},
		{"pidfile", nameOnlyHead, `pidfile = "/run/x.pid"`, func(w *Worker) { *w = watched(*w); w.PidFile = "/run/x.pid" }},
		{"name", noNameHead, `name = "a.b-c_d"`, func(w *Worker) { w.Name = "a.b-c_d" }},
		{"name longest", noNameHead, `name = "` + strings.Repeat("n", 255) + `"`, func(w *Worker) { w.Name = strings.Repeat("n", 255) }},
		{"name quoted key", noNameHead, `"name" = "q"`, func(w *Worker) { w.Name = "q" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := parse(tt.head + tt.line + "\n")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := baseWorker(tt.head)
			tt.want(&want)
			if len(f.Workers) != 1 || !f.Workers[0].Equal(want) {
				t.Fatalf("have %+v\nwant %+v", f.Workers, want)
			}
		})
	}
}

// invalidTests are invalid values of worker keys, each written on line 4 after its head.
var invalidTests = []struct {
	name string
	head string
	line string // on line 4
	key  string // the key as messages name it, after the table's label
	msg  string // in the message
}{
	{"interval 0", supervisedHead, `interval = "0s"`, "interval", `"0s" must be at least 1ms`},
	{"interval below 1ms", supervisedHead, `interval = "999us"`, "interval", `"999us" must be at least 1ms`},
	{"interval negative", watchedHead, `interval = "-1s"`, "interval", `"-1s" must be at least 1ms`},
	{"interval no unit", supervisedHead, `interval = "1"`, "interval", `"1" is not a duration (want a duration string such as "500ms"`},
	{"interval space", supervisedHead, `interval = "1 s"`, "interval", `"1 s" is not a duration`},
	{"interval empty", supervisedHead, `interval = ""`, "interval", `"" is not a duration`},
	{"interval integer", supervisedHead, `interval = 1`, "interval", `got integer 1 (want a duration string`},
	{"interval whose grace overflows", supervisedHead, `interval = "300000h"`, "interval", `"300000h" must be at most 256204h`},
	{"stalls 0", supervisedHead, `stalls = 0`, "stalls", `0 is out of range (want 1 to 1048576)`},
	{"stalls negative", supervisedHead, `stalls = -3`, "stalls", `-3 is out of range (want 1 to 1048576)`},
	{"stalls too many", watchedHead, `stalls = 1048577`, "stalls", `1048577 is out of range`},
	{"stalls string", supervisedHead, `stalls = "3"`, "stalls", `got string "3" (want an integer, 1 to 1048576)`},
	{"stalls float", supervisedHead, `stalls = 3.0`, "stalls", `got float 3 (want an integer`},
	{"grace negative", supervisedHead, `grace = "-1s"`, "grace", `"-1s" must not be negative`},
	{"grace word", supervisedHead, `grace = "soon"`, "grace", `"soon" is not a duration`},
	{"signal unknown", supervisedHead, `signal = "FOO"`, "signal", `"FOO" is not a signal (want a signal name such as "TERM"`},
	{"signal SIG", supervisedHead, `signal = "SIG"`, "signal", `"SIG" is not a signal`},
	{"signal 0 string", supervisedHead, `signal = "0"`, "signal", `"0" is not a signal`},
	{"signal 0", watchedHead, `signal = 0`, "signal", `0 is not a signal`},
	{"signal 65", supervisedHead, `signal = 65`, "signal", `65 is not a signal (want a signal name such as "TERM", "INT", "HUP", "QUIT", "USR1", or a number 1-64)`},
	{"signal bool", supervisedHead, `signal = true`, "signal", `got boolean true (want a signal name`},
	{"kill_after 0", supervisedHead, `kill_after = "0s"`, "kill_after", `"0s" must be more than 0`},
	{"kill_after negative", watchedHead, `kill_after = "-5s"`, "kill_after", `"-5s" must be more than 0`},
	{"kill_after integer", supervisedHead, `kill_after = 5`, "kill_after", `got integer 5`},
	{"size 15", supervisedHead, `size = 15`, "size", `15 is too small (want at least 16 bytes)`},
	{"size negative", watchedHead, `size = -4096`, "size", `-4096 is too small`},
	{"size string", supervisedHead, `size = "4096"`, "size", `got string "4096" (want an integer number of bytes, at least 16)`},
	{"size over the host's memory", supervisedHead, `size = 1_000_000_000_000_000`, "size", `1000000000000000 is more than this host's memory`},
	{"mode 0", supervisedHead, `mode = "0"`, "mode", `"0" is not a permission mode (want an octal string from "0001" to "0777"`},
	{"mode not octal", supervisedHead, `mode = "0800"`, "mode", `"0800" is not a permission mode`},
	{"mode too big", watchedHead, `mode = "01777"`, "mode", `"01777" is not a permission mode`},
	{"mode symbolic", supervisedHead, `mode = "rw-------"`, "mode", `"rw-------" is not a permission mode`},
	{"mode integer", supervisedHead, `mode = 0o600`, "mode", `got integer 384 (want an octal string`},
	{"restart unknown", supervisedHead, `restart = "sometimes"`, "restart", `"sometimes" is not a restart policy (want "always", "on-failure" or "never")`},
	{"restart capitalised", supervisedHead, `restart = "Always"`, "restart", `"Always" is not a restart policy`},
	{"restart bool", supervisedHead, `restart = false`, "restart", `got boolean false (want "always", "on-failure" or "never")`},
	{"heartbeat unknown", supervisedHead, `heartbeat = "tcp"`, "heartbeat", `"tcp" is not a kind of heartbeat (want "none", "proctab" or "shm")`},
	{"heartbeat integer", supervisedHead, `heartbeat = 1`, "heartbeat", `got integer 1 (want "none", "proctab" or "shm")`},
	{"every below 1ms", supervisedHead, `every = "10us"`, "every", `"10us" must be 0 (a resident worker) or at least 1ms`},
	{"every negative", supervisedHead, `every = "-1m"`, "every", `"-1m" must be 0`},
	{"backoff 0", supervisedHead, `backoff = "0s"`, "backoff", `"0s" must be at least 1ms`},
	{"backoff over max", supervisedHead, `backoff = "1m"`, "backoff", `"1m" must be at most backoff_max ("30s")`},
	{"backoff_max 0", supervisedHead, `backoff_max = "0s"`, "backoff_max", `"0s" must be at least 1ms`},
	{"backoff_max under backoff", supervisedHead, `backoff_max = "500ms"`, "backoff_max", `"500ms" must be at least backoff ("1s")`},
	{"backoff_reset 0", supervisedHead, `backoff_reset = "0s"`, "backoff_reset", `"0s" must be more than 0`},
	{"start_limit 0", supervisedHead, `start_limit = 0`, "start_limit", `0 is out of range (want 1 to 1048576)`},
	{"start_limit float", supervisedHead, `start_limit = 1.5`, "start_limit", `got float 1.5`},
	{"start_window 0", supervisedHead, `start_window = "0s"`, "start_window", `"0s" must be more than 0`},
	{"dir relative", supervisedHead, `dir = "srv/w"`, "dir", `"srv/w" is not absolute (want an absolute path, e.g. "/srv/app")`},
	{"dir empty", supervisedHead, `dir = ""`, "dir", `"" is not absolute`},
	{"dir NUL", supervisedHead, `dir = "/a\u0000b"`, "dir", `contains a NUL byte`},
	{"dir array", supervisedHead, `dir = ["/a"]`, "dir", `got an array (want an absolute path`},
	{"pidfile relative", nameOnlyHead, `pidfile = "run/w.pid"`, "pidfile", `"run/w.pid" is not absolute`},
	{"pidfile integer", nameOnlyHead, `pidfile = 12`, "pidfile", `got integer 12 (want an absolute path, e.g. "/run/app.pid")`},
	{"pid 1", nameOnlyHead, `pid = 1`, "pid", `1 is out of range (want the pid of a running process, 2 to 4194304)`},
	{"pid 0", nameOnlyHead, `pid = 0`, "pid", `0 is out of range`},
	{"pid negative", nameOnlyHead, `pid = -5`, "pid", `-5 is out of range`},
	{"pid too big", nameOnlyHead, `pid = 4194305`, "pid", `4194305 is out of range`},
	{"pid string", nameOnlyHead, `pid = "123"`, "pid", `got string "123" (want an integer, the pid of a running process`},
	{"command empty", nameOnlyHead, `command = []`, "command", `empty (want an array of strings, the program first`},
	{"command string", nameOnlyHead, `command = "bin/w -v"`, "command", `got string "bin/w -v" (want an array of strings`},
	{"command integer element", nameOnlyHead, `command = ["bin/w", 5]`, "command", `element 2: got integer 5 (want a string)`},
	{"command empty program", nameOnlyHead, `command = ["", "-v"]`, "command", `the program is "" (want its path or name first`},
	{"command NUL", nameOnlyHead, `command = ["bin/w", "a\u0000"]`, "command", `element 2 contains a NUL byte`},
	{"name empty", noNameHead, `name = ""`, "name", `"" is not a valid object name (want 1-255 bytes, no '/', NUL or control characters, not "." or "..")`},
	{"name slash", noNameHead, `name = "a/b"`, "name", `"a/b" is not a valid object name`},
	{"name dot", noNameHead, `name = "."`, "name", `"." is not a valid object name`},
	{"name dotdot", noNameHead, `name = ".."`, "name", `".." is not a valid object name`},
	{"name NUL", noNameHead, `name = "a\u0000"`, "name", `is not a valid object name`},
	{"name newline", noNameHead, `name = "a\nb"`, "name", `"a\nb" is not a valid object name`},
	{"name escape", noNameHead, `name = "\u001b[2J"`, "name", `"\x1b[2J" is not a valid object name`},
	{"name too long", noNameHead, `name = "` + strings.Repeat("n", 256) + `"`, "name", `"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"... is not a valid object name`},
	{"name integer", noNameHead, `name = 5`, "name", `got integer 5 (want a string, e.g. name = "db")`},
	{"env string", supervisedHead, `env = "A=1"`, "env", `got string "A=1" (want a table of strings, e.g. env = { LOG_LEVEL = "debug" })`},
	{"env integer value", supervisedHead, `env = { A = 1 }`, "env.A", `got integer 1 (want a string)`},
	{"env empty name", supervisedHead, `env = { "" = "x" }`, `env.""`, `invalid variable name (want a name without '=' or NUL)`},
	{"env name with =", supervisedHead, `env = { "A=B" = "x" }`, `env."A=B"`, `invalid variable name`},
	{"env reserved", supervisedHead, `env.SHMMON_NAME = "x"`, "env.SHMMON_NAME", `reserved (shmmon sets the SHMMON_* variables itself)`},
	{"env NUL value", supervisedHead, `env.A = "\u0000"`, "env.A", `the value contains a NUL byte`},
	{"unknown key", supervisedHead, `intervall = "1s"`, "intervall", `unknown key (want one of: name, command, env, dir, log, log_max_size, log_keep, user, group, pid, pidfile, heartbeat, restart, every, interval, stalls, grace, signal, kill_after, size, mode, backoff, backoff_max, backoff_reset, start_limit, start_window, memory_max, cpu_max, pids_max, limit_nofile, limit_core, limit_nproc, cgroup, after, binds_to, ready_timeout, on_stall, on_abnormal, on_kill, on_restart, on_give_up, on_limit, hook_timeout)`},
	{"unknown quoted key", supervisedHead, `"my key" = 1`, `"my key"`, `unknown key`},
	{"unknown table", supervisedHead, "[worker.extra]\nx = 1", "extra", `unknown key`},
	{"unknown key in env's place", supervisedHead, `environment = { A = "1" }`, "environment", `unknown key`},
	{"pid with command", supervisedHead, `pid = 42`, "pid", `not allowed with command (want exactly one of command, pid, pidfile)`},
	{"command with pidfile", watchedHead, `command = ["bin/w"]`, "command", `not allowed with pidfile (want exactly one of command, pid, pidfile)`},
	{"pid with pidfile", watchedHead, `pid = 42`, "pid", `not allowed with pidfile`},
	{"watched restart", watchedHead, `restart = "never"`, "restart", `only allowed in a supervised worker, one with command (this one is watched through pidfile)`},
	{"watched every", watchedHead, `every = "1m"`, "every", `only allowed in a supervised worker`},
	{"watched env", watchedHead, `env = { A = "1" }`, "env", `only allowed in a supervised worker`},
	{"watched dir", watchedHead, `dir = "/"`, "dir", `only allowed in a supervised worker`},
	{"watched backoff", watchedHead, `backoff = "1s"`, "backoff", `only allowed in a supervised worker`},
	{"watched backoff_max", watchedHead, `backoff_max = "1m"`, "backoff_max", `only allowed in a supervised worker`},
	{"watched backoff_reset", watchedHead, `backoff_reset = "1m"`, "backoff_reset", `only allowed in a supervised worker`},
	{"watched start_limit", watchedHead, `start_limit = 3`, "start_limit", `only allowed in a supervised worker`},
	{"watched start_window", watchedHead, `start_window = "1m"`, "start_window", `only allowed in a supervised worker`},
	{"watched by pid", nameOnlyHead, "restart = \"always\"\npid = 77", "restart", `(this one is watched through pid)`},
}

func TestInvalidValues(t *testing.T) {
	for _, tt := range invalidTests {
		t.Run(tt.name, func(t *testing.T) {
			label := `worker "w"`
			if tt.head == noNameHead {
				label = "worker #1"
			}
			checkOneProblem(t, tt.head+tt.line+"\n", tt.line, label+" "+tt.key, tt.msg)
		})
	}
}

// TestHeartbeatProctabNeedsTable: a worker whose heartbeat is its record in the process table
// needs the [proctab] table serve sweeps, whether it names the kind or inherits it.
func TestHeartbeatProctabNeedsTable(t *testing.T) {
	const msg = `"proctab" needs a [proctab] table in the file`
	checkOneProblem(t, supervisedHead+"heartbeat = \"proctab\"\n", `heartbeat = "proctab"`, `worker "w" heartbeat`, msg)
	if _, err := parse("[defaults]\nheartbeat = \"proctab\"\n" + supervisedHead); err == nil || !strings.Contains(err.Error(), msg) {
		t.Errorf("inherited from [defaults] without [proctab]: got %v, want %q", err, msg)
	}
	f, err := parse("[proctab]\n" + supervisedHead + "heartbeat = \"proctab\"\n")
	if err != nil || len(f.Workers) != 1 || f.Workers[0].Heartbeat != "proctab" {
		t.Errorf("with [proctab]: got %+v, %v", f, err)
	}
}

// TestInvalidDefaults writes the invalid values of the keys [defaults] accepts in [defaults].
func TestInvalidDefaults(t *testing.T) {
	for _, tt := range invalidTests {
		k := keyIndex[strings.SplitN(tt.line, " ", 2)[0]]
		if tt.head != supervisedHead || k.where&inDefaults == 0 {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			checkOneProblem(t, defaultsHead+tt.line+"\n", tt.line, "defaults "+tt.key, tt.msg)
		})
	}
	for _, k := range []string{"name", "command", "env", "dir", "pid", "pidfile"} {
		t.Run(k, func(t *testing.T) {
			line := k + ` = "x"`
			checkOneProblem(t, defaultsHead+line+"\n", line, "defaults "+k, "only allowed in a [[worker]] table, not in [defaults]")
		})
	}
	t.Run("unknown", func(t *testing.T) {
		checkOneProblem(t, defaultsHead+"intervall = 1\n", "intervall = 1", "defaults intervall",
			"unknown key (want one of: log_max_size, log_keep, user, group, heartbeat, restart, every, interval, stalls, grace, signal, kill_after, size, mode, "+
				"backoff, backoff_max, backoff_reset, start_limit, start_window, memory_max, cpu_max, pids_max, limit_nofile, "+
				"limit_core, limit_nproc, cgroup, ready_timeout, on_stall, on_abnormal, on_kill, on_restart, on_give_up, on_limit, hook_timeout)")
	})
}

// checkOneProblem parses src and checks that it has exactly one problem, on line 4, naming
// key, with msg in its message.
func checkOneProblem(t *testing.T, src, line, key, msg string) {
	t.Helper()
	f, err := parse(src)
	if err == nil {
		t.Fatalf("%s: no error; resolved to %+v", line, f.Workers)
	}
	if f != nil {
		t.Errorf("Parse returned a file with its error")
	}
	ps := problems(t, err)
	if len(ps) != 1 {
		t.Fatalf("%s: %d problems, want 1:\n%v", line, len(ps), err)
	}
	e := ps[0]
	prefix := fmt.Sprintf("%s:4: %s: ", testFile, key)
	if e.File != testFile || e.Line != 4 || e.Key != key || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(e.Msg, msg) {
		t.Errorf("%s:\nhave %v\nwant %s...%s...", line, err, prefix, msg)
	}
}

func TestDefaultsAppliedAndOverridden(t *testing.T) {
	const src = `
[defaults]
interval = "250ms"
stalls = 5
grace = "10s"
signal = "INT"
kill_after = "1s"
size = 1024
mode = "0640"
restart = "never"
every = "1m"
backoff = "2s"
backoff_max = "4s"
backoff_reset = "8s"
start_limit = 9
start_window = "16s"

[[worker]]
name = "inherits"
command = ["a"]

[[worker]]
name = "overrides"
command = ["b"]
interval = "2s"
stalls = 2
grace = "0s"
signal = 15
kill_after = "3s"
size = 4096
mode = "0600"
restart = "always"
every = "0s"
backoff = "1s"
backoff_max = "1s"
backoff_reset = "1s"
start_limit = 1
start_window = "1s"

[[worker]]
name = "watched"
pid = 1234
`
	f, err := parse(src)
	if err != nil {
		t.Fatal(err)
	}
	d := Worker{
		Restart: supervise.Never, Every: time.Minute, Backoff: 2 * time.Second, BackoffMax: 4 * time.Second,
		BackoffReset: 8 * time.Second, StartLimit: 9, StartWindow: 16 * time.Second,
		Interval: 250 * time.Millisecond, Stalls: 5, Grace: 10 * time.Second, Signal: syscall.SIGINT,
		KillAfter: time.Second, Size: 1024, Mode: 0o640, Cgroup: true, Hooks: Hooks{HookTimeout: hook.DefaultTimeout},
		LogMaxSize: 10 << 20, LogKeep: 5, Deps: Deps{ReadyTimeout: DefaultReadyTimeout},
	}
	if !f.Defaults.Equal(d) {
		t.Errorf("Defaults:\nhave %+v\nwant %+v", f.Defaults, d)
	}
	inherits := d
	inherits.Name, inherits.Command = "inherits", []string{"a"}
	overrides := builtin()
	overrides.Name, overrides.Command = "overrides", []string{"b"}
	overrides.Interval, overrides.Stalls, overrides.KillAfter = 2*time.Second, 2, 3*time.Second
	overrides.BackoffMax, overrides.BackoffReset, overrides.StartLimit, overrides.StartWindow = time.Second, time.Second, 1, time.Second
	wat := watched(d)
	wat.Name, wat.Pid = "watched", 1234
	want := []Worker{inherits, overrides, wat}
	if len(f.Workers) != len(want) {
		t.Fatalf("%d workers, want %d", len(f.Workers), len(want))
	}
	for i, w := range want {
		if !f.Workers[i].Equal(w) {
			t.Errorf("worker %d:\nhave %+v\nwant %+v", i, f.Workers[i], w)
		}
	}
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // the problems, in order
	}{
		{"missing name", "[[worker]]\ncommand = [\"a\"]\n", []string{
			`test.toml:1: worker #1 name: missing (want a unique object name, e.g. name = "db")`,
		}},
		{"missing command pid pidfile", "[[worker]]\nname = \"a\"\nstalls = 2\n", []string{
			`test.toml:1: worker "a": missing command, pid or pidfile (want command = [...] for a worker serve starts, pid or pidfile for one started elsewhere)`,
		}},
		{"empty worker", "[defaults]\n\n[[worker]]\n", []string{
			`test.toml:3: worker #1 name: missing`,
			`test.toml:3: worker #1: missing command, pid or pidfile`,
		}},
		{"duplicate names", "[[worker]]\nname = \"a\"\npid = 10\n\n[[worker]]\nname = \"b\"\npid = 11\n\n[[worker]]\n\nname = \"a\"\npid = 12\n" +
			"[[worker]]\nname = \"a\"\ncommand = [\"x\"]\n", []string{
			`test.toml:11: worker "a" name: duplicate: worker #1 (line 2) has the same name (want a unique name per worker)`,
			`test.toml:14: worker "a" name: duplicate: worker #1 (line 2)`,
		}},
		{"all three", "[[worker]]\nname = \"a\"\npidfile = \"/p\"\ncommand = [\"x\"]\npid = 5\n", []string{
			`test.toml:4: worker "a" command: not allowed with pidfile (want exactly one of command, pid, pidfile)`,
			`test.toml:5: worker "a" pid: not allowed with pidfile`,
		}},
		{"unknown top-level keys", "foo = 1\n[bar]\nx = 1\n[[baz]]\n[[worker]]\nname = \"a\"\npid = 5\n", []string{
			`test.toml:1: foo: unknown key (want a [defaults] table, [[worker]] tables, a [proctab], a [serve] or a [tcp_watchdog] table)`,
			`test.toml:2: bar: unknown key`,
			`test.toml:4: baz: unknown key`,
		}},
		{"unknown in defaults subtable", "[defaults.x]\ny = 1\n", []string{
			`test.toml:1: defaults x: unknown key`,
		}},
		{"defaults not a table", "defaults = 5\n", []string{
			`test.toml:1: defaults: got integer 5 (want a table: [defaults])`,
		}},
		{"worker not an array", "[worker]\nname = \"a\"\n", []string{
			`test.toml:1: worker: got a table (want an array of tables: write [[worker]])`,
		}},
		{"worker array of non-tables", "worker = [1]\n", []string{
			`test.toml:1: worker #1: got integer 1 (want a table)`,
		}},
		{"inline workers", "worker = [\n  { name = \"a\", pid = 5 },\n  { name = \"a\", pid = 6, stalls = 0 },\n]\n", []string{
			// Inline tables have no lines of their own: the worker key's line is used.
			`test.toml:1: worker "a" stalls: 0 is out of range`,
			`test.toml:1: worker "a" name: duplicate: worker #1 (line 1)`,
		}},
		{"backoff in defaults", "[defaults]\nbackoff = \"2s\"\nbackoff_max = \"1s\"\n", []string{
			`test.toml:3: defaults backoff_max: "1s" must be at least backoff ("2s")`,
		}},
		{"backoff against defaults", "[defaults]\nbackoff_max = \"2s\"\n[[worker]]\nname = \"a\"\ncommand = [\"x\"]\nbackoff = \"3s\"\n", []string{
			`test.toml:6: worker "a" backoff: "3s" must be at most backoff_max ("2s")`,
		}},
		{"invalid backoff not compared", "[[worker]]\nname = \"a\"\ncommand = [\"x\"]\nbackoff = \"1h\"\nbackoff_max = \"1x\"\n", []string{
			`test.toml:5: worker "a" backoff_max: "1x" is not a duration`,
		}},
		{"supervision defaults ignored when watched", "[defaults]\nrestart = \"never\"\nbackoff = \"1m\"\n", []string{
			`test.toml:3: defaults backoff: "1m" must be at most backoff_max ("30s")`,
		}},
		{"many problems sorted by line", `
[[worker]]
name = "b"
stalls = 0
pid = 1

[defaults]
interval = "fast"
bogus = 1
`, []string{
			`test.toml:4: worker "b" stalls: 0 is out of range (want 1 to 1048576)`,
			`test.toml:5: worker "b" pid: 1 is out of range`,
			`test.toml:8: defaults interval: "fast" is not a duration`,
			`test.toml:9: defaults bogus: unknown key`,
		}},
		{"tricky text", `
[[worker]]
name = "a"   # a comment with stalls = 0
command = [
  "sh", "-c",
  """
stalls = 0
[[worker]]
""",
  'x = 1',
]
"stalls" = 0
`, []string{
			`test.toml:12: worker "a" stalls: 0 is out of range`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(tt.src)
			ps := problems(t, err)
			if len(ps) != len(tt.want) {
				t.Fatalf("%d problems, want %d:\n%v", len(ps), len(tt.want), err)
			}
			for i, p := range ps {
				if !strings.HasPrefix(p.Error(), tt.want[i]) {
					t.Errorf("problem %d:\nhave %s\nwant %s...", i, p, tt.want[i])
				}
			}
		})
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		line int
	}{
		{"unterminated array", "[[worker]]\nname = \"a\"\ncommand = [\"x\"\n", 3},
		{"duplicate key", "[[worker]]\nname = \"a\"\nname = \"b\"\n", 3},
		{"table then array", "[worker]\nname = \"a\"\n[[worker]]\n", 3},
		{"bare value", "\n\n\ninterval = 1s\n", 4},
		{"NUL byte", "\x00\x00", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(tt.src)
			ps := problems(t, err)
			if len(ps) != 1 {
				t.Fatalf("%d problems, want 1: %v", len(ps), err)
			}
			prefix := fmt.Sprintf("%s:%d: invalid TOML: ", testFile, tt.line)
			if e := ps[0]; e.Line != tt.line || e.Key != "" || !strings.HasPrefix(e.Error(), prefix) {
				t.Errorf("have %v\nwant %s...", e, prefix)
			}
			var pe toml.ParseError
			if !errors.As(err, &pe) {
				t.Errorf("errors.As(err, *toml.ParseError) = false")
			}
		})
	}
}

func TestUserGroup(t *testing.T) {
	if _, err := user.LookupId("54321"); err == nil {
		t.Skip("uid 54321 exists here; the cases below need an unknown one")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	ptr := func(n uint32) *uint32 { return &n }
	nobodyUID, nobodyGID := ptr(uint32(atoi(t, nobody.Uid))), ptr(uint32(atoi(t, nobody.Gid)))

	t.Run("as root", func(t *testing.T) {
		asRoot(t, 0)
		tests := []struct {
			name     string
			defaults string
			worker   string
			uid, gid *uint32
			problem  string // "" when valid
		}{
			{"user by name", "", `user = "root"`, ptr(0), ptr(0), ""},
			{"user by uid", "", `user = "0"`, ptr(0), ptr(0), ""},
			{"user nobody", "", `user = "nobody"`, nobodyUID, nobodyGID, ""},
			{"group alone", "", `group = "root"`, nil, ptr(0), ""},
			{"user and group", "", "user = \"nobody\"\ngroup = \"0\"", nobodyUID, ptr(0), ""},
			{"unknown numeric ids", "", "user = \"54321\"\ngroup = \"54322\"", ptr(54321), ptr(54322), ""},
			{"defaults inherited", "user = \"nobody\"", "", nobodyUID, nobodyGID, ""},
			{"defaults group kept", "group = \"root\"", `user = "nobody"`, nobodyUID, ptr(0), ""},
			{"defaults user kept", "user = \"nobody\"", `group = "0"`, nobodyUID, ptr(0), ""},
			{"unknown user", "", `user = "no-such-user-shmmon"`, nil, nil,
				`test.toml:6: worker "w" user: "no-such-user-shmmon": no such user (want a user name from the user database, or a numeric uid)`},
			{"unknown group", "", `group = "no-such-group-shmmon"`, nil, nil,
				`test.toml:6: worker "w" group: "no-such-group-shmmon": no such group (want a group name from the group database, or a numeric gid)`},
			{"numeric user without group", "", `user = "54321"`, nil, nil,
				`test.toml:6: worker "w" user: "54321" has no entry in the user database, so its group is unknown (want a group key too)`},
			{"empty user", "", `user = ""`, nil, nil,
				`test.toml:6: worker "w" user: got an empty string (want a user name or numeric uid as a string, e.g. "www-data")`},
			{"integer group", "", `group = 0`, nil, nil,
				`test.toml:6: worker "w" group: got integer 0 (want a group name or numeric gid as a string`},
			{"unknown user in defaults", `user = "no-such-user-shmmon"`, "", nil, nil,
				`test.toml:2: defaults user: "no-such-user-shmmon": no such user`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				f, err := parse("[defaults]\n" + tt.defaults + "\n" + supervisedHead + tt.worker + "\n")
				if tt.problem != "" {
					if err == nil || !strings.HasPrefix(err.Error(), tt.problem) || strings.Contains(err.Error(), "\n") {
						t.Fatalf("have %v\nwant %s...", err, tt.problem)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				w := f.Workers[0]
				if !equalID(w.Uid, tt.uid) || !equalID(w.Gid, tt.gid) {
					t.Errorf("uid %v gid %v, want %v %v", show(w.Uid), show(w.Gid), show(tt.uid), show(tt.gid))
				}
			})
		}
	})

	t.Run("watched ignores defaults", func(t *testing.T) {
		asRoot(t, 0)
		f, err := parse("[defaults]\nuser = \"nobody\"\n" + watchedHead)
		if err != nil {
			t.Fatal(err)
		}
		if w := f.Workers[0]; w.User != "" || w.Uid != nil || w.Gid != nil {
			t.Errorf("watched worker has user %q uid %v gid %v, want none", w.User, show(w.Uid), show(w.Gid))
		}
	})

	t.Run("not root", func(t *testing.T) {
		asRoot(t, 1000)
		_, err := parse("[defaults]\ngroup = \"root\"\n" + supervisedHead + "user = \"root\"\n")
		want := "test.toml:2: defaults group: only allowed when shmmon runs as root (it runs as uid 1000; want no group key)\n" +
			"test.toml:6: worker \"w\" user: only allowed when shmmon runs as root (it runs as uid 1000; want no user key)"
		if err == nil || err.Error() != want {
			t.Errorf("have %v\nwant %s", err, want)
		}
	})
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func equalID(a, b *uint32) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func show(p *uint32) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

func TestWorkerEqual(t *testing.T) {
	uid, gid := uint32(1), uint32(2)
	base := Worker{
		Name: "w", Command: []string{"a", "b"}, Env: []string{"A=1"}, Dir: "/d", User: "u", Group: "g",
		Uid: &uid, Gid: &gid, Pid: 5, PidFile: "/p", Restart: supervise.Never, Every: 1, Backoff: 2,
		BackoffMax: 3, BackoffReset: 4, StartLimit: 5, StartWindow: 6, Interval: 7, Stalls: 8, Grace: 9,
		Signal: 10, KillAfter: 11, Size: 12, Mode: 0o600,
		MemoryMax: 13, CPUMax: 14, PidsMax: 15, LimitNofile: &proc.Limit{Soft: 16, Hard: 17},
		LimitCore: &proc.Limit{}, LimitNproc: &proc.Limit{Soft: 18, Hard: 19},
		Deps: Deps{After: []string{"a"}, BindsTo: []string{"b"}, ReadyTimeout: 20},
	}
	if !base.Equal(base) || !base.Equal(base.clone()) {
		t.Fatal("a worker is not Equal to itself or its clone")
	}
	if !builtin().Equal(builtin()) || !(Worker{}).Equal(Worker{}) {
		t.Fatal("zero or built-in workers are not Equal")
	}
	for _, field := range reflect.VisibleFields(reflect.TypeFor[Worker]()) {
		if field.Anonymous {
			continue // a group of fields (Hooks): each of them is tried
		}
		t.Run(field.Name, func(t *testing.T) {
			o := base.clone()
			f := reflect.ValueOf(&o).Elem().FieldByIndex(field.Index)
			switch f.Kind() {
			case reflect.String:
				f.SetString(f.String() + "x")
			case reflect.Slice:
				f.Set(reflect.Append(f, reflect.ValueOf("x")))
			case reflect.Pointer:
				p := reflect.New(f.Type().Elem()) // another value: 99 (in its first field)
				v := p.Elem()
				if v.Kind() == reflect.Struct {
					v = v.Field(0)
				}
				v.Set(reflect.ValueOf(99).Convert(v.Type()))
				f.Set(p)
			case reflect.Bool:
				f.SetBool(!f.Bool())
			case reflect.Int, reflect.Int64:
				f.SetInt(f.Int() + 1)
			case reflect.Uint32:
				f.SetUint(f.Uint() + 1)
			default:
				t.Fatalf("field %s is a %s: teach this test (and Equal) about it", field.Name, f.Kind())
			}
			if base.Equal(o) || o.Equal(base) {
				t.Errorf("Equal is true with a different %s", field.Name)
			}
			if f.Kind() == reflect.Pointer || f.Kind() == reflect.Slice {
				f.SetZero()
				if base.Equal(o) || o.Equal(base) {
					t.Errorf("Equal is true with %s unset", field.Name)
				}
			}
		})
	}
}

func TestExampleFile(t *testing.T) {
	const path = "../examples/shmmon.toml"
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Path != path || !f.Defaults.Equal(builtin()) {
		t.Errorf("Path %q, Defaults %+v: want %q and the built-in defaults (the example documents them)", f.Path, f.Defaults, path)
	}
	var names []string
	for _, w := range f.Workers {
		names = append(names, w.Name)
	}
	if want := []string{"goworker", "boost_worker", "report", "db"}; !slices.Equal(names, want) {
		t.Fatalf("workers %q, want %q", names, want)
	}
	goworker, boost, report, db := f.Workers[0], f.Workers[1], f.Workers[2], f.Workers[3]
	if !slices.Equal(goworker.Command, []string{"bin/goworker", "-period", "100ms"}) ||
		!slices.Equal(goworker.Env, []string{"GODEBUG=madvdontneed=1", "GOMAXPROCS=1"}) {
		t.Errorf("goworker: %+v", goworker)
	}
	if len(boost.Command) < 2 || boost.Command[1] != boost.Name {
		t.Errorf("the Boost worker's argv %q must name its object %q", boost.Command, boost.Name)
	}
	if report.Every != 30*time.Second || !report.Supervised() {
		t.Errorf("report: %+v", report)
	}
	if db.Supervised() || db.PidFile == "" || db.Restart != 0 {
		t.Errorf("db: %+v", db)
	}

	// Every key of the reference is in the example (commented out or not).
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.Contains(string(data), "\n"+k.name+" = ") && !strings.Contains(string(data), "# "+k.name+" = ") {
			t.Errorf("the example does not show key %s", k.name)
		}
	}
	for _, k := range proctabKeys {
		if !strings.Contains(string(data), "# "+k+" = ") {
			t.Errorf("the example does not show [proctab] key %s", k)
		}
	}
	for _, k := range serveKeys {
		if !strings.Contains(string(data), "# "+k+" = ") {
			t.Errorf("the example does not show [serve] key %s", k)
		}
	}

	for _, k := range tcpWatchdogKeys {
		if !strings.Contains(string(data), "# "+k+" = ") {
			t.Errorf("the example does not show [tcp_watchdog] key %s", k)
		}
	}

	// Loading it again gives Equal workers: a reload of an unchanged file changes nothing.
	again, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range f.Workers {
		if !f.Workers[i].Equal(again.Workers[i]) {
			t.Errorf("worker %s differs between two loads", f.Workers[i].Name)
		}
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(t.TempDir() + "/none.toml")
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "config: open ") {
		t.Errorf("Load of a missing file: %v, want config: open ...: fs.ErrNotExist", err)
	}
}

func TestErrorWraps(t *testing.T) {
	_, err := parse(noNameHead + "name = \"a/b\"\n")
	if !errors.Is(err, shmobj.ErrInvalidName) {
		t.Errorf("%v: does not wrap shmobj.ErrInvalidName", err)
	}
	e := &Error{File: "f.toml", Msg: "m"}
	if e.Error() != "f.toml: m" {
		t.Errorf("Error() without line and key = %q", e.Error())
	}
}

func TestPositions(t *testing.T) {
	const src = "\ufeff# [[worker]] in a comment\r\n" + // 1
		"top = 1\r\n" + // 2
		"[ defaults ] # c\n" + // 3
		"interval = \"1s\"\n" + // 4
		"[[worker]]\n" + // 5
		"name = \"a\"\n" + // 6
		"command = [\n" + // 7
		"  \"x = 1\",\n" + // 8
		"  '''\n" + // 9
		"stalls = 2\n" + // 10
		"[[worker]]'''\n" + // 11
		"]\n" + // 12
		"desc = \"\"\"\\\"\"\"\n" + // 13
		"pid = 3\"\"\"\n" + // 14
		"\"quoted key\" . 'lit' = 1\n" + // 15
		"env = { A = \"1\" }\n" + // 16
		"[[ worker ]]\n" + // 17
		"  name = \"b\"\n" + // 18
		"[worker.env]\n" + // 19
		"HOME = \"/h\" # HOME = 2\n" + // 20
		"sub.key = 1\n" // 21
	ps := scanPositions(src)
	tests := []struct {
		name string
		path []string
		want int
	}{
		{"top-level key", []string{"top"}, 2},
		{"table header", []string{"defaults"}, 3},
		{"key in table", []string{"defaults", "interval"}, 4},
		{"array of tables", []string{"worker"}, 5},
		{"first worker", []string{"worker", "#0"}, 5},
		{"key in first worker", []string{"worker", "#0", "name"}, 6},
		{"multi-line array", []string{"worker", "#0", "command"}, 7},
		{"not a key inside a string", []string{"worker", "#0", "stalls"}, 5},
		{"multi-line basic string", []string{"worker", "#0", "desc"}, 13},
		{"not a key after an escaped quote", []string{"worker", "#0", "pid"}, 5},
		{"quoted dotted key", []string{"worker", "#0", "quoted key", "lit"}, 15},
		{"quoted key prefix", []string{"worker", "#0", "quoted key"}, 15},
		{"inline table", []string{"worker", "#0", "env"}, 16},
		{"key inside an inline table", []string{"worker", "#0", "env", "A"}, 16},
		{"second worker", []string{"worker", "#1"}, 17},
		{"indented key", []string{"worker", "#1", "name"}, 18},
		{"sub-table of the last worker", []string{"worker", "#1", "env"}, 19},
		{"key in the sub-table", []string{"worker", "#1", "env", "HOME"}, 20},
		{"dotted key in the sub-table", []string{"worker", "#1", "env", "sub", "key"}, 21},
		{"no third worker", []string{"worker", "#2", "name"}, 5},
		{"unknown", []string{"nothing"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ps.line(tt.path...); got != tt.want {
				t.Errorf("line(%q) = %d, want %d", tt.path, got, tt.want)
			}
		})
	}
	if _, err := toml.Decode(src, new(map[string]any)); err != nil {
		t.Errorf("the test's document is not valid TOML: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("../examples/shmmon.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	for _, tt := range invalidTests {
		f.Add([]byte(tt.head + tt.line + "\n"))
	}
	for _, s := range []string{
		"", "[[worker]]", "[[worker]]\n[worker.env]\nA = \"1\"\n", "worker = [{name = \"a\", pid = 5}]",
		"a = \"\"\"\n", "x = '''", "[\"a.b\".'c']\nd = 1", "\"unterminated = 1", "[[", "k = [ [ { } ] ]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		scanPositions(string(data)) // any text, valid TOML or not
		file, err := Parse("fuzz.toml", data)
		if err != nil {
			if file != nil {
				t.Fatal("a file and an error")
			}
			problems(t, err)
			return
		}
		seen := make(map[string]bool)
		for _, w := range file.Workers {
			if seen[w.Name] || shmobj.ValidatePublishName(w.Name) != nil {
				t.Fatalf("worker name %q: invalid or duplicate", w.Name)
			}
			seen[w.Name] = true
			if !w.Equal(w.clone()) {
				t.Fatalf("worker %q is not Equal to its clone", w.Name)
			}
		}
	})
}

func TestProctabTable(t *testing.T) {
	f, err := Parse("p.toml", []byte("[proctab]\nkey = \"0x7e01\"\nsem_key = 32258\nslots = 10\nevery = \"2s\"\nsignal = \"INT\"\nkill_after = \"1s\"\n"+
		"create = false\nmode = \"0640\"\ngroup = \"4242\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Proctab{Key: 0x7e01, SemKey: 32258, Slots: 10, Every: 2 * time.Second, Signal: syscall.SIGINT, KillAfter: time.Second,
		Mode: 0o640, Group: 4242}
	if f.Proctab == nil || *f.Proctab != want {
		t.Fatalf("Proctab = %+v, want %+v", f.Proctab, want)
	}
	if o := want.Options(); o.Mode != 0o640 || o.Group != 4242 || o.Key != 0x7e01 || o.SemKey != 32258 || o.Slots != 10 {
		t.Errorf("Options() = %+v", o)
	}
	def := Proctab{Key: 0x5095, SemKey: 0x5095, Slots: 1000, Every: 10 * time.Second, Signal: syscall.SIGTERM, KillAfter: 5 * time.Second,
		Create: true, Mode: 0o660}
	if f, err := Parse("p.toml", []byte("[proctab]\nsignal = \"TERM\"\n")); err != nil || *f.Proctab != def {
		t.Errorf("defaults: %+v, %v; want %+v", f.Proctab, err, def)
	}
	if f, err := Parse("p.toml", []byte("[proctab]\ngroup = \"root\"\nevery = \"100ms\"\n")); err != nil || f.Proctab.Group != 0 || f.Proctab.Every != 100*time.Millisecond {
		t.Errorf("group root, every 100ms: %+v, %v", f.Proctab, err)
	}
	if f, _ := Parse("p.toml", []byte("")); f.Proctab != nil {
		t.Error("no [proctab] table, but a Proctab")
	}
	for _, bad := range []struct{ text, want string }{
		{"[proctab]\nkey = -1\n", "p.toml:2: proctab key"},
		{"[proctab]\nkey = \"zz\"\n", "p.toml:2: proctab key"},
		{"[proctab]\n\nslots = 0\n", "p.toml:3: proctab slots"},
		{"[proctab]\nevery = \"0s\"\n", "p.toml:2: proctab every"},
		{"[proctab]\nevery = \"99ms\"\n", `p.toml:2: proctab every: "99ms" must be at least 100ms`},
		{"[proctab]\ncreate = 1\n", "p.toml:2: proctab create: got integer 1 (want true or false)"},
		{"[proctab]\nmode = \"0666x\"\n", "p.toml:2: proctab mode"},
		{"[proctab]\nmode = 438\n", "p.toml:2: proctab mode"},
		{"[proctab]\ngroup = \"no-such-group-here\"\n", `p.toml:2: proctab group: "no-such-group-here": no such group`},
		{"[proctab]\nsignal = \"NOPE\"\n", "p.toml:2: proctab signal"},
		{"[proctab]\nbogus = 1\n", "p.toml:2: proctab bogus: unknown key"},
		{"proctab = 3\n", "p.toml:1: proctab"},
	} {
		if _, err := Parse("p.toml", []byte(bad.text)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", bad.text, err, bad.want)
		}
	}
}

func TestHookKeys(t *testing.T) {
	f, err := parse("[defaults]\non_stall = \"echo d\"\non_kill = \"echo k\"\nhook_timeout = \"3s\"\n" +
		supervisedHead + "on_kill = \"\"\non_restart = \"echo r $SHMMON_NAME\"\non_give_up = \"echo g\"\non_abnormal = \"echo a\"\n")
	if err != nil {
		t.Fatal(err)
	}
	w := f.Workers[0]
	if w.OnStall != "echo d" || w.OnKill != "" || w.OnRestart != "echo r $SHMMON_NAME" || w.OnGiveUp != "echo g" ||
		w.OnAbnormal != "echo a" || w.HookTimeout != 3*time.Second {
		t.Errorf("hooks: %+v (want the worker's keys over the defaults, \"\" disabling one)", w)
	}
	if d, _ := parse(supervisedHead); d.Workers[0].HookTimeout != hook.DefaultTimeout {
		t.Errorf("default hook_timeout %v, want %v", d.Workers[0].HookTimeout, hook.DefaultTimeout)
	}
	// A watched worker has no restarts: their hooks from [defaults] do not apply to it.
	f, err = parse("[defaults]\non_restart = \"echo r\"\non_kill = \"echo k\"\n" + watchedHead)
	if err != nil {
		t.Fatal(err)
	}
	if w := f.Workers[0]; w.OnRestart != "" || w.OnKill != "echo k" {
		t.Errorf("watched worker hooks: restart %q kill %q, want none and the default", w.OnRestart, w.OnKill)
	}
	for _, bad := range []struct{ text, want string }{
		{supervisedHead + "on_stall = 1\n", `worker "w" on_stall: got integer 1 (want a shell command`},
		{supervisedHead + "hook_timeout = \"0s\"\n", `worker "w" hook_timeout: "0s" must be more than 0`},
		{watchedHead + "on_give_up = \"x\"\n", `worker "w" on_give_up: only allowed in a supervised worker`},
	} {
		if _, err := parse(bad.text); err == nil || !strings.Contains(err.Error(), bad.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("parse(%q) = %v, want one line containing %q", bad.text, err, bad.want)
		}
	}
}

func TestWorkerEqualExceptLive(t *testing.T) {
	a := builtin()
	a.Name, a.Command = "w", []string{"x"}
	b := a.clone()
	b.OnStall, b.OnAbnormal, b.OnKill, b.OnRestart, b.OnGiveUp, b.HookTimeout = "1", "2", "3", "4", "5", time.Minute
	if a.Equal(b) || !a.EqualExceptLive(b) {
		t.Errorf("hooks changed: Equal %v EqualExceptLive %v, want false and true", a.Equal(b), a.EqualExceptLive(b))
	}
	b.Stalls++
	if a.EqualExceptLive(b) {
		t.Error("EqualExceptLive ignores stalls")
	}
}

func TestServeTable(t *testing.T) {
	for _, tt := range []struct{ text, listen string }{
		{"", ""},
		{"[serve]\n", ""},
		{"[serve]\nlisten = \"\"\n", ""},
		{"[serve]\nlisten = \"9464\"\n", "127.0.0.1:9464"},
		{"[serve]\nlisten = \":9464\"\n", "127.0.0.1:9464"},
		{"[serve]\nlisten = \"0.0.0.0:80\"\n", "0.0.0.0:80"},
	} {
		f, err := Parse("s.toml", []byte(tt.text))
		if err != nil || f.Serve.Listen != tt.listen {
			t.Errorf("Parse(%q): listen %q, %v; want %q", tt.text, f.Serve.Listen, err, tt.listen)
		}
	}
	for _, bad := range []struct{ text, want string }{
		{"[serve]\nlisten = \"nonsense:xx\"\n", `s.toml:2: serve listen: "nonsense:xx" is not a listen address (want PORT, :PORT or HOST:PORT`},
		{"[serve]\nlisten = 9464\n", `s.toml:2: serve listen: got integer 9464 (want a string`},
		{"[serve]\nport = 1\n", "s.toml:2: serve port: unknown key (want one of [listen control control_group])"},
		{"serve = 1\n", "s.toml:1: serve: got integer 1 (want a table: [serve])"},
	} {
		if _, err := Parse("s.toml", []byte(bad.text)); err == nil || !strings.HasPrefix(err.Error(), bad.want) {
			t.Errorf("Parse(%q) = %v, want %q...", bad.text, err, bad.want)
		}
	}
}

func TestListenAddress(t *testing.T) {
	for in, want := range map[string]string{
		"9464": "127.0.0.1:9464", ":9464": "127.0.0.1:9464", "0": "127.0.0.1:0", "[::1]:9464": "[::1]:9464",
		"0.0.0.0:9464": "0.0.0.0:9464", "localhost:1": "localhost:1", ":065535": "127.0.0.1:65535",
	} {
		if got, err := ListenAddress(in); err != nil || got != want {
			t.Errorf("ListenAddress(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "nonsense:xx", "65536", ":-1", "host", "a:b:c", "::1:80", "1.2.3.4:", "x y:80", "9464 "} {
		_, err := ListenAddress(in)
		if err == nil || !strings.Contains(err.Error(), strconv.Quote(in)+" is not a listen address (want PORT, :PORT or HOST:PORT") {
			t.Errorf("ListenAddress(%q) = %v, want a one-line error naming it", in, err)
		}
	}
}
