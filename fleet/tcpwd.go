package fleet

import (
	"context"
	"fmt"
	"net"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/tcpwd"
)

// tcpWatchdog is the running TCP watchdog server.
type tcpWatchdog struct {
	cfg    config.TCPWatchdog
	cancel context.CancelFunc
	done   chan struct{}
}

// SetTCPWatchdog makes the fleet serve the TCP watchdog protocol (package tcpwd) on
// tw.Listen for at most tw.MaxConnections clients at once, the names it accepts being the
// fleet's workers (see [source.TCP]): their feeds beat them; nil stops it. An
// unchanged tw leaves the running server and its connections alone; a changed one closes them
// and listens again. It fails when it cannot listen, and then no server runs.
func (f *Fleet) SetTCPWatchdog(tw *config.TCPWatchdog) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if tw != nil && f.tcpwd != nil && *tw == f.tcpwd.cfg {
		return nil
	}
	f.stopTCPWatchdog()
	if tw == nil {
		return nil
	}
	log := f.log.With("listen", tw.Listen)
	srv, err := tcpwd.NewServer(tcpwd.Options{Lookup: f.tcp.Lookup, Logger: log, MaxConns: tw.MaxConnections})
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	ln, err := net.Listen("tcp", tw.Listen)
	if err != nil {
		return fmt.Errorf("fleet: tcp watchdog: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &tcpWatchdog{cfg: *tw, cancel: cancel, done: make(chan struct{})}
	f.tcpwd = w
	log.Info("tcp watchdog listening", "event", "tcp-listen")
	go func() {
		defer close(w.done)
		if err := srv.Serve(ctx, ln); err != nil {
			log.Error("tcp watchdog stopped", "event", "tcp-stopped", "err", err)
		}
	}()
	return nil
}

// stopTCPWatchdog stops the running server, if any. f.mu must be held.
func (f *Fleet) stopTCPWatchdog() {
	if f.tcpwd != nil {
		f.tcpwd.cancel()
		<-f.tcpwd.done
		f.tcpwd = nil
	}
}
