// Package config reads the configuration file of `shmmon serve`: one monitor process for
// many workers. The file is TOML (github.com/BurntSushi/toml) with an optional [defaults]
// table and any number of [[worker]] tables:
//
//	[defaults]
//	interval = "500ms"
//	stalls   = 4
//
//	[[worker]]                                  # supervised: serve starts and restarts it
//	name    = "goworker"
//	command = ["bin/goworker", "-period", "100ms"]
//	env     = { LOG_LEVEL = "debug" }
//
//	[[worker]]                                  # watched only: started elsewhere
//	name    = "db"
//	pidfile = "/run/db/db.pid"
//
// examples/shmmon.toml in the repository documents every key in a file that loads.
//
// # Workers
//
// A worker is either supervised (command: serve starts it in its own process group with
// SHMMON_NAME set, kills it when it hangs and restarts it per its restart policy) or watched
// only (pid or pidfile: a process started elsewhere, killed when it hangs, never started).
// Exactly one of command, pid and pidfile is required, and so is a name, unique in the file.
// An empty file, or one without workers, is valid: serve then waits for the file to change.
//
// # Keys
//
// Where: W in [[worker]], D in [defaults] (a value every worker that does not set the key
// gets), S only in a supervised worker (with command; a watched worker ignores such values of
// [defaults]). Durations are strings in Go syntax ("250ms", "1s", "1m30s"). Each key is a
// field of [Worker]; its value is checked by the package that owns it, whose rule is the one
// the command line's flags follow too: interval, stalls and grace by package monitor
// ([monitor.Config.ValidateResolved]), signal and kill_after by package proc, size and mode
// by package shmobj, the supervision keys by package supervise
// ([supervise.Options.ValidateResolved]; pids_max by package cgroup; log_max_size and
// log_keep by package worklog, through it), memory_max and cpu_max by package monitor
// ([monitor.Limits.ValidateResolved]), the rlimits by package proc ([proc.ParseLimit]);
// names, paths, users, commands and hooks by config.
//
//	key            where  type              default   accepted
//	name           W      string            -         object name: 1-255 bytes, no '/', NUL or control characters, not "." or ".."
//	command        W      array of strings  -         argv, at least the program; relative paths as os/exec resolves them
//	env            W S    table of strings  -         extra environment, KEY = "value"; KEY without '=', not SHMMON_*
//	dir            W S    string            -         absolute working directory (default: serve's)
//	log            W S    string            -         the program's log file (package worklog); absolute, or relative to dir (else serve's directory)
//	log_max_size   W D S  integer or string "10MiB"   rotate the log file at this size, at least 64KiB
//	log_keep       W D S  integer           5         old log files kept, NAME.1 ... NAME.N, 0 to 1000
//	pid            W      integer           -         pid of a running process, 2 to 4194304
//	pidfile        W      string            -         absolute path of a file holding the pid; trusted as package pidfile says
//	user           W D S  string            -         user name or numeric uid; only when serve runs as root
//	group          W D S  string            user's    group name or numeric gid; only when serve runs as root
//	restart        W D S  string            "always"  "always", "on-failure" or "never"
//	every          W D S  duration          "0s"      periodic job: run, wait for the exit, wait this long, again; 0 = resident
//	interval       W D    duration          "1s"      time between checks, at least 1ms
//	stalls         W D    integer           3         consecutive checks without progress that make a hang, 1 to 1048576
//	grace          W D    duration          "0s"      time allowed for the first beat; 0 = 10 intervals, at least 3s
//	signal         W D    string or int     "TERM"    first signal to a hung worker: name (TERM, SIGTERM) or number 1-64
//	kill_after     W D    duration          "5s"      wait after signal, then SIGKILL; more than 0
//	size           W D    integer or string 4096      object size: bytes, at least 16; or a whole number and a unit, "64KiB" ([Bytes])
//	mode           W D    string            "0600"    object permissions, octal "0001" to "0777"
//	backoff        W D S  duration          "1s"      delay of the 2nd restart in a row (1st: none), doubling; >= 1ms
//	backoff_max    W D S  duration          "30s"     longest restart delay, at least backoff
//	backoff_reset  W D S  duration          "60s"     healthy run time after which the delay starts over; more than 0
//	start_limit    W D S  integer           5         more starts than this within start_window: give up; 1 to 1048576
//	start_window   W D S  duration          "60s"     the window of start_limit; more than 0
//	memory_max     W D    integer or string 0         resident memory of the worker's processes (its cgroup, else its tree) over this at stalls checks in a row: stopped; "512MiB" ([Bytes]); 0 = none
//	cpu_max        W D    string            "0%"      CPU of the worker's processes over this share of one core, on average over stalls intervals: stopped; "150%"
//	pids_max       W D S  integer           0         pids.max of its cgroup (the pids controller), 0 = none, or 1 to 4194304
//	limit_nofile   W D S  string or int     serve's   RLIMIT_NOFILE the program starts with: "SOFT:HARD" or one number for both; "unlimited"
//	limit_core     W D S  string or int     serve's   RLIMIT_CORE, as limit_nofile (bytes)
//	limit_nproc    W D S  string or int     serve's   RLIMIT_NPROC, as limit_nofile (processes of the program's user)
//	cgroup         W D S  boolean           true      a cgroup of its own where serve can make one (package cgroup); false = its process group only
//	on_stall       W D    string            ""        hook: shell command run when the worker stalls; "" = none
//	on_abnormal    W D    string            ""        hook: run when the worker is judged hung
//	on_kill        W D    string            ""        hook: run when the hung worker was killed
//	on_restart     W D S  string            ""        hook: run when the worker was started again
//	on_give_up     W D S  string            ""        hook: run when serve gives up on the worker
//	on_limit       W D    string            ""        hook: run when the worker goes over a limit (SHMMON_EVENT=limit) or an OOM kill hits its cgroup (oom)
//	hook_timeout   W D    duration          "10s"     a hook still running after this is killed; more than 0
//	after          W S    array of strings  []        start only once these workers are ready; stop before them
//	binds_to       W S    array of strings  []        as after, and stopped when one of them ends, started again once it is ready
//	ready_timeout  W D    duration          "1m"      as a dependency: not ready this long after its start is logged (event=not-ready); more than 0
//
// Unknown keys are errors, anywhere in the file. The resolved values are in [Worker]. A change
// of hooks or dependencies alone does not restart a worker ([Worker.EqualExceptLive]).
//
// # Dependencies
//
// after and binds_to name other workers of the file ([Deps]; package fleet orders the starts
// and stops by them). A name that is no worker of the file, the worker's own name, and a chain
// of them that comes back where it began are errors at the key that names them; a cycle is
// listed: `worker "b" after: a cycle: a -> b -> a (...)`.
//
// An optional [serve] table holds settings of serve itself ([Serve]): listen, the address of
// its HTTP endpoint, "PORT", ":PORT" (both on 127.0.0.1) or "HOST:PORT" ([ListenAddress]);
// control, the absolute path (at most 107 bytes) of its control socket (package control),
// and control_group, a group whose members may use it.
//
// Two optional tables configure more of serve: [proctab] (see [Proctab]) and [tcp_watchdog]
// (see [TCPWatchdog]), whose keys are listen = "127.0.0.1:5005" (read like [serve]'s listen,
// but the port must not be 0: clients need to know it) and max_connections = 1024 (1 to
// 1048576), how many clients may be connected at once.
//
// # Errors
//
// [Load] and [Parse] check the whole file and report every problem they find: the error is an
// [errors.Join] of [*Error] values sorted by line, one per problem, each formatted
//
//	FILE:LINE: KEY: problem (what is accepted)
//
// for example
//
//	shmmon.toml:12: worker "db" interval: "0s" must be at least 1ms
//
// A TOML syntax error is one [*Error] without KEY. LINE is the line of the offending key, or of
// the [[worker]] header when a required key is missing. Lines are found by scanning the text
// for table headers and `key =` at the start of a statement, so a key written inside an inline
// table (env = { A = 1 }, or worker = [{ name = "a" }]) is reported at the line of the key or
// header that holds the inline table.
//
// Load and Parse only read the file and the user database: whether a pid, a pidfile, a
// command or a directory exists is for serve to find out when it starts the worker.
//
// # Reading and watching the file
//
// [Load] follows symbolic links (the administrator chose the path) but reads only a regular
// file of at most [MaxSize] (16 MiB) bytes: a FIFO, a device or a directory is an error
// without a wait or a read (the open is non-blocking and the type is checked on the open
// file), and so is a larger file, naming its size and the limit. [File.Size] tells an empty
// file, which is a valid configuration without workers, but which serve's reload takes for a
// save in progress (editors truncate, then write) and skips.
//
// [Watch] reports when the file changed, for a live reload: it watches the file's directory
// and, for a path through symbolic links (a Kubernetes ConfigMap:
// config.toml -> ..data/config.toml, ..data -> ..TIMESTAMP), the directory of the file the
// path resolves to, resolved again after each change, so that the swap of ..data is a change.
package config
