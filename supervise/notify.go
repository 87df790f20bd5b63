package supervise

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/notify"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
)

// notifyAddr is the abstract address of the notify socket of the object name. It is the
// same for every monitor of the object, so a restarted serve binds the address its adopted
// programs still have in NOTIFY_SOCKET: only one live monitor has an object (see
// monitor.ErrWatched), and the hash keeps the address under the 107 bytes allowed.
func notifyAddr(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "@shmmon-notify/" + hex.EncodeToString(sum[:16])
}

// listen opens the programs' notify socket at the object's address, or at a random one when
// that is taken. Without a socket, programs are started without NOTIFY_SOCKET.
func (s *Supervisor) listen() {
	opts := notify.Options{Addr: notifyAddr(s.name), Allow: s.inTree, Logger: s.log.With("worker", s.name)}
	l, err := notify.Listen(opts)
	if errors.Is(err, syscall.EADDRINUSE) {
		s.log.Warn("notify address taken; using a random one (an adopted program's notify messages are lost)",
			"worker", s.name, "addr", opts.Addr)
		opts.Addr = ""
		l, err = notify.Listen(opts)
	}
	if err != nil {
		s.log.Warn("no notify socket: programs get no NOTIFY_SOCKET", "worker", s.name, "err", err)
		return
	}
	s.ntf = l
}

// inTree is the notify socket's sender check, systemd's NotifyAccess=all for the program's
// process group: the running program, its group and its descendants may speak.
func (s *Supervisor) inTree(pid int) bool {
	root := int(s.tree.Load())
	return root > 0 && proc.InTree(pid, root)
}

// notifyState is what one run remembers of its program's notify messages.
type notifyState struct {
	status   string // the last STATUS= logged
	ready    bool   // READY=1 was logged
	stopping bool   // STOPPING=1 suspended the checks
	warned   bool   // an invalid line was logged at warning level; the next ones are debug
}

// apply applies one notify message of the program's, received at now (see the package doc),
// and reports whether the program asked to be killed (WATCHDOG=trigger).
func (s *Supervisor) apply(h *monitor.Heartbeat, c *child, ticker *time.Ticker, ns *notifyState, m notify.Message, now time.Time) bool {
	log := s.log.With("worker", s.name, "pid", m.Pid)
	for _, line := range m.Invalid {
		lvl := slog.LevelDebug
		if !ns.warned {
			lvl, ns.warned = slog.LevelWarn, true
		}
		log.Log(context.Background(), lvl, "notify: invalid value ignored", "event", "notify-invalid", "line", line)
	}
	if m.HasStatus {
		h.Segment().SetStatusText(m.Status)
		if m.Status != ns.status {
			log.Info("status", "event", "status", "status", m.Status)
			ns.status = m.Status
		}
	}
	if m.MainPid != 0 {
		s.setMain(h, c, m.MainPid, log)
	}
	if d := m.WatchdogInterval; d != 0 {
		if err := h.SetInterval(d, now); err != nil {
			log.Warn("notify: WATCHDOG_USEC ignored", "event", "notify-invalid", "err", err)
		} else {
			ticker.Reset(d)
			log.Info("check interval changed", "event", "interval", "interval", d)
		}
	}
	if m.Ready && !ns.ready {
		h.Checker().Ready(now)
		log.Info("ready", "event", "ready")
		ns.ready = true
	}
	if d := m.ExtendTimeout; d > 0 {
		extended := h.Checker().Extend(now, d)
		log.Debug("notify: EXTEND_TIMEOUT_USEC", "extend", d, "applied", extended)
	}
	if m.Stopping && !ns.stopping {
		// Only the first: a program repeating STOPPING=1 must not escape the checks.
		h.Checker().Suspend(now)
		log.Info("stopping: checks suspended", "event", "stopping", "for_at_most", h.Checker().Config().Grace)
		ns.stopping = true
	}
	if m.Watchdog {
		h.Segment().Beat()
		h.Segment().SetKind(shmobj.KindNotify)
	}
	return m.Trigger
}

// setMain makes pid, which the program named with MAINPID=, its watched main process: only
// the program itself or a process of its tree, never an ancestor, init or shmmon.
func (s *Supervisor) setMain(h *monitor.Heartbeat, c *child, pid int, log *slog.Logger) {
	if pid == c.pid() {
		if c.main != nil {
			c.main.Close()
			c.main = nil
		}
		h.SetWatchedPid(int64(pid))
		return
	}
	// Open first: the tree check then holds for the process the handle names.
	p, err := proc.Open(pid)
	if err == nil && (pid == os.Getpid() || !proc.InTree(pid, c.pid()) || p.Exited()) {
		p.Close()
		err = errors.New("not a live process of the program's tree")
	}
	if err != nil {
		log.Warn("notify: MAINPID refused", "event", "mainpid-refused", "mainpid", pid, "err", err)
		return
	}
	if c.main != nil {
		c.main.Close()
	}
	c.main = p
	h.SetWatchedPid(int64(pid))
	log.Info("main process", "event", "mainpid", "mainpid", pid)
}
