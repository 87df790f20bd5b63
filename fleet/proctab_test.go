package fleet

import (
	"errors"
	"log/slog"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proctab"
)

// setSem sets the semaphore of key to v, as anyone who may write it can.
func setSem(t *testing.T, key, v int) {
	t.Helper()
	id, _, errno := unix.Syscall(unix.SYS_SEMGET, uintptr(key), 1, 0)
	if errno == 0 {
		const setVal = 16 // SETVAL
		_, _, errno = unix.Syscall6(unix.SYS_SEMCTL, id, 0, setVal, uintptr(v), 0, 0)
	}
	if errno != 0 {
		t.Fatalf("setting semaphore %#x to %d: %v", key, v, errno)
	}
}

// TestProctabLockTimeout: while the table's lock is never free, the sweeper skips its passes
// (logged, counted, reported by ProctabHealth), the records cannot be read but the call
// returns, and Stop is prompt; once the lock is back, the health is too.
func TestProctabLockTimeout(t *testing.T) {
	key := 0x7a000000 | os.Getpid()&0xffffff
	pt := &config.Proctab{Key: key, SemKey: key, Slots: 4, Every: 100 * time.Millisecond, Signal: syscall.SIGTERM,
		KillAfter: time.Second, Create: true, Mode: 0o600}
	tab, err := proctab.Open(pt.Options())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tab.Remove(); tab.Close() })

	var logs testkit.Buffer
	f := New(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(f.Stop)
	if h := f.ProctabHealth(); h.Sweeping {
		t.Errorf("health before SetProctab: %+v", h)
	}
	setSem(t, key, 0)
	f.SetProctab(pt)
	testkit.WaitFor(t, proctab.LockTimeout+5*time.Second, "a lock timeout", func() bool { return f.ProctabHealth().LockTimeouts > 0 })
	if h := f.ProctabHealth(); !h.Sweeping || !errors.Is(h.Err, proctab.ErrLockTimeout) || h.Since.IsZero() {
		t.Errorf("health while the lock is never free: %+v", h)
	}
	if logs.Count("event=lock-timeout") == 0 {
		t.Errorf("no event=lock-timeout logged:\n%s", logs.String())
	}
	start := time.Now()
	if _, err := f.ProctabRecords(); !errors.Is(err, proctab.ErrLockTimeout) || time.Since(start) > proctab.LockTimeout+time.Second {
		t.Errorf("ProctabRecords: %v after %v, want ErrLockTimeout within %v", err, time.Since(start), proctab.LockTimeout)
	}

	setSem(t, key, 1)
	testkit.WaitFor(t, proctab.LockTimeout+5*time.Second, "the health to recover", func() bool { return f.ProctabHealth().Err == nil })
	if h := f.ProctabHealth(); h.LockTimeouts == 0 {
		t.Errorf("health after recovering: %+v, want the lock timeouts still counted", h)
	}

	// Stop is prompt in a pass that waits for the lock.
	setSem(t, key, 0)
	time.Sleep(300 * time.Millisecond)
	start = time.Now()
	f.Stop()
	if took := time.Since(start); took > time.Second {
		t.Errorf("Stop took %v while the sweeper waited for the lock", took)
	}
}
