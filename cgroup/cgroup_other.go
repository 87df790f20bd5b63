//go:build !linux

package cgroup

import (
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"runtime"

	"github.com/shmmon/shmmon/proc"
)

// ErrUnavailable is matched by the error of [Open] when the monitor cannot make cgroups for
// its workers: always, on this platform.
var ErrUnavailable = errors.New("cgroup: not available")

// Open returns an error matching [ErrUnavailable] and [errors.ErrUnsupported]: cgroups are
// Linux only.
func Open() (*Manager, error) {
	return nil, fmt.Errorf("%w: cgroups are Linux only, not %s (%w)", ErrUnavailable, runtime.GOOS, errors.ErrUnsupported)
}

// Of returns "": no process is in a cgroup on this platform.
func Of(pid int) (string, error) { return "", nil }

// Manager is Linux only: none is ever made on this platform.
type Manager struct{}

// Create is Linux only.
func (m *Manager) Create(name string) (*Group, int, error) { return nil, 0, errors.ErrUnsupported }

// Find finds nothing on this platform.
func (m *Manager) Find(name string, pid int) (*Group, bool) { return nil, false }

// Controllers returns none.
func (m *Manager) Controllers() []string { return nil }

// Missing says the controllers are missing.
func (m *Manager) Missing() string { return "cgroups are Linux only" }

// Path returns "".
func (m *Manager) Path() string { return "" }

// Close does nothing.
func (m *Manager) Close() error { return nil }

// Group is Linux only: none is ever made on this platform.
type Group struct{}

// Path returns "".
func (g *Group) Path() string { return "" }

// Memory reports false.
func (g *Group) Memory() bool { return false }

// Pids reports false.
func (g *Group) Pids() bool { return false }

// Prepare does nothing.
func (g *Group) Prepare(cmd *exec.Cmd, opts *proc.ChildOptions) {}

// SetMemoryMax does nothing.
func (g *Group) SetMemoryMax(n int64) (bool, error) { return false, nil }

// SetPidsMax does nothing.
func (g *Group) SetPidsMax(n int) (bool, error) { return false, nil }

// Usage is Linux only.
func (g *Group) Usage() (proc.Usage, error) { return proc.Usage{}, errors.ErrUnsupported }

// OOMKills returns 0.
func (g *Group) OOMKills() uint64 { return 0 }

// Populated reports false.
func (g *Group) Populated() bool { return false }

// Kill does nothing.
func (g *Group) Kill() error { return nil }

// Remove does nothing.
func (g *Group) Remove() error { return nil }

// Setup logs that cgroups are not available and returns nil.
func Setup(log *slog.Logger) *Manager {
	_, err := Open()
	log.Info("cgroups are not available: each worker has its process group only", "event", "cgroups-unavailable", "why", err)
	return nil
}
