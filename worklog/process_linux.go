package worklog

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmmon/shmmon/proc"
)

// ProcessArg is the first argument of the log process: `shmmon log-writer [--max-size N]
// [--keep N] PATH`, started by [Open] (as the program that calls it, os.Executable), with its
// starter's connection as file descriptor 3.
const ProcessArg = "log-writer"

// message is what the log process and its clients say to each other, one per packet (a
// SOCK_SEQPACKET connection keeps them apart): from a client, "pipes", with the read ends of
// a run's stdout and stderr attached (SCM_RIGHTS), and "options", the rotation the client's
// configuration wants (a serve whose configuration changed may find the log process of the
// last); from the log process, its status, on connect and after every change.
type message struct {
	Op      string `json:"op,omitempty"`       // "pipes" or "options", from a client
	MaxSize int64  `json:"max_size,omitempty"` // options: Options.MaxSize
	Keep    int    `json:"keep,omitempty"`     // options: Options.Keep
	Written int64  `json:"written,omitempty"`  // bytes of output written since the log process began
	Dropped int64  `json:"dropped,omitempty"`  // bytes of output dropped since the log process began
	Error   string `json:"error,omitempty"`    // why the file cannot be written now; "" when it can
}

// Main runs the log process when args (os.Args) ask for it, as their second element
// [ProcessArg]; it returns the exit code and true, or false when args are not its. The shmmon
// command calls it first thing; a test binary whose tests start log processes calls it from
// its TestMain.
func Main(args []string) (int, bool) {
	if len(args) < 2 || args[1] != ProcessArg {
		return 0, false
	}
	fs := flag.NewFlagSet(ProcessArg, flag.ContinueOnError)
	maxSize := fs.Int64("max-size", DefaultMaxSize, "rotate at this many bytes")
	keep := fs.Int("keep", DefaultKeep, "old files kept")
	if err := fs.Parse(args[2:]); err != nil || fs.NArg() != 1 {
		fmt.Fprintf(os.Stderr, "usage: %s %s [--max-size N] [--keep N] PATH, started by shmmon\n", args[0], ProcessArg)
		return 2, true
	}
	o := Options{Path: fs.Arg(0), MaxSize: *maxSize, Keep: *keep}
	if err := o.ValidateResolved(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2, true
	}
	starter, err := net.FileConn(os.NewFile(3, "starter"))
	uc, ok := starter.(*net.UnixConn)
	if err != nil || !ok {
		fmt.Fprintf(os.Stderr, "%s: file descriptor 3 is not its starter's connection (%v)\n", ProcessArg, err)
		return 2, true
	}
	run(o, uc)
	return 0, true
}

// logProcess is the running log process: the file, what its readers queued, its clients.
type logProcess struct {
	file *file
	q    *queue

	written, dropped atomic.Int64
	errText          atomic.Value // string: the file's last error, "" while it is written
	// maxSize and keep are the rotation the writer applies from its next batch on.
	maxSize atomic.Int64
	keep    atomic.Int64

	mu    sync.Mutex
	conns map[*net.UnixConn]bool
	pipes int
	quit  chan struct{} // closed once no client and no pipe is left (or on SIGTERM)
	ended bool
}

// run serves the log file at o.Path until no client is connected and no pipe is open (or
// SIGTERM), then writes what it holds and returns.
func run(o Options, starter *net.UnixConn) {
	o = o.WithDefaults()
	p := &logProcess{file: &file{path: o.Path, max: o.MaxSize, keep: o.Keep}, q: newQueue(Buffer),
		conns: map[*net.UnixConn]bool{}, quit: make(chan struct{})}
	p.errText.Store("")
	p.maxSize.Store(o.MaxSize)
	p.keep.Store(int64(o.Keep))
	// Its group is its own: the terminal's ^C and a serve's end are not its. SIGTERM ends it
	// at once, after writing what it holds.
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() {
		select {
		case <-term:
			p.end()
		case <-p.quit:
		}
	}()
	// Listening before the starter hears from it: a Log opened for the file once Open has
	// returned finds this process, rather than starting another.
	addr := Addr(o.Path)
	if ln, err := listenAt(addr); err == nil {
		go p.accept(ln)
	} else {
		go p.listen(addr)
	}
	var writer sync.WaitGroup
	writer.Go(p.write)
	p.serve(starter)
	go p.status()
	<-p.quit
	p.q.close()
	writer.Wait()
	p.file.close()
}

// end closes quit once.
func (p *logProcess) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.ended {
		p.ended = true
		close(p.quit)
	}
}

// release ends the process once nothing is left to serve. p.mu must be held.
func (p *logProcess) release() {
	if len(p.conns) == 0 && p.pipes == 0 && !p.ended {
		p.ended = true
		close(p.quit)
	}
}

// listen listens at addr, the address a serve started again finds it at, and takes the
// connections of root and its own user there until quit. The address may still be held for a
// moment by the log process it replaces (on its way out: its program ended and its starter
// went away): it tries again for 5 seconds. Held for longer (by a process of another user,
// since its starter found none of its own there), it serves its starter only.
func (p *logProcess) listen(addr string) {
	var ln *net.UnixListener
	for deadline := time.Now().Add(5 * time.Second); ; {
		var err error
		if ln, err = listenAt(addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return
		}
		select {
		case <-p.quit:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.accept(ln)
}

// listenAt listens at the abstract address addr.
func listenAt(addr string) (*net.UnixListener, error) {
	return net.ListenUnix("unixpacket", &net.UnixAddr{Name: addr, Net: "unixpacket"})
}

// accept takes the connections of root and its own user at ln until quit.
func (p *logProcess) accept(ln *net.UnixListener) {
	go func() { <-p.quit; ln.Close() }()
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if peer, err := proc.PeerOf(c); err != nil || peer.Uid != 0 && int(peer.Uid) != os.Geteuid() {
			c.Close()
			continue
		}
		p.serve(c)
	}
}

// serve takes c as a client: it is sent the status now, and its pipes are read.
func (p *logProcess) serve(c *net.UnixConn) {
	p.mu.Lock()
	if p.ended {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.conns[c] = true
	p.mu.Unlock()
	p.send(c, p.current())
	go p.client(c)
}

// client reads c's messages until it closes.
func (p *logProcess) client(c *net.UnixConn) {
	defer func() {
		c.Close()
		p.mu.Lock()
		delete(p.conns, c)
		p.release()
		p.mu.Unlock()
	}()
	buf := make([]byte, 512)
	oob := make([]byte, unix.CmsgSpace(2*4))
	for {
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 {
			return
		}
		fds := rights(oob[:oobn])
		var m message
		err = json.Unmarshal(buf[:n], &m)
		if o := (Options{MaxSize: m.MaxSize, Keep: m.Keep}); err == nil && m.Op == "options" && len(fds) == 0 && o.ValidateResolved() == nil {
			p.maxSize.Store(o.MaxSize)
			p.keep.Store(int64(o.Keep))
			continue
		}
		if err != nil || m.Op != "pipes" || len(fds) != 2 {
			for _, fd := range fds {
				unix.Close(fd)
			}
			continue
		}
		p.mu.Lock()
		p.pipes += 2
		p.mu.Unlock()
		go p.read(os.NewFile(uintptr(fds[0]), "stdout"), TagOut)
		go p.read(os.NewFile(uintptr(fds[1]), "stderr"), TagErr)
	}
}

// rights returns the file descriptors passed in a message's control data.
func rights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for i := range msgs {
		if r, err := unix.ParseUnixRights(&msgs[i]); err == nil {
			fds = append(fds, r...)
		}
	}
	return fds
}

// read reads one stream of a program until every writer closed it, queueing its lines at
// once: nothing here waits for the file.
func (p *logProcess) read(f *os.File, tag string) {
	defer func() {
		f.Close()
		p.mu.Lock()
		p.pipes--
		p.release()
		p.mu.Unlock()
	}()
	buf := make([]byte, 64<<10)
	var part []byte
	for {
		n, err := f.Read(buf)
		switch {
		case n == 0:
		case p.q.full(n):
			// The file is behind: drop at once, without copying what is dropped.
			n := skip(&part, buf[:n])
			p.dropped.Add(n)
			p.q.dropped(n)
		default:
			if data := lines(&part, buf[:n]); len(data) > 0 {
				p.dropped.Add(p.q.put(chunk{at: time.Now(), tag: tag, data: data}))
			}
		}
		if err != nil {
			if len(part) > 0 && err == io.EOF {
				p.dropped.Add(p.q.put(chunk{at: time.Now(), tag: tag, data: append(part, '\n')}))
			}
			return
		}
	}
}

// write writes what the readers queued, noting what was dropped once the file takes a line
// again; what cannot be written is dropped too, and counted.
func (p *logProcess) write() {
	var unnoted int64 // dropped, and not noted in the file yet
	for {
		cs, dropped, ok := p.q.get()
		if !ok {
			return
		}
		unnoted += dropped
		p.file.max, p.file.keep = p.maxSize.Load(), int(p.keep.Load())
		var err error
		for _, c := range cs {
			lost, werr := p.file.write(c)
			p.written.Add(int64(len(c.data)) - lost)
			if werr != nil {
				p.dropped.Add(lost)
				unnoted += lost
				err = werr
			}
		}
		if unnoted > 0 && err == nil {
			if err = p.file.note(time.Now(), fmt.Sprintf("… %d bytes dropped", unnoted)); err == nil {
				unnoted = 0
			}
		}
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		p.errText.Store(msg)
	}
}

// current is the status now.
func (p *logProcess) current() message {
	return message{Written: p.written.Load(), Dropped: p.dropped.Load(), Error: p.errText.Load().(string)}
}

// status sends the status to every client when it changed, at most every 200ms.
func (p *logProcess) status() {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	last := p.current()
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
		}
		now := p.current()
		if now == last {
			continue
		}
		last = now
		p.mu.Lock()
		cs := make([]*net.UnixConn, 0, len(p.conns))
		for c := range p.conns {
			cs = append(cs, c)
		}
		p.mu.Unlock()
		for _, c := range cs {
			p.send(c, now)
		}
	}
}

// send sends m to c; a client that does not read within a second misses it (the next one
// comes).
func (p *logProcess) send(c *net.UnixConn, m message) {
	b, _ := json.Marshal(m)
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write(b)
}
