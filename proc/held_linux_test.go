package proc

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseCredentials(t *testing.T) {
	for _, tc := range []struct {
		name, status string
		want         Credentials
		err          bool
	}{
		{"root", "Name:\tx\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n", Credentials{Groups: []uint32{}}, false},
		{"effective uid, filesystem gid", "Uid:\t1000\t0\t1000\t0\nGid:\t100\t200\t300\t400\nGroups:\t5 6 \n",
			Credentials{Uid: 0, Gid: 400, Groups: []uint32{5, 6}}, false},
		{"no groups line", "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n", Credentials{}, true},
		{"three uids", "Uid:\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\n", Credentials{}, true},
		{"not a number", "Uid:\t0\t0\t0\tx\nGid:\t0\t0\t0\t0\nGroups:\n", Credentials{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			have, err := parseCredentials([]byte(tc.status))
			if (err != nil) != tc.err || err == nil && (have.Uid != tc.want.Uid || have.Gid != tc.want.Gid || !slices.Equal(have.Groups, tc.want.Groups)) {
				t.Errorf("parseCredentials = %+v, %v; want %+v, error %v", have, err, tc.want, tc.err)
			}
		})
	}
}

func TestInGroup(t *testing.T) {
	c := Credentials{Uid: 1, Gid: 10, Groups: []uint32{20, 30}}
	for gid, want := range map[uint32]bool{10: true, 20: true, 30: true, 1: false, 0: false} {
		if have := c.InGroup(gid); have != want {
			t.Errorf("InGroup(%d) = %v, want %v", gid, have, want)
		}
	}
}

// TestCredentials reads a helper's identity (groups of its own when the test runs as root:
// the test binary is not for other users to run), and fails with os.ErrProcessDone once the
// helper has exited.
func TestCredentials(t *testing.T) {
	want := Credentials{Uid: uint32(os.Geteuid()), Gid: uint32(os.Getegid())}
	var attr *syscall.SysProcAttr
	if os.Geteuid() == 0 {
		want = Credentials{Uid: 0, Gid: 65533, Groups: []uint32{7, 65532}}
		attr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: want.Uid, Gid: want.Gid, Groups: want.Groups}}
	}
	c := startHelper(t, "sleep", attr)
	c.ready(t)
	p := open(t, c.pid())
	have, err := p.Credentials()
	if err != nil || have.Uid != want.Uid || have.Gid != want.Gid || want.Groups != nil && !slices.Equal(have.Groups, want.Groups) {
		t.Errorf("Credentials = %+v, %v; want %+v", have, err, want)
	}
	c.cmd.Process.Kill()
	c.wait(t)
	if _, err := p.Credentials(); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Credentials of an exited process: %v, want os.ErrProcessDone", err)
	}
}

// TestSysVAttached: a helper that attached a segment shows it under its key and id, a helper
// that did not shows nothing, and an exited one is an error.
func TestSysVAttached(t *testing.T) {
	key := 0x7b000000 | os.Getpid()&0xffffff
	id, err := unix.SysvShmGet(key, 4096, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.SysvShmCtl(id, unix.IPC_RMID, nil) })
	attached := startHelper(t, "shm-attach "+strconv.Itoa(id), nil)
	attached.ready(t)
	other := startHelper(t, "sleep", nil)
	other.ready(t)
	pa, po := open(t, attached.pid()), open(t, other.pid())
	for _, tc := range []struct {
		name       string
		p          *Process
		key, shmid int
		want       bool
	}{
		{"attached", pa, key, id, true},
		{"another key", pa, key + 1, id, false},
		{"another id", pa, key, id + 1, false},
		{"not attached", po, key, id, false},
	} {
		if have, err := tc.p.SysVAttached(tc.key, tc.shmid); have != tc.want || err != nil {
			t.Errorf("%s: SysVAttached = %v, %v; want %v", tc.name, have, err, tc.want)
		}
	}
	attached.cmd.Process.Kill()
	attached.wait(t)
	if _, err := pa.SysVAttached(key, id); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("SysVAttached of an exited process: %v, want os.ErrProcessDone", err)
	}
}
