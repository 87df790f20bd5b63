package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shmmon/shmmon/proc"
)

// Handler does what requests ask: serve's actions on its workers. Handle answers req from
// peer (admitted already, the request well-formed: a known action, workers as the action
// wants them); for "logs" it may send lines with line before it answers, which fails once the
// client is gone. ctx ends when the client closes the connection or the server stops.
type Handler interface {
	Handle(ctx context.Context, peer proc.Peer, req Request, line func(string) error) Answer
}

// HandlerFunc is a function as a [Handler].
type HandlerFunc func(ctx context.Context, peer proc.Peer, req Request, line func(string) error) Answer

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, peer proc.Peer, req Request, line func(string) error) Answer {
	return f(ctx, peer, req, line)
}

// Options configure [Listen].
type Options struct {
	// Group, when set, is the group whose members are admitted besides root and serve's user;
	// the socket is then 0660 and of that group, else 0600.
	Group *uint32
	// Logger receives a line per refused connection (event=control-refused); nil means
	// slog.Default().
	Logger *slog.Logger
}

// The limits of a connection.
const (
	MaxRequest     = 64 << 10         // bytes of a request line
	requestTimeout = 10 * time.Second // for the request line to arrive
	writeTimeout   = 10 * time.Second // for each answer line to be taken
	maxConns       = 64               // connections served at once; more are told to try again
)

// Server is a listening control socket. Create it with [Listen], then call Serve once.
type Server struct {
	path  string
	ln    *net.UnixListener
	group *uint32
	log   *slog.Logger
}

// Listen listens at path (see the package doc for its directory, permissions and a stale
// socket). Outcomes:
//
//   - The server, nil.
//   - path is not absolute or too long: the error of [ValidatePath].
//   - A serve answers at path: an error matching [ErrInUse], naming the path.
//   - path exists and is not a socket: an error; nothing is removed.
//   - The directory, the socket, its mode or its group cannot be made: the wrapped error.
func Listen(path string, opts Options) (*Server, error) {
	if err := ValidatePath(path); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := mkdirs(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	// The peer check below is the real gate: between bind and chmod the socket has the
	// umask's permissions, and the check holds all the same.
	mode, gid := os.FileMode(0o600), -1
	if opts.Group != nil {
		mode, gid = 0o660, int(*opts.Group)
	}
	if err := os.Chown(path, -1, gid); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: %w", err)
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: %w", err)
	}
	return &Server{path: path, ln: ln, group: opts.Group, log: log}, nil
}

// mkdirs makes dir and its missing parents 0755 (the umask aside: a directory made 0700
// would lock out the control group).
func mkdirs(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("control: %s is not a directory", dir)
		}
		return nil
	}
	if err := mkdirs(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("control: %w", err)
	}
	return os.Chmod(dir, 0o755)
}

// removeStale removes the socket at path when nobody answers there: its serve died.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("control: %w", err)
	case fi.Mode().Type() != fs.ModeSocket:
		return fmt.Errorf("control: %s exists and is not a socket (%v): remove it, or choose another path", path, fi.Mode().Type())
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%w at %s: stop it first, or give this one another path (--control)", ErrInUse, path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("control: is a serve still answering at %s? %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("control: remove the stale socket: %w", err)
	}
	return nil
}

// Close closes the socket, removing its file, without serving: for a caller that listened
// and then could not go on. Serve closes it too.
func (s *Server) Close() error { return s.ln.Close() }

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Serve serves connections with h until ctx is done, then closes the socket (removing its
// file) and returns once every connection it served is done. It returns nil then, or the
// listener's error should it fail before.
func (s *Server) Serve(ctx context.Context, h Handler) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	defer s.ln.Close()
	slots := make(chan struct{}, maxConns)
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				time.Sleep(100 * time.Millisecond) // out of descriptors: the requests in flight free some
				continue
			}
			return fmt.Errorf("control: accept: %w", err)
		}
		select {
		case slots <- struct{}{}:
		default:
			wg.Go(func() {
				defer c.Close()
				writeAnswer(c, Failf("busy: %d requests in flight; try again", maxConns))
			})
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			s.serveConn(cctx, c, h)
		})
	}
}

// serveConn serves one connection: the peer is checked, the request read and checked, and
// answered by h.
func (s *Server) serveConn(ctx context.Context, c *net.UnixConn, h Handler) {
	defer c.Close()
	peer, err := proc.PeerOf(c)
	if err != nil {
		writeAnswer(c, Answer{Refused: true, Error: "refused: " + err.Error()})
		return
	}
	if why := s.refuse(peer); why != "" {
		s.log.Warn("control connection refused", "event", "control-refused", "uid", peer.Uid, "peer_pid", peer.Pid)
		writeAnswer(c, Answer{Refused: true, Error: why})
		return
	}
	c.SetReadDeadline(time.Now().Add(requestTimeout))
	r := bufio.NewReaderSize(io.LimitReader(c, MaxRequest+1), 4096)
	line, err := r.ReadBytes('\n')
	switch {
	case len(line) > MaxRequest:
		writeAnswer(c, Usagef("request longer than %d bytes", MaxRequest))
		return
	case err != nil && (err != io.EOF || len(line) == 0):
		writeAnswer(c, Usagef("no request line (want one JSON object and a newline): %v", err))
		return
	}
	req, bad := parse(line)
	if bad != "" {
		writeAnswer(c, Usagef("%s", bad))
		return
	}
	c.SetReadDeadline(time.Time{})
	// The client closing its end (or anything it sends now) ends the request: a follow of a
	// log ends when its reader goes.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		var b [1]byte
		c.Read(b[:])
		cancel()
	}()
	a := h.Handle(ctx, peer, req, func(l string) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return writeLine(c, Line{Line: l})
	})
	writeAnswer(c, a)
	// Unblocks the goroutine above: its Read fails once c is closed (deferred).
}

// refuse says why peer may not use the socket, or "".
func (s *Server) refuse(peer proc.Peer) string {
	if peer.Uid == 0 || int(peer.Uid) == os.Geteuid() || s.group != nil && peer.InGroup(*s.group) {
		return ""
	}
	who := fmt.Sprintf("root or uid %d", os.Geteuid())
	if s.group != nil {
		who += fmt.Sprintf(", or a member of group %d (control_group)", *s.group)
	}
	return fmt.Sprintf("refused: uid %d (pid %d) may not use serve's control socket (want %s)", peer.Uid, peer.Pid, who)
}

// parse reads a request line, and checks that its action is known and has the workers and
// fields it needs; bad says what is wrong, or is "".
func parse(line []byte) (req Request, bad string) {
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(&req); err != nil {
		return req, fmt.Sprintf("invalid request (want one JSON object, see the README): %v", err)
	}
	n := len(req.Workers)
	switch req.Action {
	case ActionStatus:
	case ActionStart, ActionStop, ActionRestart, ActionSignal:
		if n == 0 {
			return req, fmt.Sprintf("%s: no worker named (want at least one name)", req.Action)
		}
	case ActionReload:
		if n > 0 {
			return req, "reload takes no worker: it reads the whole file"
		}
	case ActionLogs:
		if n != 1 {
			return req, fmt.Sprintf("logs: %d workers named (want exactly one)", n)
		}
	default:
		return req, fmt.Sprintf("unknown action %q (want %s)", req.Action, strings.Join(Actions, ", "))
	}
	if req.Signal != "" && req.Action != ActionSignal {
		return req, fmt.Sprintf("%s takes no signal", req.Action)
	}
	if req.Action == ActionSignal && req.Signal == "" {
		return req, "signal: no signal given (want e.g. \"HUP\")"
	}
	if (req.Lines != nil || req.Follow) && req.Action != ActionLogs {
		return req, fmt.Sprintf("%s takes no lines or follow: those are of logs", req.Action)
	}
	if i := slices.Index(req.Workers, ""); i >= 0 {
		return req, fmt.Sprintf("worker %d is named \"\"", i+1)
	}
	return req, ""
}

func writeAnswer(c net.Conn, a Answer) { writeLine(c, a) }

// writeLine writes v as one JSON line to c.
func writeLine(c net.Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err = c.Write(append(b, '\n'))
	return err
}
