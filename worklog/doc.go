// Package worklog keeps a supervised program's output in a log file of its own: the `log`,
// `log_max_size` and `log_keep` keys of serve's workers, and `shmmon run --log`.
//
// # The file
//
// Every line of the program's stdout and stderr is written with the time it was read (RFC
// 3339, [TimeLayout]) and the stream's tag, out or err:
//
//	2026-03-01T10:00:00.123456Z out listening on :8080
//	2026-03-01T10:00:01.000002Z err warning: cache cold
//	2026-03-01T10:00:02.500000Z log … 1234 bytes dropped
//
// A line longer than [MaxLine] (or output that never ends a line) is cut into pieces of
// MaxLine bytes, each a line. When a line would take the file beyond MaxSize it is rotated:
// PATH becomes PATH.1, PATH.1 becomes PATH.2, ..., up to PATH.Keep, and the oldest is
// removed; with Keep 0 the file is removed. The file survives restarts of the program: each
// run appends to it.
//
// # Never stalling the program
//
// A supervisor whose log pipe fills up makes a healthy program block in write(2), stop
// beating, and be killed as hung. So the pipes are read at once, whatever the disk does: what
// is read waits for the file in a buffer of at most [Buffer] (1 MiB) per file, and what comes
// while it is full is dropped — counted, and noted in the file once it takes lines again
// ("… 1234 bytes dropped", tag log). A file that cannot be written (ENOSPC, EIO) drops and
// counts the same, and is opened again for the next lines: the program never sees it.
// [Log.Dropped] is the count (serve's /metrics shmmon_worker_log_dropped_bytes_total and
// status), [Log.Err] the file's error, and the supervisor's log gets event=log-error,
// log-ok and (at most once a minute) log-dropped.
//
// # The log process, and adoption
//
// The pipes are not read by serve but by a small log process per file: the shmmon command
// itself, run as `shmmon log-writer` ([ProcessArg], [Main]) in a process group of its own. A
// program serve adopts after serve died and started again still holds the pipes of its first
// start: were serve their reader, nobody would read them, and the program would block once
// the pipe is full (64 KiB) or die of SIGPIPE. The log process outlives serve, as s6-log
// outlives s6-supervise, and goes on reading them; the next serve finds it at the file's
// abstract address ([Addr], a hash of the user and the path) and passes it the pipes of the
// program's next runs. For each run, [Log.Pipes] makes two pipes and passes their read ends
// to the log process (SCM_RIGHTS over a SOCK_SEQPACKET connection); the program gets the
// write ends. The log process ends once no serve is connected and every pipe it reads is
// closed by all its writers. It accepts connections only from root and its own user
// (SO_PEERCRED), and serve uses one it finds only when it runs as root or serve's user.
//
// Linux only: elsewhere [Open] returns an error matching errors.ErrUnsupported.
package worklog
