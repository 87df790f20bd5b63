package tcpwd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// Defaults of [Options].
const (
	DefaultWriteTimeout  = 5 * time.Second
	DefaultQueueLen      = 64
	DefaultPacketTimeout = 10 * time.Second
	DefaultMaxConns      = 1024
)

// verifyWait is how long a registration on loopback waits for the worker to run a process
// whose tree holds the peer, and verifyPoll how often it asks again: a program restarted after
// a kill may connect before the fleet has heard of its start.
const (
	verifyWait = 2 * time.Second
	verifyPoll = 50 * time.Millisecond
)

// The delay after a failed accept (out of descriptors, say) starts at acceptBackoffMin and
// doubles up to acceptBackoffMax, as net/http's does; an accept that succeeds resets it.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// capLogEvery is how often a connection closed over [Options.MaxConns] may be logged.
const capLogEvery = 10 * time.Second

// maxWarned bounds the problems a connection remembers having logged.
const maxWarned = 64

// Target is a worker whose name connections may register and feed.
type Target interface {
	// Root returns the pid of the root of the worker's process tree: the program shmmon
	// supervises, or the process it watches; 0 while none runs. On a loopback listener,
	// registrations are accepted only from that tree (see the package documentation): it must
	// be a process shmmon started or was told to watch, never a pid read from something
	// another user can write.
	Root() int
	// Feed is one feed of the worker: a beat of its heartbeat.
	Feed()
}

// Options configure a [Server].
type Options struct {
	// Lookup returns the worker of name, and whether there is one: the only names a
	// connection may register or feed. Required. It is called from many goroutines and must
	// not block; so are the Target's methods.
	Lookup func(name string) (Target, bool)
	// Logger receives the server's log lines (keys worker, event, remote, err); nil discards
	// them.
	Logger *slog.Logger
	// WriteTimeout bounds each write of a forwarded packet to its receiver; a receiver that
	// does not take it in time is disconnected. 0 means [DefaultWriteTimeout].
	WriteTimeout time.Duration
	// QueueLen is how many forwarded packets may wait for one receiver; a forward that finds
	// the queue full disconnects the receiver, which cannot keep up. 0 means
	// [DefaultQueueLen].
	QueueLen int
	// PacketTimeout bounds how long the rest of a packet may take once its first byte has
	// arrived; a connection that stops in the middle of a packet is closed. The time between
	// packets is not bounded. 0 means [DefaultPacketTimeout].
	PacketTimeout time.Duration
	// MaxConns is how many connections may be open at once; one more is closed as soon as it
	// is accepted (logged at most once every 10 s, with the count). 0 means
	// [DefaultMaxConns].
	MaxConns int
}

// Server serves the protocol of the package documentation on the connections of a listener.
// Create it with [NewServer] and run it with [Server.Serve]. Forwarded packets are queued
// per receiver and written by a goroutine of that receiver, so a slow or stuck receiver never
// blocks the server or the sender: it is disconnected instead (see [Options]).
type Server struct {
	opts Options
	log  *slog.Logger

	// verify is set by Serve before it accepts a connection: the listener is on loopback,
	// so registrations are verified against the workers' process trees.
	verify bool
	// stopping is closed when Serve ends the connections: a reader waiting for a worker's
	// process gives up.
	stopping chan struct{}

	mu        sync.Mutex
	conns     map[*conn]struct{}
	receivers map[string]receiver
	dogs      map[string]*dog

	// Serve's goroutine owns these: connections closed over MaxConns since the last log
	// line, and when that was.
	overCap       int
	overCapLogged time.Time
}

// conn is one client connection. Its reader goroutine owns warned, root and names.
type conn struct {
	c          net.Conn
	remote     string
	ours, peer *net.TCPAddr  // the addresses of the connection here and at the peer; nil unless TCP
	out        chan []byte   // forwarded packets waiting to be written
	done       chan struct{} // closed when the reader ends: the writer stops
	warned     map[string]bool
	root       int             // the root of the worker's tree the peer was found in; 0 = none yet
	names      map[string]bool // the names this connection registered (receiver or watchdog)
}

// receiver is the connection packets forwarded to a name are written to, and the root of
// the worker's tree it was verified for (0 on a listener that does not verify). s.mu guards it.
type receiver struct {
	c    *conn
	root int
}

// dog is the watchdog registration of one name: the connection that may feed it and the root
// of the worker's tree it was verified for (0 on a listener that does not verify). s.mu
// guards it.
type dog struct {
	owner *conn
	root  int
}

// NewServer returns a server with opts. It fails when opts.Lookup is nil or a value is
// negative.
func NewServer(opts Options) (*Server, error) {
	switch {
	case opts.Lookup == nil:
		return nil, errors.New("tcpwd: Options.Lookup is required")
	case opts.WriteTimeout < 0:
		return nil, fmt.Errorf("tcpwd: WriteTimeout %v: want 0 (default) or more", opts.WriteTimeout)
	case opts.QueueLen < 0:
		return nil, fmt.Errorf("tcpwd: QueueLen %d: want 0 (default) or more", opts.QueueLen)
	case opts.PacketTimeout < 0:
		return nil, fmt.Errorf("tcpwd: PacketTimeout %v: want 0 (default) or more", opts.PacketTimeout)
	case opts.MaxConns < 0:
		return nil, fmt.Errorf("tcpwd: MaxConns %d: want 0 (default) or more", opts.MaxConns)
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&opts.WriteTimeout, DefaultWriteTimeout)
	def(&opts.PacketTimeout, DefaultPacketTimeout)
	if opts.QueueLen == 0 {
		opts.QueueLen = DefaultQueueLen
	}
	if opts.MaxConns == 0 {
		opts.MaxConns = DefaultMaxConns
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{opts: opts, log: log, stopping: make(chan struct{}), conns: map[*conn]struct{}{},
		receivers: map[string]receiver{}, dogs: map[string]*dog{}}, nil
}

// Serve accepts connections on ln and serves them until ctx is cancelled; it then closes ln
// and every connection, waits for their goroutines, releases every object it attached and
// returns nil. It returns the error of ln when ln fails for another reason (after the same
// cleanup); other accept errors (out of descriptors, say) are logged and retried after a
// delay that doubles from 5ms to 1s. Registrations are verified when ln's address is a
// loopback IP (see the package documentation). Call it once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	addr, _ := ln.Addr().(*net.TCPAddr)
	s.verify = addr != nil && addr.IP.IsLoopback()
	if !s.verify {
		s.log.Warn("tcp watchdog: not listening on loopback: registrations cannot be verified; "+
			"whoever can connect can register, take over and feed the workers' names", "event", "tcp-unverified")
	}
	var wg sync.WaitGroup
	var err error
	var delay time.Duration
	for {
		c, aerr := ln.Accept()
		if aerr != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(aerr, net.ErrClosed) {
				err = fmt.Errorf("tcpwd: accept: %w", aerr)
				break
			}
			// Out of descriptors, say: wait rather than spin.
			delay = min(max(2*delay, acceptBackoffMin), acceptBackoffMax)
			s.log.Warn("tcp watchdog: accept failed; retrying", "event", "tcp-accept-failed", "err", aerr, "retry_in", delay)
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			continue
		}
		delay = 0
		cn := &conn{c: c, remote: c.RemoteAddr().String(), out: make(chan []byte, s.opts.QueueLen),
			done: make(chan struct{}), warned: map[string]bool{}, names: map[string]bool{}}
		cn.ours, _ = c.LocalAddr().(*net.TCPAddr)
		cn.peer, _ = c.RemoteAddr().(*net.TCPAddr)
		s.mu.Lock()
		full := len(s.conns) >= s.opts.MaxConns
		if !full {
			s.conns[cn] = struct{}{}
		}
		s.mu.Unlock()
		if full {
			c.Close()
			s.tooMany(cn.remote)
			continue
		}
		wg.Go(func() { s.handle(cn) })
	}
	ln.Close()
	s.mu.Lock()
	for cn := range s.conns {
		cn.c.Close()
	}
	s.mu.Unlock()
	close(s.stopping)
	wg.Wait()
	return err
}

// tooMany logs a connection closed over MaxConns, at most once every capLogEvery with the
// count since the last line. Only Serve's goroutine calls it.
func (s *Server) tooMany(remote string) {
	s.overCap++
	if now := time.Now(); now.Sub(s.overCapLogged) >= capLogEvery {
		s.log.Warn("tcp watchdog: too many connections; closing new ones", "event", "tcp-too-many",
			"max", s.opts.MaxConns, "closed", s.overCap, "remote", remote)
		s.overCap, s.overCapLogged = 0, now
	}
}

// handle reads the packets of cn until it ends, then drops its registrations.
func (s *Server) handle(cn *conn) {
	s.log.Debug("tcp watchdog: connected", "remote", cn.remote, "event", "tcp-connect")
	var wg sync.WaitGroup
	wg.Go(func() { s.write(cn) })
	defer func() {
		s.drop(cn)
		cn.c.Close()
		close(cn.done)
		wg.Wait()
	}()
	// The stream is a sequence of packets, whatever size its reads come in: ReadFull puts a
	// packet that arrives in pieces back together. A client may stay quiet between packets as
	// long as it likes, but once a packet has begun the rest must follow within
	// PacketTimeout: a connection cannot hold its reader in the middle of one for ever.
	r := bufio.NewReaderSize(cn.c, PacketSize)
	buf := make([]byte, PacketSize)
	for {
		_, err := r.Peek(1)
		if err == nil {
			armed := r.Buffered() < PacketSize
			if armed {
				cn.c.SetReadDeadline(time.Now().Add(s.opts.PacketTimeout))
			}
			_, err = io.ReadFull(r, buf)
			if armed {
				cn.c.SetReadDeadline(time.Time{})
			}
		}
		if err != nil {
			s.readFailed(cn, err)
			return
		}
		var p Packet
		if err := p.UnmarshalBinary(buf); err != nil {
			s.log.Warn("tcp watchdog: malformed packet; closing the connection", "remote", cn.remote, "event", "tcp-malformed", "err", err)
			return
		}
		if !s.packet(cn, &p, buf) {
			return
		}
	}
}

// readFailed logs why reading from cn ended.
func (s *Server) readFailed(cn *conn, err error) {
	switch {
	case errors.Is(err, io.EOF):
		s.log.Debug("tcp watchdog: disconnected", "remote", cn.remote, "event", "tcp-disconnect")
	case errors.Is(err, io.ErrUnexpectedEOF):
		s.log.Warn("tcp watchdog: disconnected in the middle of a packet", "remote", cn.remote, "event", "tcp-disconnect")
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.log.Warn("tcp watchdog: a packet did not arrive whole in time; closing the connection", "remote", cn.remote,
			"event", "tcp-timeout", "timeout", s.opts.PacketTimeout)
	case errors.Is(err, net.ErrClosed): // closed by the server: logged where
	default:
		s.log.Warn("tcp watchdog: connection lost", "remote", cn.remote, "event", "tcp-disconnect", "err", err)
	}
}

// write writes the packets queued for cn until its reader ends.
func (s *Server) write(cn *conn) {
	for {
		select {
		case <-cn.done:
			return
		case b := <-cn.out:
			cn.c.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
			if _, err := cn.c.Write(b); err != nil {
				if !errors.Is(err, net.ErrClosed) {
					s.log.Warn("tcp watchdog: cannot write to a receiver; disconnecting it", "remote", cn.remote,
						"event", "tcp-write-failed", "err", err)
				}
				cn.c.Close()
				return
			}
		}
	}
}

// packet acts on one valid packet; false closes the connection.
func (s *Server) packet(cn *conn, p *Packet, raw []byte) bool {
	if p.Cmd == CmdForward {
		s.forward(cn, p, raw)
		return true
	}
	t, ok := s.opts.Lookup(p.Source)
	if !ok {
		s.refuse(cn, p, errors.New("not a worker of the config"))
		return false
	}
	if p.Cmd == CmdWatchdog && p.Wdt == WdtFeed {
		s.feed(cn, p.Source, t)
		return true
	}
	return s.register(cn, p, t.Root())
}

// refuse logs a refused registration or feed; the connection is then closed.
func (s *Server) refuse(cn *conn, p *Packet, why error) {
	s.log.Warn("tcp watchdog: refused; closing the connection", "worker", p.Source, "remote", cn.remote,
		"event", "tcp-refused", "cmd", p.Cmd, "wdt", p.Wdt, "err", why)
}

// errTaken refuses the registration of a name that another connection holds for the
// worker's running process tree.
var errTaken = errors.New("registered on another connection of the worker's running process")

// register registers cn as the receiver (cmd 0) or the watchdog (cmd 1, wdt 0) of p.Source,
// a worker whose tree Lookup said root leads. On a loopback listener the peer must be a
// process of that tree, and a registration of the name that another connection made for the
// same tree is never taken over (one made for an earlier run of the worker is); otherwise the
// newest registration wins. It reports false when it refused (the connection is closed).
func (s *Server) register(cn *conn, p *Packet, root int) bool {
	if !s.verify {
		root = 0
	} else {
		var err error
		if root, err = s.verifyPeer(cn, p, root); err != nil {
			s.refuse(cn, p, err)
			return false
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.verify && s.taken(cn, p, root) {
		s.refuse(cn, p, errTaken)
		return false
	}
	cn.names[p.Source] = true
	if p.Cmd == CmdReceive {
		old := s.receivers[p.Source]
		s.receivers[p.Source] = receiver{c: cn, root: root}
		s.log.Info("tcp watchdog: receiver registered", "worker", p.Source, "remote", cn.remote,
			"event", "tcp-receiver", "replaced", old.c != nil && old.c != cn)
		return true
	}
	old := s.dogs[p.Source]
	s.dogs[p.Source] = &dog{owner: cn, root: root}
	s.log.Info("tcp watchdog: watchdog registered", "worker", p.Source, "remote", cn.remote,
		"event", "tcp-register", "replaced", old != nil && old.owner != cn)
	return true
}

// taken reports whether another connection holds the registration p asks for, made for the
// worker's tree that root leads. s.mu must be held.
func (s *Server) taken(cn *conn, p *Packet, root int) bool {
	if p.Cmd == CmdReceive {
		r := s.receivers[p.Source]
		return r.c != nil && r.c != cn && r.root == root
	}
	d := s.dogs[p.Source]
	return d != nil && d.owner != cn && d.root == root
}

// verifyPeer makes sure the peer of cn is a process of the tree of the worker p.Source, whose
// root Lookup returned, and returns the root it was found under. The peer is looked for once
// per root (cn remembers the last one it was found under), and not at all while another
// connection holds the registration for that root. While the worker runs no process, or one
// whose tree does not hold the peer, it asks Lookup again every verifyPoll for up to
// verifyWait (see there).
func (s *Server) verifyPeer(cn *conn, p *Packet, root int) (int, error) {
	deadline := time.Now().Add(verifyWait)
	tried := 0
	why := errors.New("the worker runs no process now")
	for {
		s.mu.Lock()
		taken := s.taken(cn, p, root)
		s.mu.Unlock()
		switch {
		case taken:
			return 0, errTaken
		case root > 0 && root == cn.root:
			return root, nil
		case root > 0 && root != tried:
			tried = root
			pid, err := peerProcess(cn.ours, cn.peer, root)
			if err == nil {
				cn.root = root
				s.log.Debug("tcp watchdog: peer verified", "worker", p.Source, "remote", cn.remote, "event", "tcp-peer", "pid", pid, "root", root)
				return root, nil
			}
			why = err
		}
		if !time.Now().Before(deadline) {
			return 0, why
		}
		timer := time.NewTimer(verifyPoll)
		select {
		case <-s.stopping:
			timer.Stop()
			return 0, errors.New("the server is stopping")
		case <-timer.C:
		}
		t, ok := s.opts.Lookup(p.Source)
		if !ok {
			return 0, errors.New("no longer a worker of the config")
		}
		root = t.Root()
	}
}

// feed feeds the worker t of name if cn holds its watchdog registration; on a loopback
// listener, one made for the tree t's root leads now. Other feeds are dropped (logged once
// per connection). The feed is made under s.mu, so no feed of a worker follows its removal
// from Lookup by more than the one under way.
func (s *Server) feed(cn *conn, name string, t Target) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dogs[name]
	switch {
	case d == nil || d.owner != cn:
		s.warnOnce(cn, "feed "+name, "tcp watchdog: feed of a name not registered on this connection; dropped",
			"worker", name, "remote", cn.remote, "event", "tcp-feed-dropped")
	case s.verify && d.root != t.Root():
		// A process of an earlier run of the worker must not beat for the one running now.
		s.warnOnce(cn, "feed "+name, "tcp watchdog: feed of a registration made for an earlier process of the worker; dropped",
			"worker", name, "remote", cn.remote, "event", "tcp-feed-dropped")
	default:
		t.Feed()
	}
}

// forward queues the packet raw for the receiver of p.Target. On a loopback listener the
// source must be a name cn registered: a forward with another is dropped (logged once per
// connection and source).
func (s *Server) forward(cn *conn, p *Packet, raw []byte) {
	if s.verify && !cn.names[p.Source] {
		s.warnOnce(cn, "source "+p.Source, "tcp watchdog: forward whose source this connection did not register; dropped",
			"worker", p.Target, "source", p.Source, "remote", cn.remote, "event", "tcp-forged-source")
		return
	}
	s.mu.Lock()
	r := s.receivers[p.Target].c
	if r == nil {
		s.mu.Unlock()
		s.warnOnce(cn, "forward "+p.Target, "tcp watchdog: no receiver registered for the target; message dropped",
			"worker", p.Target, "source", p.Source, "remote", cn.remote, "event", "tcp-forward-dropped")
		return
	}
	select {
	case r.out <- bytes.Clone(raw):
		s.mu.Unlock()
		delete(cn.warned, "forward "+p.Target)
		s.log.Debug("tcp watchdog: forwarded", "worker", p.Target, "source", p.Source, "event", "tcp-forward")
	default:
		// It is unregistered as a receiver at once, so the forwards that follow are dropped
		// rather than logged again; closing it ends its reader, which drops the rest.
		delete(s.receivers, p.Target)
		r.c.Close()
		s.mu.Unlock()
		s.log.Warn("tcp watchdog: a receiver cannot keep up; disconnecting it", "worker", p.Target,
			"remote", r.remote, "event", "tcp-slow-receiver", "queued", cap(r.out))
	}
}

// warnOnce logs a problem of cn the first time it happens. Only cn's reader calls it.
func (s *Server) warnOnce(cn *conn, key, msg string, args ...any) {
	if cn.warned[key] || len(cn.warned) >= maxWarned {
		return
	}
	cn.warned[key] = true
	s.log.Warn(msg, args...)
}

// drop removes the registrations cn still holds.
func (s *Server) drop(cn *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, cn)
	for name, r := range s.receivers {
		if r.c == cn {
			delete(s.receivers, name)
			s.log.Info("tcp watchdog: receiver unregistered (connection closed)", "worker", name, "remote", cn.remote, "event", "tcp-unregister")
		}
	}
	for name, d := range s.dogs {
		if d.owner == cn {
			delete(s.dogs, name)
			s.log.Info("tcp watchdog: watchdog unregistered (connection closed)", "worker", name, "remote", cn.remote, "event", "tcp-unregister")
		}
	}
}
