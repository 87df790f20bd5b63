package proc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// RealUID returns the real user id of the process p holds, from /proc/PID/status (the user
// who started it, which a setuid program does not change). Outcomes:
//
//   - The uid, nil: it was read while p's process still ran, so it is that process's, not
//     that of another one that got its pid since.
//   - The process has exited (reaped or not): 0 and an error matching [os.ErrProcessDone].
//   - /proc cannot be read or parsed: 0 and the wrapped error.
func (p *Process) RealUID() (uint32, error) {
	var uid uint64
	pr, err := procfs.NewProc(p.pid)
	if err == nil {
		var st procfs.ProcStatus
		if st, err = pr.NewStatus(); err == nil {
			uid = st.UIDs[0]
		}
	}
	// Read first, then look at the pidfd: a status read before the exit was seen is the
	// status of this process, whatever the pid names afterwards.
	if p.Exited() || errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
		return 0, fmt.Errorf("proc: real uid of pid %d: %w", p.pid, os.ErrProcessDone)
	}
	if err != nil {
		return 0, fmt.Errorf("proc: real uid of pid %d: %w", p.pid, err)
	}
	return uint32(uid), nil
}
