package notify

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// Options configure [Listen]. The zero value listens on a random abstract address and
// accepts every sender.
type Options struct {
	// Addr is the address to bind, as NOTIFY_SOCKET spells it: "@name" for an abstract
	// address, else a file path (removed by Close). "" = a random abstract address,
	// "@shmmon-notify/PID/RANDOM".
	Addr string
	// Allow, when set, is called on the receiving goroutine with each sender's pid; a
	// message it refuses is dropped. It must be safe to call from that goroutine.
	Allow func(pid int) bool
	// Logger gets the debug lines of dropped messages; nil = slog.Default().
	Logger *slog.Logger
}

// Listener receives notify messages on one socket. Create it with [Listen].
type Listener struct {
	conn    *net.UnixConn
	addr    string
	path    string // file to remove on Close; "" for an abstract address
	allow   func(int) bool
	log     *slog.Logger
	c       chan Message
	closing chan struct{}
	done    chan struct{}
	once    sync.Once
	err     error

	// Owned by the receiving goroutine: the rate limit of the drop log.
	drops   int
	lastLog time.Time
}

// Listen binds a datagram socket per opts and starts receiving on it. The error wraps the
// system's: errors.Is(err, syscall.EADDRINUSE) when the address is taken.
func Listen(opts Options) (*Listener, error) {
	if err := supported(); err != nil {
		return nil, fmt.Errorf("notify: listen: %w", err)
	}
	addr := opts.Addr
	if addr == "" {
		var b [8]byte
		rand.Read(b[:])
		addr = fmt.Sprintf("@shmmon-notify/%d/%s", os.Getpid(), hex.EncodeToString(b[:]))
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notify: listen %q: %w", addr, err)
	}
	if err := passCred(conn); err != nil {
		conn.Close()
		if !strings.HasPrefix(addr, "@") {
			os.Remove(addr)
		}
		return nil, fmt.Errorf("notify: listen %q: %w", addr, err)
	}
	l := &Listener{conn: conn, addr: addr, allow: opts.Allow, log: opts.Logger,
		c: make(chan Message, 64), closing: make(chan struct{}), done: make(chan struct{})}
	if !strings.HasPrefix(addr, "@") {
		l.path = addr
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	go l.receive()
	return l, nil
}

// Addr returns the address as NOTIFY_SOCKET gives it to a program: "@name" or a path.
func (l *Listener) Addr() string { return l.addr }

// Messages returns the channel of the accepted messages. It is closed once [Listener.Close]
// has stopped the receiving goroutine. While nobody receives, the listener stops reading,
// and senders wait in the kernel's queue.
func (l *Listener) Messages() <-chan Message { return l.c }

// Close closes the socket (removing its file, for a path), stops the receiving goroutine and
// waits for it. It is safe to call more than once; later calls return the first one's error.
func (l *Listener) Close() error {
	l.once.Do(func() {
		close(l.closing)
		l.err = l.conn.Close()
		<-l.done
		if l.path != "" {
			if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				l.err = errors.Join(l.err, err)
			}
		}
		if l.err != nil {
			l.err = fmt.Errorf("notify: close %q: %w", l.addr, l.err)
		}
	})
	return l.err
}

// receive reads datagrams until the socket is closed.
func (l *Listener) receive() {
	defer close(l.done)
	defer close(l.c)
	buf := make([]byte, MaxSize)
	oob := make([]byte, oobSize)
	for {
		n, oobn, flags, _, err := l.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			l.dropped(0, "read: "+err.Error())
			time.Sleep(10 * time.Millisecond) // a persistent error must not spin
			continue
		}
		m, why := l.accept(buf[:n], oob[:oobn], flags)
		if why != "" {
			l.dropped(m.Pid, why)
			continue
		}
		select {
		case l.c <- m:
		case <-l.closing:
			return
		}
	}
}

// accept authenticates and parses one datagram; why says why it is dropped ("" = kept).
func (l *Listener) accept(b, oob []byte, flags int) (m Message, why string) {
	cred, err := credentials(oob)
	switch {
	case flags&msgTrunc != 0:
		return Message{Pid: cred.pid}, fmt.Sprintf("longer than %d bytes", MaxSize)
	case flags&msgCtrunc != 0:
		return Message{Pid: cred.pid}, "control data truncated (too many file descriptors?)"
	case err != nil:
		return Message{}, err.Error()
	case l.allow != nil && !l.allow(cred.pid):
		return Message{Pid: cred.pid}, "sender not allowed"
	}
	m, err = Parse(b)
	m.Pid, m.UID, m.GID = cred.pid, cred.uid, cred.gid
	if err != nil {
		return m, err.Error()
	}
	return m, ""
}

// dropped logs a dropped message at debug level, at most one line a second; the line
// counts the drops since the previous one.
func (l *Listener) dropped(pid int, why string) {
	l.drops++
	now := time.Now()
	if !l.lastLog.IsZero() && now.Sub(l.lastLog) < time.Second {
		return
	}
	l.log.Debug("notify message dropped", "addr", l.addr, "pid", pid, "reason", why, "dropped", l.drops)
	l.drops, l.lastLog = 0, now
}

// cred is a sender's credentials.
type cred struct{ pid, uid, gid int }
