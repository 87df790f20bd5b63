package tcpwd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/shmmon/shmmon/shmobj"
)

// Defaults of [Options].
const (
	DefaultWriteTimeout = 5 * time.Second
	DefaultQueueLen     = 64
)

// recheckEvery is how often a watchdog registration checks that its object is still the one
// the name shows (a stat system call), and how often it retries attaching a missing one.
const recheckEvery = time.Second

// maxWarned bounds the problems a connection remembers having logged.
const maxWarned = 64

// Options configure a [Server].
type Options struct {
	// IsWorker reports whether name is a worker of the running configuration: the only names
	// a connection may register or feed. Required. It is called from many goroutines and must
	// not block.
	IsWorker func(name string) bool
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
}

// Server serves the protocol of the package documentation on the connections of a listener.
// Create it with [NewServer] and run it with [Server.Serve]. Forwarded packets are queued
// per receiver and written by a goroutine of that receiver, so a slow or stuck receiver never
// blocks the server or the sender: it is disconnected instead (see [Options]).
type Server struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	conns     map[*conn]struct{}
	receivers map[string]*conn
	dogs      map[string]*dog
}

// conn is one client connection. Its reader goroutine owns warned.
type conn struct {
	c      net.Conn
	remote string
	out    chan []byte   // forwarded packets waiting to be written
	done   chan struct{} // closed when the reader ends: the writer stops
	warned map[string]bool
}

// dog is the watchdog registration of one name: the connection that may feed it and the
// worker's object. s.mu guards it.
type dog struct {
	name     string
	owner    *conn
	seg      *shmobj.Segment // nil while the object cannot be attached
	checked  time.Time       // last check of seg, or attach attempt
	failing  bool            // the last attach failed (logged once)
	faulted  bool            // the last beat faulted: attach again at the next check
	feedsOff bool            // a beat error was logged
}

// NewServer returns a server with opts. It fails when opts.IsWorker is nil or a value is
// negative.
func NewServer(opts Options) (*Server, error) {
	switch {
	case opts.IsWorker == nil:
		return nil, errors.New("tcpwd: Options.IsWorker is required")
	case opts.WriteTimeout < 0:
		return nil, fmt.Errorf("tcpwd: WriteTimeout %v: want 0 (default) or more", opts.WriteTimeout)
	case opts.QueueLen < 0:
		return nil, fmt.Errorf("tcpwd: QueueLen %d: want 0 (default) or more", opts.QueueLen)
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.QueueLen == 0 {
		opts.QueueLen = DefaultQueueLen
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{opts: opts, log: log, conns: map[*conn]struct{}{},
		receivers: map[string]*conn{}, dogs: map[string]*dog{}}, nil
}

// Serve accepts connections on ln and serves them until ctx is cancelled; it then closes ln
// and every connection, waits for their goroutines, releases every object it attached and
// returns nil. It returns the error of ln when ln fails for another reason (after the same
// cleanup). Call it once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	var err error
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
			s.log.Warn("tcp watchdog: accept failed; retrying", "event", "tcp-accept-failed", "err", aerr)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		cn := &conn{c: c, remote: c.RemoteAddr().String(), out: make(chan []byte, s.opts.QueueLen),
			done: make(chan struct{}), warned: map[string]bool{}}
		s.mu.Lock()
		s.conns[cn] = struct{}{}
		s.mu.Unlock()
		wg.Go(func() { s.handle(cn) })
	}
	ln.Close()
	s.mu.Lock()
	for cn := range s.conns {
		cn.c.Close()
	}
	s.mu.Unlock()
	wg.Wait()
	return err
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
	// packet that arrives in pieces back together.
	buf := make([]byte, PacketSize)
	for {
		if _, err := io.ReadFull(cn.c, buf); err != nil {
			switch {
			case errors.Is(err, io.EOF):
				s.log.Debug("tcp watchdog: disconnected", "remote", cn.remote, "event", "tcp-disconnect")
			case errors.Is(err, io.ErrUnexpectedEOF):
				s.log.Warn("tcp watchdog: disconnected in the middle of a packet", "remote", cn.remote, "event", "tcp-disconnect")
			case errors.Is(err, net.ErrClosed): // closed by the server: logged where
			default:
				s.log.Warn("tcp watchdog: connection lost", "remote", cn.remote, "event", "tcp-disconnect", "err", err)
			}
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
	if !s.opts.IsWorker(p.Source) {
		s.log.Warn("tcp watchdog: not a worker of the config; refusing it and closing the connection", "worker", p.Source,
			"remote", cn.remote, "event", "tcp-refused", "cmd", p.Cmd, "wdt", p.Wdt)
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case p.Cmd == CmdReceive:
		old := s.receivers[p.Source]
		s.receivers[p.Source] = cn
		s.log.Info("tcp watchdog: receiver registered", "worker", p.Source, "remote", cn.remote,
			"event", "tcp-receiver", "replaced", old != nil && old != cn)
	case p.Wdt == WdtRegister:
		old := s.dogs[p.Source]
		if old != nil {
			old.close()
		}
		d := &dog{name: p.Source, owner: cn}
		s.dogs[p.Source] = d
		s.log.Info("tcp watchdog: watchdog registered", "worker", p.Source, "remote", cn.remote,
			"event", "tcp-register", "replaced", old != nil && old.owner != cn)
		d.check(s.log, time.Now())
	default:
		d := s.dogs[p.Source]
		if d == nil || d.owner != cn {
			s.warnOnce(cn, "feed "+p.Source, "tcp watchdog: feed of a name not registered on this connection; dropped",
				"worker", p.Source, "remote", cn.remote, "event", "tcp-feed-dropped")
			return true
		}
		d.feed(s.log, time.Now())
	}
	return true
}

// forward queues the packet raw for the receiver of p.Target.
func (s *Server) forward(cn *conn, p *Packet, raw []byte) {
	s.mu.Lock()
	r := s.receivers[p.Target]
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
		if r == cn {
			delete(s.receivers, name)
			s.log.Info("tcp watchdog: receiver unregistered (connection closed)", "worker", name, "remote", cn.remote, "event", "tcp-unregister")
		}
	}
	for name, d := range s.dogs {
		if d.owner == cn {
			d.close()
			delete(s.dogs, name)
			s.log.Info("tcp watchdog: watchdog unregistered (connection closed)", "worker", name, "remote", cn.remote, "event", "tcp-unregister")
		}
	}
}

// feed beats d's object. s.mu must be held.
func (d *dog) feed(log *slog.Logger, now time.Time) {
	if now.Sub(d.checked) >= recheckEvery {
		d.check(log, now)
	}
	if d.seg == nil || d.faulted {
		return // until the next check attaches it
	}
	err := d.seg.Beat()
	if err == nil {
		err = d.seg.SetKind(shmobj.KindSocket)
	}
	if err != nil {
		// A fault: the object shrank under the mapping. The next check attaches it again.
		d.faulted = true
		if !d.feedsOff {
			log.Warn("tcp watchdog: cannot beat the worker's object", "worker", d.name, "event", "tcp-beat-failed", "err", err)
			d.feedsOff = true
		}
		return
	}
	d.feedsOff = false
}

// check makes sure d's object is the one its name shows now, attaching it (again) when it is
// not. s.mu must be held.
func (d *dog) check(log *slog.Logger, now time.Time) {
	d.checked = now
	if d.seg != nil {
		why := d.seg.Verify()
		if why == nil && !d.faulted {
			if retired, err := d.seg.Retired(); err != nil || retired {
				why = errors.New("retired by its monitor")
				if err != nil {
					why = err
				}
			}
		}
		if why == nil && !d.faulted {
			return
		}
		if why == nil {
			why = errors.New("memory fault")
		}
		log.Info("tcp watchdog: the worker's object changed; attaching it again", "worker", d.name, "event", "tcp-reattach", "err", why)
		d.close()
	}
	seg, err := shmobj.Attach(d.name)
	if err != nil {
		if !d.failing {
			log.Warn("tcp watchdog: cannot attach the worker's object; retrying every second", "worker", d.name,
				"event", "tcp-attach-failed", "err", err)
			d.failing = true
		}
		return
	}
	if d.failing {
		log.Info("tcp watchdog: attached the worker's object", "worker", d.name, "event", "tcp-attach")
	}
	d.seg, d.failing, d.faulted = seg, false, false
}

// close releases d's object. s.mu must be held.
func (d *dog) close() {
	if d.seg != nil {
		d.seg.Close()
		d.seg = nil
	}
}
