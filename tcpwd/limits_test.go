package tcpwd

import (
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
)

// TestPacketTimeout: a connection that stops in the middle of a packet is closed once the
// timeout has passed since the packet began; one that is idle between packets is not.
func TestPacketTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	name, seg, ts := served(t, "pt", Options{PacketTimeout: timeout})
	idle, partial := dial(t, ts), dial(t, ts)
	b, _ := Packet{Cmd: CmdWatchdog, Wdt: WdtRegister, Source: name}.MarshalBinary()
	began := time.Now()
	partial.sendRaw(b[:100])
	partial.closed()
	if took := time.Since(began); took < timeout {
		t.Errorf("a partial packet was closed after %v, before its timeout of %v", took, timeout)
	}
	ts.waitLog(t, "event=tcp-timeout")

	time.Sleep(timeout) // idle: 2 timeouts in all, not a byte sent
	if !testkit.StillOpen(idle.c) {
		t.Fatal("an idle connection was closed")
	}
	idle.register(name)
	idle.feed(name)
	waitSeq(t, seg, 1)
}

// TestMaxConns: the connections over the cap are closed at once and logged once; one
// accepted again after another ended.
func TestMaxConns(t *testing.T) {
	name := objectName(t, "mx")
	ts := startServer(t, Options{MaxConns: 2}, name)
	conns := func() int {
		ts.s.mu.Lock()
		defer ts.s.mu.Unlock()
		return len(ts.s.conns)
	}
	first, second := dial(t, ts), dial(t, ts)
	testkit.WaitFor(t, wait, "2 connections", func() bool { return conns() == 2 })
	for range 4 {
		dial(t, ts).closed()
	}
	if n := ts.count("event=tcp-too-many", "max=2"); n != 1 {
		t.Errorf("%d lines for 4 connections over the cap, want 1 (at most one every %v)", n, capLogEvery)
	}
	if !testkit.StillOpen(first.c) || !testkit.StillOpen(second.c) {
		t.Error("a connection under the cap was closed")
	}
	first.c.Close()
	testkit.WaitFor(t, wait, "the first connection to end", func() bool { return conns() == 1 })
	third := dial(t, ts)
	if !testkit.StillOpen(third.c) {
		t.Error("a connection under the cap again was closed")
	}
}

// flaky is a listener whose Accept fails with fails[i] on its i-th call (nil: it returns a
// connection), records when each call came, and then blocks until closed.
type flaky struct {
	fails []error

	mu     sync.Mutex
	calls  []time.Time
	closed chan struct{}
	once   sync.Once
}

func (l *flaky) Accept() (net.Conn, error) {
	l.mu.Lock()
	i := len(l.calls)
	l.calls = append(l.calls, time.Now())
	l.mu.Unlock()
	if i < len(l.fails) {
		if l.fails[i] != nil {
			return nil, l.fails[i]
		}
		c, _ := net.Pipe()
		return c, nil
	}
	<-l.closed
	return nil, net.ErrClosed
}

func (l *flaky) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *flaky) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5005} }

// TestAcceptBackoff: failed accepts are retried after a delay that doubles from 5ms to 1s,
// and starts again at 5ms after an accept that succeeded.
func TestAcceptBackoff(t *testing.T) {
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	ms := time.Millisecond
	// The delay after each failure; a success resets it.
	delays := []time.Duration{5 * ms, 10 * ms, 20 * ms, 40 * ms, 80 * ms, 160 * ms, 320 * ms, 640 * ms, time.Second}
	fails := make([]error, len(delays))
	for i := range fails {
		fails[i] = emfile
	}
	fails = append(fails, nil, emfile, emfile)
	delays = append(delays, 0, 5*ms, 10*ms)
	ln := &flaky{fails: fails, closed: make(chan struct{})}
	ts := serveOn(t, ln, Options{}, "any")
	testkit.WaitFor(t, wait, "every scripted accept", func() bool {
		ln.mu.Lock()
		defer ln.mu.Unlock()
		return len(ln.calls) > len(fails)
	})
	ln.mu.Lock()
	calls := ln.calls
	ln.mu.Unlock()
	for i, d := range delays {
		gap := calls[i+1].Sub(calls[i])
		// A timer never fires early; on a loaded machine it may fire late.
		if gap < d || gap > d+300*ms {
			t.Errorf("accept %d came %v after the one before, want %v", i+1, gap, d)
		}
	}
	if n := ts.count("event=tcp-accept-failed", "retry_in=1s"); n != 1 {
		t.Errorf("%d failures retried in 1s, want 1:\n%s", n, strings.Join(ts.log.Lines(), "\n"))
	}
}
