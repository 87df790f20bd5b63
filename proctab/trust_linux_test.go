package proctab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
)

// attachHelper attaches the table of key as a client does (Attach), or its segment alone
// read-only, and keeps it attached for the life of the process.
func attachHelper(key, slots int, readOnly bool) error {
	if !readOnly {
		_, err := Attach(Options{Key: key, SemKey: key, Slots: slots})
		return err
	}
	id, err := unix.SysvShmGet(key, 0, 0)
	if err == nil {
		_, err = unix.SysvShmAttach(id, 0, unix.SHM_RDONLY)
	}
	return err
}

// forge writes a record into slot as another writer of the table could: any timeout, any
// heartbeat, no lock.
func forge(tab *Table, slot, pid int, timeout int32, atime time.Time) {
	r := &tab.recs[slot]
	clear(r.name[:])
	copy(r.name[:], fmt.Sprintf("forged-%d", slot))
	r.timeout = timeout
	r.atime.Store(atime.Unix())
	r.pid.Store(int32(pid))
}

// setSem sets the table's semaphore to v, as anyone who may write it can.
func setSem(t *testing.T, tab *Table, v int) {
	t.Helper()
	if _, _, errno := unix.Syscall6(unix.SYS_SEMCTL, uintptr(tab.semid), 0, semSetVal, uintptr(v), 0, 0); errno != 0 {
		t.Fatalf("semctl SETVAL %d: %v", v, errno)
	}
}

// semPerm returns the permissions of the table's semaphore.
func semPerm(t *testing.T, tab *Table) perm {
	t.Helper()
	var ds semidDS
	if _, _, errno := unix.Syscall6(unix.SYS_SEMCTL, uintptr(tab.semid), 0, uintptr(ctlCmd(ipcStat)), uintptr(unsafe.Pointer(&ds)), 0, 0); errno != 0 {
		t.Fatalf("semctl IPC_STAT: %v", errno)
	}
	return permOf(ds.perm)
}

func TestMayWrite(t *testing.T) {
	owner := perm{Uid: 100, Gid: 200, Cuid: 101, Cgid: 201, Mode: 0o640}
	for _, tc := range []struct {
		name string
		p    perm
		c    proc.Credentials
		want bool
	}{
		{"root", perm{Mode: 0}, proc.Credentials{Uid: 0}, true},
		{"owner", owner, proc.Credentials{Uid: 100, Gid: 9}, true},
		{"creator", owner, proc.Credentials{Uid: 101, Gid: 9}, true},
		{"group read only", owner, proc.Credentials{Uid: 5, Gid: 200}, false},
		{"group rw", perm{Uid: 100, Gid: 200, Mode: 0o660}, proc.Credentials{Uid: 5, Gid: 9, Groups: []uint32{200}}, true},
		{"creator's group rw", perm{Uid: 100, Gid: 200, Cgid: 201, Mode: 0o660}, proc.Credentials{Uid: 5, Gid: 201}, true},
		{"others of 0660", perm{Uid: 100, Gid: 200, Mode: 0o660}, proc.Credentials{Uid: 5, Gid: 9}, false},
		{"others of 0666", perm{Uid: 100, Gid: 200, Mode: 0o666}, proc.Credentials{Uid: 5, Gid: 9}, true},
		// The kernel picks one class: an owner without the owner's write bit may not write,
		// whatever the others' bits say.
		{"owner of 0066", perm{Uid: 100, Mode: 0o066}, proc.Credentials{Uid: 100}, false},
		{"group of 0606", perm{Uid: 100, Gid: 200, Mode: 0o606}, proc.Credentials{Uid: 5, Gid: 200}, false},
	} {
		if have := tc.p.mayWrite(tc.c); have != tc.want {
			t.Errorf("%s: %v may write a table (%v): %v, want %v", tc.name, tc.c, tc.p, have, tc.want)
		}
	}
}

func TestProblem(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		atime   time.Time
		want    string
	}{
		{"fine", time.Second, now.Add(-time.Hour), ""},
		{"this second", time.Second, now, ""},
		{"the next second (a beat racing the pass)", time.Second, now.Add(time.Second), ""},
		{"negative timeout", -time.Second, now, "timeout -1s"},
		{"zero timeout", 0, now, "timeout 0s"},
		{"future", time.Minute, now.Add(time.Hour), "in the future"},
	} {
		have := Record{Timeout: tc.timeout, Atime: tc.atime}.problem(now)
		if tc.want == "" && have != "" || !strings.Contains(have, tc.want) {
			t.Errorf("%s: problem %q, want %q", tc.name, have, tc.want)
		}
	}
}

// TestOpenMode: a new table has mode 0660 unless told otherwise, and the group it is given,
// on its segment and on its semaphore; an existing table keeps its own.
func TestOpenMode(t *testing.T) {
	def := testTable(t, 2)
	p, err := shmStat(def.shmid)
	if err != nil {
		t.Fatal(err)
	}
	if sp := semPerm(t, def); p.Mode != DefaultMode || sp.Mode != DefaultMode || p.Gid != uint32(os.Getegid()) {
		t.Errorf("default table: segment %v, semaphore %v; want mode %#o, the creator's group", p, sp, DefaultMode)
	}

	opts := def.opts
	opts.Key++
	opts.SemKey++
	opts.Mode, opts.Group = 0o640, 4242 // the creator may give its objects any group
	tab, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tab.Remove(); tab.Close() })
	p, _ = shmStat(tab.shmid)
	if sp := semPerm(t, tab); p.Mode != 0o640 || sp.Mode != 0o640 || p.Gid != 4242 || sp.Gid != 4242 {
		t.Errorf("table of mode 0640, group %d: segment %v, semaphore %v", opts.Group, p, sp)
	}
	// Opening it again with other options changes nothing.
	again, err := Open(Options{Key: opts.Key, SemKey: opts.SemKey, Slots: opts.Slots, Mode: 0o666})
	if err != nil {
		t.Fatal(err)
	}
	again.Close()
	if p, _ := shmStat(tab.shmid); p.Mode != 0o640 {
		t.Errorf("reopened with mode 0666: the table's mode became %#o", uint32(p.Mode))
	}

	for _, bad := range []Options{{Key: opts.Key + 1, Mode: 0o1777}, {Key: opts.Key + 1, Group: -1}} {
		if tab, err := Open(bad); err == nil {
			tab.Remove()
			tab.Close()
			t.Errorf("Open(%+v) succeeded", bad)
		}
	}
}

// TestSweepRefuses: timed-out records that may not be trusted to name their process (it does
// not have the table attached; its user may not write the table) and bad records naming a
// client are refused: cleared, logged, the process left alone.
func TestSweepRefuses(t *testing.T) {
	tab := testTable(t, 8)
	// 0664: the others (below) may attach it read-only, not write it.
	var ds unix.SysvShmDesc
	if _, err := unix.SysvShmCtl(tab.shmid, unix.IPC_STAT, &ds); err != nil {
		t.Fatal(err)
	}
	ds.Perm.Mode = 0o664
	if _, err := unix.SysvShmCtl(tab.shmid, unix.IPC_SET, &ds); err != nil {
		t.Fatal(err)
	}
	type refusal struct {
		name string
		cmd  *exec.Cmd
		why  string
	}
	stranger, attached := child(t, "sleep"), client(t, tab)
	cases := []refusal{
		{"not attached", stranger, "does not have the table attached"},
		{"negative timeout", attached, "timeout -1s"},
		{"future heartbeat", attached, "in the future"},
	}
	if os.Geteuid() == 0 {
		// A process of another user, attached read-only: it could not have written a record.
		other := exec.Command(testkit.PublicExecutable(t))
		other.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		cases = append(cases, refusal{"may not write", startChild(t, other, fmt.Sprintf("attach-ro %d 0", tab.opts.Key)), "may not write the table"})
	}
	time.Sleep(1100 * time.Millisecond) // the children started clearly before the heartbeats
	old := time.Now().Add(-time.Second)
	for i, c := range cases {
		switch c.name {
		case "negative timeout":
			forge(tab, i, c.cmd.Process.Pid, -1, time.Now())
		case "future heartbeat":
			forge(tab, i, c.cmd.Process.Pid, 1, time.Now().Add(time.Hour))
		default:
			forge(tab, i, c.cmd.Process.Pid, 1, old)
		}
	}
	time.Sleep(1100 * time.Millisecond) // the old heartbeats time out
	var logs bytes.Buffer
	res, err := tab.Sweep(context.Background(), SweepOptions{KillAfter: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if want := (SweepResult{Checked: len(cases), Cleared: len(cases), Refused: len(cases)}); res != want {
		t.Errorf("Sweep = %+v, want %+v\n%s", res, want, &logs)
	}
	if recs, _ := tab.List(); len(recs) != 0 {
		t.Errorf("records left: %+v", recs)
	}
	for _, c := range cases {
		line := testkit.LinesWith(strings.Split(logs.String(), "\n"), fmt.Sprintf("pid=%d ", c.cmd.Process.Pid), "event=record-refused", c.why)
		if len(line) == 0 {
			t.Errorf("%s: no record-refused line with %q:\n%s", c.name, c.why, &logs)
		} else if !strings.Contains(line[0], "uid=") {
			t.Errorf("%s: the refusal does not name the uid: %s", c.name, line[0])
		}
		if !proc.Alive(c.cmd.Process.Pid) {
			t.Errorf("%s: pid %d was killed", c.name, c.cmd.Process.Pid)
		}
	}
}

// TestLockTimeout: with the semaphore set to 0 by someone, every locked operation gives up
// after LockTimeout with ErrLockTimeout, and a sweep ends as soon as its context is
// cancelled; once the semaphore is back, the table works.
func TestLockTimeout(t *testing.T) {
	tab := testTable(t, 4)
	setSem(t, tab, 0)
	var wg sync.WaitGroup
	check := func(what string, f func() error) {
		wg.Go(func() {
			start := time.Now()
			err := f()
			if took := time.Since(start); !errors.Is(err, ErrLockTimeout) || took < LockTimeout || took > LockTimeout+time.Second {
				t.Errorf("%s with the lock never free: %v after %v, want ErrLockTimeout after %v", what, err, took, LockTimeout)
			}
		})
	}
	check("Register", func() error { _, err := tab.Register("x", time.Second); return err })
	check("List", func() error { _, err := tab.List(); return err })
	check("Sweep", func() error { _, err := tab.Sweep(context.Background(), SweepOptions{}); return err })
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := tab.Sweep(ctx, SweepOptions{})
		if took := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || took > 200*time.Millisecond+2*lockSlice {
			t.Errorf("Sweep cancelled after 200ms: %v after %v, want the context's error at once", err, took)
		}
	})
	wg.Wait()
	setSem(t, tab, 1)
	s, err := tab.Register("after", time.Second)
	if err != nil {
		t.Fatalf("Register once the lock is back: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
}
