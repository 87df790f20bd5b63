package source

import (
	"sync"

	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/tcpwd"
)

// TCP is the TCP watchdog's side of heartbeat "shm": the workers whose names the watchdog's
// server (package tcpwd) accepts, each fed by the feeds of its name. One TCP serves every
// worker of a monitor: the server looks names up in it ([TCP.Lookup]), and each worker joins
// it through [New] (env.TCP) for as long as it is supervised or watched.
type TCP struct {
	mu      sync.RWMutex
	workers map[string]Worker
}

// NewTCP returns an empty registry.
func NewTCP() *TCP { return &TCP{workers: map[string]Worker{}} }

// Lookup is the server's [tcpwd.Options.Lookup]: the worker of name, whose tree is the one
// its owner runs (or watches) now, and whose feeds beat it.
func (t *TCP) Lookup(name string) (tcpwd.Target, bool) {
	t.mu.RLock()
	w, ok := t.workers[name]
	t.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return tcpTarget{w}, true
}

// attach makes w's name one the server accepts, until the returned source is closed.
func (t *TCP) attach(w Worker) *tcpSource {
	t.mu.Lock()
	t.workers[w.Name()] = w
	t.mu.Unlock()
	return &tcpSource{t: t, w: w}
}

// tcpTarget is a worker as the server sees it.
type tcpTarget struct{ w Worker }

func (x tcpTarget) Root() int { return int(x.w.Pid()) }
func (x tcpTarget) Feed()     { x.w.Beat(shmobj.KindSocket) }

// tcpSource is one worker's place in a TCP.
type tcpSource struct {
	t *TCP
	w Worker
}

// Kind is socket.
func (s *tcpSource) Kind() shmobj.Kind { return shmobj.KindSocket }

// Close removes the worker from the registry. A feed the server looked up just before may
// still arrive: a Worker's Beat must stay harmless after its worker is closed (a
// monitor.Worker's does nothing then).
func (s *tcpSource) Close() error {
	s.t.mu.Lock()
	if s.t.workers[s.w.Name()] == s.w {
		delete(s.t.workers, s.w.Name())
	}
	s.t.mu.Unlock()
	return nil
}
