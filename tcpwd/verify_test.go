package tcpwd

import (
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// TestForgedSourceDropped: a forward whose source the sender did not register is dropped
// (logged once), whether the sender registered another name or none; one with its own name
// goes through.
func TestForgedSourceDropped(t *testing.T) {
	a, b := objectName(t, "ga"), objectName(t, "gb")
	ts := startServer(t, Options{}, a, b)
	recv := dial(t, ts)
	recv.send(Packet{Cmd: CmdReceive, Source: a})
	ts.waitLog(t, "event=tcp-receiver", "worker="+a)
	sender, stranger := dial(t, ts), dial(t, ts)
	sender.send(Packet{Cmd: CmdReceive, Source: b})
	ts.waitLog(t, "event=tcp-receiver", "worker="+b)
	for range 3 {
		sender.send(Packet{Cmd: CmdForward, Target: a, Source: a, Msg: "forged"})
		stranger.send(Packet{Cmd: CmdForward, Target: a, Source: b, Msg: "forged"})
	}
	sender.send(Packet{Cmd: CmdForward, Target: a, Source: b, Msg: "from b"})
	if got := cstring(recv.recv()[OffMsg:]); got != "from b" {
		t.Errorf("received %q first, want the forward from b", got)
	}
	if n := ts.count("event=tcp-forged-source"); n != 2 {
		t.Errorf("%d forged forwards logged, want 2 (once per connection)", n)
	}
}

// TestRefusedOutsideTree: a registration from a process outside the worker's tree is
// refused after waiting for the worker's next process, and the connection closed.
func TestRefusedOutsideTree(t *testing.T) {
	name := objectName(t, "ot")
	// The worker's process: a helper connected to a listener of its own.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	other, _ := startHelper(t, nil, "client", ln.Addr().String())
	ts := startServer(t, Options{Lookup: lookup(other.Pid, name)}, name)
	c := dial(t, ts)
	began := time.Now()
	c.send(Packet{Cmd: CmdWatchdog, Wdt: WdtRegister, Source: name})
	c.closed()
	if took := time.Since(began); took < verifyWait {
		t.Errorf("refused after %v, want a wait of %v for the worker's next process", took, verifyWait)
	}
	ts.waitLog(t, "event=tcp-refused", "no process of the tree of pid "+strconv.Itoa(other.Pid()))
}

// TestRegistrationWaitsForProcess: a registration that arrives while the worker runs no
// process (its start not yet noted) is accepted once its process is known.
func TestRegistrationWaitsForProcess(t *testing.T) {
	name := objectName(t, "wp")
	seg := publish(t, name)
	var root atomic.Int64
	ts := startServer(t, Options{Lookup: lookup(func() int { return int(root.Load()) }, name)}, name)
	c := dial(t, ts)
	c.register(name)
	c.feed(name)
	time.Sleep(5 * verifyPoll)
	root.Store(int64(os.Getpid()))
	waitSeq(t, seg, 1)
	if n := ts.count("event=tcp-refused"); n != 0 {
		t.Errorf("%d refusals", n)
	}
}

// TestRestartedWorkerTakesOver: the registrations made for an earlier process of the worker
// give way to those of its next process, and their feeds are dropped from then on.
func TestRestartedWorkerTakesOver(t *testing.T) {
	name := objectName(t, "rw")
	seg := publish(t, name)
	var root atomic.Int64
	root.Store(int64(os.Getpid()))
	ts := startServer(t, Options{Lookup: lookup(func() int { return int(root.Load()) }, name)}, name)
	old := dial(t, ts)
	old.register(name)
	old.feed(name)
	waitSeq(t, seg, 1)

	var start io.WriteCloser
	next, _ := startHelper(t, func(cmd *exec.Cmd) {
		var err error
		if start, err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
	}, "client", ts.addr, name)
	root.Store(int64(next.Pid())) // the fleet has noted the new process
	old.feed(name)
	ts.waitLog(t, "event=tcp-feed-dropped", "earlier process")
	if n := seq(t, seg); n != 1 {
		t.Errorf("sequence %d: the earlier process's feed beat", n)
	}
	start.Write([]byte("go\n"))
	ts.waitLog(t, "event=tcp-receiver", "replaced=true")
	ts.waitLog(t, "event=tcp-register", "replaced=true")
	waitSeq(t, seg, 3) // the new process feeds
}
