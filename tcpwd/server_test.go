package tcpwd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/shmobj"
)

// wait bounds every wait for the server: generous, for a loaded machine under -race.
const wait = 10 * time.Second

// testServer is a running server and what it logs.
type testServer struct {
	s    *Server
	addr string
	log  *testkit.Buffer
}

// startServer serves on a loopback port until the test ends; workers are the names it
// accepts. Unless opts.Lookup is set, each worker's process tree is this test's: its
// connections, and those of its children, are the workers'. opts.Logger is set here.
func startServer(t *testing.T, opts Options, workers ...string) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, ln, opts, workers...)
}

// serveOn is startServer on the listener ln.
func serveOn(t *testing.T, ln net.Listener, opts Options, workers ...string) *testServer {
	t.Helper()
	ts := &testServer{log: &testkit.Buffer{}}
	if opts.Lookup == nil {
		opts.Lookup = lookup(os.Getpid, workers...)
	}
	opts.Logger = slog.New(slog.NewTextHandler(ts.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := NewServer(opts)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ts.s, ts.addr = s, ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(wait):
			t.Errorf("Serve did not return %v after its context was cancelled", wait)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.conns)+len(s.receivers)+len(s.dogs) != 0 {
			t.Errorf("after Serve: %d connections, %d receivers, %d watchdogs left", len(s.conns), len(s.receivers), len(s.dogs))
		}
		if t.Failed() {
			t.Logf("server log:\n%s", ts.log.String())
		}
	})
	return ts
}

// testTarget is a worker of the tests: its process tree is root's, and each feed beats its
// object (attached for the feed, so that it follows the object published under the name).
type testTarget struct {
	name string
	root func() int
}

func (w testTarget) Root() int { return w.root() }

func (w testTarget) Feed() {
	if seg, err := shmobj.Attach(w.name); err == nil {
		seg.Beat()
		seg.SetKind(shmobj.KindSocket)
		seg.Close()
	}
}

// lookup is the Lookup of the workers names, whose trees are root's.
func lookup(root func() int, names ...string) func(string) (Target, bool) {
	return func(name string) (Target, bool) {
		if slices.Contains(names, name) {
			return testTarget{name: name, root: root}, true
		}
		return nil, false
	}
}

// waitLog waits until the server logged a line containing every one of subs.
func (ts *testServer) waitLog(t *testing.T, subs ...string) string {
	t.Helper()
	var line string
	testkit.WaitFor(t, wait, fmt.Sprintf("a log line with %q", subs), func() bool {
		if l := testkit.LinesWith(ts.log.Lines(), subs...); len(l) > 0 {
			line = l[0]
			return true
		}
		return false
	})
	return line
}

// count returns how many lines the server logged that contain every one of subs.
func (ts *testServer) count(subs ...string) int {
	return len(testkit.LinesWith(ts.log.Lines(), subs...))
}

// objectName returns a name for an object of this test: names fit a packet's 9 bytes, so
// they hold the test process's pid in base 36 and a tag unique among the tests.
func objectName(t *testing.T, tag string) string {
	t.Helper()
	name := "t" + strconv.FormatInt(int64(os.Getpid()), 36) + tag
	if err := ValidateName(name); err != nil {
		t.Fatal(err)
	}
	return name
}

// publish publishes the object name as a worker's monitor does and removes it when the
// test ends.
func publish(t *testing.T, name string) *shmobj.Segment {
	t.Helper()
	seg, err := shmobj.Publish(name, shmobj.PublishOptions{Interval: time.Second, Threshold: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		seg.Close()
		shmobj.Remove(name)
	})
	return seg
}

// served publishes the object of the worker named for tag and serves it, the one worker the
// server accepts, with opts: how most tests start.
func served(t *testing.T, tag string, opts Options) (name string, seg *shmobj.Segment, ts *testServer) {
	t.Helper()
	name = objectName(t, tag)
	seg = publish(t, name)
	return name, seg, startServer(t, opts, name)
}

// client is a test connection to the server.
type client struct {
	t *testing.T
	c net.Conn
}

func dial(t *testing.T, ts *testServer) *client {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c}
}

func (c *client) sendRaw(b []byte) {
	c.t.Helper()
	if _, err := c.c.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) send(p Packet) {
	c.t.Helper()
	b, err := p.MarshalBinary()
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(b)
}

func (c *client) register(name string) {
	c.send(Packet{Head: "head", Cmd: CmdReceive, Source: name})
	c.send(Packet{Head: "head", Cmd: CmdWatchdog, Wdt: WdtRegister, Source: name})
}

func (c *client) feed(name string) {
	c.send(Packet{Head: "head", Cmd: CmdWatchdog, Wdt: WdtFeed, Source: name})
}

// recv reads one packet.
func (c *client) recv() []byte {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(wait))
	b := make([]byte, PacketSize)
	if _, err := io.ReadFull(c.c, b); err != nil {
		c.t.Fatalf("reading a forwarded packet: %v", err)
	}
	return b
}

// closed waits until the server closes the connection.
func (c *client) closed() {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(wait))
	if n, err := c.c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		c.t.Fatalf("read = %d, %v; want the connection closed by the server", n, err)
	}
}

// seq reads the object's heartbeat sequence.
func seq(t *testing.T, seg *shmobj.Segment) uint64 {
	t.Helper()
	n, err := seg.Seq()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitSeq waits until the object's sequence reaches n.
func waitSeq(t *testing.T, seg *shmobj.Segment, n uint64) {
	t.Helper()
	testkit.WaitFor(t, wait, fmt.Sprintf("sequence %d in %s", n, seg.Name()), func() bool { return seq(t, seg) >= n })
}

func TestFeedBeats(t *testing.T) {
	name, seg, ts := served(t, "fb", Options{})
	c := dial(t, ts)
	c.register(name)
	for range 5 {
		c.feed(name)
	}
	waitSeq(t, seg, 5)
	snap, err := seg.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if snap.Record.Kind != shmobj.KindSocket || snap.WorkerPid != 0 {
		t.Errorf("kind %v, worker pid %d; want socket, and no pid written", snap.Record.Kind, snap.WorkerPid)
	}
	ts.waitLog(t, "event=tcp-register", "worker="+name)
	time.Sleep(50 * time.Millisecond)
	if n := seq(t, seg); n != 5 {
		t.Errorf("sequence %d after 5 feeds", n)
	}
}

// TestShortReads sends packets one byte at a time: the server puts them together.
func TestShortReads(t *testing.T) {
	name, seg, ts := served(t, "sr", Options{})
	c := dial(t, ts)
	var all []byte
	for _, p := range []Packet{
		{Cmd: CmdWatchdog, Wdt: WdtRegister, Source: name},
		{Cmd: CmdWatchdog, Wdt: WdtFeed, Source: name},
		{Cmd: CmdWatchdog, Wdt: WdtFeed, Source: name},
	} {
		b, _ := p.MarshalBinary()
		all = append(all, b...)
	}
	for i := range all {
		c.sendRaw(all[i : i+1])
		if i%100 == 0 {
			time.Sleep(time.Millisecond) // let the server see the pieces
		}
	}
	waitSeq(t, seg, 2)
	if strings.Contains(ts.log.String(), "tcp-malformed") {
		t.Error("a packet sent in pieces was taken as malformed")
	}
}

// TestMalformedClosesOnlyItsConnection: a bad packet ends its own connection; another one
// keeps feeding and receiving.
func TestMalformedClosesOnlyItsConnection(t *testing.T) {
	name, seg, ts := served(t, "mc", Options{})
	good := dial(t, ts)
	good.register(name)
	good.feed(name)
	waitSeq(t, seg, 1)

	bad := dial(t, ts)
	b := seedPacket(7, 0, "x", name, "")
	bad.sendRaw(b)
	bad.closed()
	ts.waitLog(t, "event=tcp-malformed", "cmd 7")

	good.feed(name)
	waitSeq(t, seg, 2)
	good.send(Packet{Cmd: CmdForward, Target: name, Source: name, Msg: "still there"})
	if got := cstring(good.recv()[OffMsg:]); got != "still there" {
		t.Errorf("received %q", got)
	}
}

// TestUnknownNameRefused: registering or feeding a name that is not a worker closes the
// connection.
func TestUnknownNameRefused(t *testing.T) {
	_, _, ts := served(t, "un", Options{})
	for _, p := range []Packet{
		{Cmd: CmdReceive, Source: "stranger"},
		{Cmd: CmdWatchdog, Wdt: WdtRegister, Source: "stranger"},
		{Cmd: CmdWatchdog, Wdt: WdtFeed, Source: "stranger"},
	} {
		c := dial(t, ts)
		c.send(p)
		c.closed()
	}
	if n := ts.log.Count("event=tcp-refused"); n != 3 {
		t.Errorf("%d refusals logged, want 3", n)
	}
	ts.s.mu.Lock()
	defer ts.s.mu.Unlock()
	if len(ts.s.receivers)+len(ts.s.dogs) != 0 {
		t.Errorf("a refused name was registered: %v %v", ts.s.receivers, ts.s.dogs)
	}
}

// TestForwardUnchanged: the receiver gets the sender's bytes as they were, garbage after the
// NULs included; a forward to no receiver is dropped and the sender stays connected.
func TestForwardUnchanged(t *testing.T) {
	a, b := objectName(t, "fa"), objectName(t, "fb")
	segB := publish(t, b)
	ts := startServer(t, Options{}, a, b)
	recv := dial(t, ts)
	recv.send(Packet{Cmd: CmdReceive, Source: a})
	ts.waitLog(t, "event=tcp-receiver", "worker="+a)

	sender := dial(t, ts)
	sender.register(b)
	raw := seedPacket(CmdForward, 99, a, b, "this message is from b to a")
	sender.sendRaw(raw)
	if got := recv.recv(); !bytes.Equal(got, raw) {
		t.Errorf("forwarded packet changed:\ngot  %q\nwant %q", got, raw)
	}

	// No receiver for "nobody": dropped, logged once however often it is tried.
	for range 3 {
		sender.send(Packet{Cmd: CmdForward, Target: "nobody", Source: b, Msg: "lost"})
	}
	sender.feed(b)
	waitSeq(t, segB, 1)
	ts.waitLog(t, "event=tcp-forward-dropped", "worker=nobody")
	if n := ts.log.Count("event=tcp-forward-dropped"); n != 1 {
		t.Errorf("a dropped forward logged %d times, want once", n)
	}
}

// TestDisconnectUnregisters: the registrations of a connection that ends are dropped; a
// feed of the name on another connection is then dropped too.
func TestDisconnectUnregisters(t *testing.T) {
	name, other := objectName(t, "du"), objectName(t, "do")
	seg := publish(t, name)
	ts := startServer(t, Options{}, name, other)
	c := dial(t, ts)
	c.register(name)
	c.feed(name)
	waitSeq(t, seg, 1)
	c.c.Close()
	testkit.WaitFor(t, wait, "the registrations to go", func() bool {
		ts.s.mu.Lock()
		defer ts.s.mu.Unlock()
		return len(ts.s.receivers)+len(ts.s.dogs)+len(ts.s.conns) == 0
	})
	if n := ts.log.Count("event=tcp-unregister"); n != 2 {
		t.Errorf("%d unregistrations logged, want 2 (receiver and watchdog)", n)
	}

	c = dial(t, ts)
	c.send(Packet{Cmd: CmdReceive, Source: other})
	c.feed(name)
	c.send(Packet{Cmd: CmdForward, Target: name, Source: other, Msg: "gone"})
	ts.waitLog(t, "event=tcp-feed-dropped", "worker="+name)
	ts.waitLog(t, "event=tcp-forward-dropped", "worker="+name)
	if n := seq(t, seg); n != 1 {
		t.Errorf("sequence %d: a feed without registration beat", n)
	}
}

// TestTakeoverRefused: a name registered by a connection of the worker's running process is
// not taken by another connection, as receiver or watchdog: those are refused and closed,
// and the first keeps feeding and receiving.
func TestTakeoverRefused(t *testing.T) {
	name, seg, ts := served(t, "tr", Options{})
	first := dial(t, ts)
	first.register(name)
	ts.waitLog(t, "event=tcp-register", "worker="+name)
	for _, p := range []Packet{
		{Cmd: CmdReceive, Source: name},
		{Cmd: CmdWatchdog, Wdt: WdtRegister, Source: name},
	} {
		other := dial(t, ts)
		other.send(p)
		other.closed()
	}
	if n := ts.count("event=tcp-refused", errTaken.Error()); n != 2 {
		t.Errorf("%d takeovers refused, want 2", n)
	}
	first.feed(name)
	waitSeq(t, seg, 1)
	first.send(Packet{Cmd: CmdForward, Target: name, Source: name, Msg: "still mine"})
	if got := cstring(first.recv()[OffMsg:]); got != "still mine" {
		t.Errorf("received %q", got)
	}
}

// elsewhere is a listener that reports a non-loopback address, as one on 0.0.0.0 does.
type elsewhere struct{ net.Listener }

func (elsewhere) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4zero, Port: 5005} }

// TestNewestRegistrationWinsElsewhere: on a listener that is not on loopback, nothing is
// verified: a second connection takes over a name, the first one's feeds are dropped, and
// its end does not unregister the second; a forward may carry any source.
func TestNewestRegistrationWinsElsewhere(t *testing.T) {
	name := objectName(t, "nw")
	seg := publish(t, name)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := serveOn(t, elsewhere{ln}, Options{Lookup: lookup(func() int { return 0 }, name)}, name)
	ts.addr = ln.Addr().String()
	ts.waitLog(t, "event=tcp-unverified")
	first, second := dial(t, ts), dial(t, ts)
	first.register(name)
	ts.waitLog(t, "event=tcp-register", "replaced=false")
	second.register(name)
	ts.waitLog(t, "event=tcp-register", "replaced=true")
	first.feed(name)
	ts.waitLog(t, "event=tcp-feed-dropped")
	first.c.Close()
	second.feed(name)
	waitSeq(t, seg, 1)
	sender := dial(t, ts)
	sender.send(Packet{Cmd: CmdForward, Target: name, Source: "x", Msg: "to the newest"})
	if got := cstring(second.recv()[OffMsg:]); got != "to the newest" {
		t.Errorf("received %q", got)
	}
	if n := seq(t, seg); n != 1 {
		t.Errorf("sequence %d, want 1 (only the newest registration feeds)", n)
	}
}

// TestSlowReceiver: a receiver that does not read is disconnected; its sender is never
// blocked and keeps feeding.
func TestSlowReceiver(t *testing.T) {
	a, b := objectName(t, "sa"), objectName(t, "sb")
	segB := publish(t, b)
	ts := startServer(t, Options{QueueLen: 2, WriteTimeout: 200 * time.Millisecond}, a, b)
	slow := dial(t, ts)
	slow.send(Packet{Cmd: CmdReceive, Source: a})
	ts.waitLog(t, "event=tcp-receiver")
	sender := dial(t, ts)
	sender.register(b)
	start := time.Now()
	// Far more than the socket buffers hold: the server's writes to slow must stall.
	var n uint64
	for !strings.Contains(ts.log.String(), "worker="+a) || !containsAny(ts.log.String(), "tcp-slow-receiver", "tcp-write-failed") {
		if time.Since(start) > wait {
			t.Fatal("the receiver that does not read was never disconnected")
		}
		sender.send(Packet{Cmd: CmdForward, Target: a, Source: b, Msg: strings.Repeat("x", 500)})
		sender.feed(b)
		n++
	}
	waitSeq(t, segB, n)
	testkit.WaitFor(t, wait, "the slow receiver's connection to end", func() bool {
		ts.s.mu.Lock()
		defer ts.s.mu.Unlock()
		return len(ts.s.conns) == 1 && ts.s.receivers[a].c == nil
	})
}

func containsAny(s string, subs ...string) bool {
	return slices.ContainsFunc(subs, func(sub string) bool { return strings.Contains(s, sub) })
}

// TestGarbage: connections that send random bytes, or part of a packet, never take the
// server down; a good client is served all along.
func TestGarbage(t *testing.T) {
	name, seg, ts := served(t, "gb", Options{})
	good := dial(t, ts)
	good.register(name)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			c, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			r := rand.New(rand.NewPCG(uint64(i), 1))
			b := make([]byte, r.IntN(3*PacketSize))
			for j := range b {
				b[j] = byte(r.Uint32())
			}
			c.Write(b)
		})
	}
	wg.Wait()
	for i := range 10 {
		good.feed(name)
		waitSeq(t, seg, uint64(i+1))
	}
}

func TestNewServerRejects(t *testing.T) {
	every := func(string) (Target, bool) { return testTarget{root: func() int { return 0 }}, true }
	for _, o := range []Options{{}, {Lookup: every, QueueLen: -1}, {Lookup: every, WriteTimeout: -time.Second},
		{Lookup: every, PacketTimeout: -time.Second}, {Lookup: every, MaxConns: -1}} {
		if _, err := NewServer(o); err == nil || !strings.HasPrefix(err.Error(), "tcpwd: ") {
			t.Errorf("NewServer(%+v) = %v, want an error", o, err)
		}
	}
}
