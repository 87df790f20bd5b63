package worklog

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmmon/shmmon/notify"
	"github.com/shmmon/shmmon/proc"
)

// startTimeout bounds the wait for a new log process's first status.
const startTimeout = 5 * time.Second

// Log is a worker's log as its supervisor holds it: a connection to the log process that
// writes the file. Its methods are safe for concurrent use.
type Log struct {
	opts   Options
	worker string
	log    *slog.Logger

	mu      sync.Mutex
	conn    *net.UnixConn // nil after the log process went away
	child   *proc.Child   // the log process when this Log started it
	readers sync.WaitGroup
	closed  bool

	// dropped counts the bytes the log processes dropped while this Log was connected to
	// them (all of a process's count when it connects to one that runs).
	dropped atomic.Int64
	errText atomic.Value // string: the current log process's error
}

// Open returns the log of the file opts.Path for the worker of that name (its lines in log
// name it): it connects to the log process of the file when one runs (one a previous serve
// started, which still reads the pipes of the programs it adopts), or starts one (the running
// program, os.Executable, with [ProcessArg]) in a process group of its own, so that it
// outlives its starter. A log process found at the file's address is used only when it runs
// as root or this user. The error says why no log process could be reached or started.
func Open(opts Options, worker string, log *slog.Logger) (*Log, error) {
	if log == nil {
		log = slog.Default()
	}
	l := &Log{opts: opts.WithDefaults(), worker: worker, log: log}
	l.errText.Store("")
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.connect(); err != nil {
		return nil, err
	}
	return l, nil
}

// connect connects to the file's log process, starting one when none answers. l.mu is held.
func (l *Log) connect() error {
	if c := l.find(); c != nil {
		if l.connected(c) == nil {
			l.child = nil // not this Log's child
			return nil
		}
		// Found, but it did not answer: a log process on its way out (its last program
		// ended, its serve went away) still had the address. A new one takes over.
	}
	c, err := l.start()
	if err != nil {
		return err
	}
	return l.connected(c)
}

// find returns a connection to the log process at the file's address, when one of root's or
// this user's listens there; else nil.
func (l *Log) find() *net.UnixConn {
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: Addr(l.opts.Path), Net: "unixpacket"})
	if err != nil {
		return nil
	}
	if peer, err := proc.PeerOf(c); err != nil || peer.Uid != 0 && int(peer.Uid) != os.Geteuid() {
		c.Close()
		l.log.Warn("the log file's address is taken by a process of another user; starting a log process of its own",
			"worker", l.worker, "log", l.opts.Path, "event", "log-address-taken", "peer_uid", peer.Uid, "peer_pid", peer.Pid)
		return nil
	}
	return c
}

// connected waits for the first status of the log process at c, and makes c l's connection.
func (l *Log) connected(c *net.UnixConn) error {
	first := make(chan error, 1)
	l.readers.Go(func() { l.read(c, first) })
	var err error
	select {
	case err = <-first:
	case <-time.After(startTimeout):
		err = fmt.Errorf("did not answer within %v", startTimeout)
	}
	if err == nil {
		// A log process found may have been started for another rotation (the configuration
		// changed since): this Log's holds from now on.
		b, _ := json.Marshal(message{Op: "options", MaxSize: l.opts.MaxSize, Keep: l.opts.Keep})
		c.SetWriteDeadline(time.Now().Add(startTimeout))
		_, err = c.Write(b)
	}
	if err != nil {
		c.Close()
		return fmt.Errorf("worklog: the log process of %s: %w", l.opts.Path, err)
	}
	l.conn = c
	return nil
}

// start starts a log process for the file and returns the connection to it.
func (l *Log) start() (*net.UnixConn, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("worklog: start the log process: %w", err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("worklog: start the log process: socketpair: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "log process"), os.NewFile(uintptr(fds[1]), "starter")
	defer mine.Close()
	defer theirs.Close()
	cmd := exec.Command(exe, ProcessArg, "--max-size", strconv.FormatInt(l.opts.MaxSize, 10),
		"--keep", strconv.Itoa(l.opts.Keep), "--", l.opts.Path)
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Env = notify.WithoutHandshake(os.Environ())
	cmd.Dir = "/"
	// A group of its own (proc.StartChild): it is not its starter's, and outlives it.
	child, err := proc.StartChild(cmd)
	if err != nil {
		return nil, fmt.Errorf("worklog: start the log process: %w", err)
	}
	fc, err := net.FileConn(mine)
	if err != nil {
		child.SignalGroup(unix.SIGKILL)
		return nil, fmt.Errorf("worklog: start the log process: %w", err)
	}
	l.child = child
	return fc.(*net.UnixConn), nil
}

// read takes the log process's status messages until the connection ends, telling first
// when the first came (or the connection ended before), and logs what serve's log should
// say: the file failing and writable again, and output dropped (at most once a minute).
func (l *Log) read(c *net.UnixConn, first chan<- error) {
	buf := make([]byte, 4096)
	var (
		last    int64     // the process's count at its last message
		lastErr string    // the error last logged
		warned  time.Time // when drops were last logged
	)
	for {
		n, err := c.Read(buf)
		if err == nil && n == 0 {
			err = errors.New("it closed the connection")
		}
		if err != nil {
			if first != nil {
				first <- err
				return
			}
			l.mu.Lock()
			if l.conn == c {
				l.conn = nil
			}
			l.mu.Unlock()
			return
		}
		var m message
		if json.Unmarshal(buf[:n], &m) != nil {
			continue
		}
		if first != nil {
			// The count from here on: what it dropped before was counted by whoever was
			// connected then (a previous supervision), or is of a serve that died.
			last = m.Dropped
			first <- nil
			first = nil
		}
		if m.Dropped > last {
			l.dropped.Add(m.Dropped - last)
		}
		if m.Dropped > last && time.Since(warned) > time.Minute {
			warned = time.Now()
			l.log.Warn("worker output dropped: its log file takes it slower than the program writes it",
				"worker", l.worker, "log", l.opts.Path, "event", "log-dropped", "dropped_bytes", l.dropped.Load())
		}
		last = m.Dropped
		l.errText.Store(m.Error)
		switch {
		case m.Error != "" && m.Error != lastErr:
			l.log.Error("cannot write the worker's log file; its output is dropped and counted", "worker", l.worker,
				"log", l.opts.Path, "event", "log-error", "err", m.Error)
		case m.Error == "" && lastErr != "":
			l.log.Info("the worker's log file is written again", "worker", l.worker, "log", l.opts.Path, "event", "log-ok")
		}
		lastErr = m.Error
	}
}

// Pipes returns the write ends of two new pipes, for a run's stdout and stderr, whose read
// ends the log process now holds: the caller gives them to the program and closes them once
// it started. A log process that went away (it was killed) is started again first.
func (l *Log) Pipes() (stdout, stderr *os.File, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, nil, fmt.Errorf("worklog: %s: %w", l.opts.Path, os.ErrClosed)
	}
	for attempt := 0; ; attempt++ {
		if l.conn == nil {
			if err := l.connect(); err != nil {
				return nil, nil, err
			}
		}
		stdout, stderr, err = l.send(l.conn)
		if err == nil || attempt == 1 {
			return stdout, stderr, err
		}
		l.conn.Close() // the reader sees it and forgets it
		l.conn = nil
	}
}

// send makes the pipes and passes their read ends to the log process over c.
func (l *Log) send(c *net.UnixConn) (stdout, stderr *os.File, err error) {
	or, ow, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("worklog: %w", err)
	}
	er, ew, err := os.Pipe()
	if err != nil {
		or.Close()
		ow.Close()
		return nil, nil, fmt.Errorf("worklog: %w", err)
	}
	defer or.Close()
	defer er.Close()
	b, _ := json.Marshal(message{Op: "pipes"})
	c.SetWriteDeadline(time.Now().Add(startTimeout))
	if _, _, err = c.WriteMsgUnix(b, unix.UnixRights(int(or.Fd()), int(er.Fd())), nil); err != nil {
		ow.Close()
		ew.Close()
		return nil, nil, fmt.Errorf("worklog: pass the pipes to the log process of %s: %w", l.opts.Path, err)
	}
	return ow, ew, nil
}

// Path returns the log file's path.
func (l *Log) Path() string { return l.opts.Path }

// Dropped returns how many bytes of output the log processes of this Log dropped (the disk
// was slower than the program, or failed).
func (l *Log) Dropped() int64 { return l.dropped.Load() }

// Err returns why the file cannot be written now; "" while it can.
func (l *Log) Err() string { return l.errText.Load().(string) }

// Close disconnects from the log process, which ends once the pipes it reads are closed by
// every process that holds them; when this Log started it, Close waits up to 2 seconds for
// that. It is safe to call twice; Pipes fails after it.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	if l.conn != nil {
		l.conn.Close()
	}
	child := l.child
	l.mu.Unlock()
	l.readers.Wait()
	if child != nil {
		select {
		case <-child.Done():
		case <-time.After(2 * time.Second):
		}
	}
	return nil
}
