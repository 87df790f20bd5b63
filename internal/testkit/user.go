package testkit

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// User is a throwaway local account made for one test by [NewUser]: the attacker of the
// security tests, or a worker's user.
type User struct {
	Name     string
	Uid, Gid uint32
	groups   []uint32 // supplementary groups (see [User.Join])
}

// NewUser creates a local account (useradd --system, no home, no login shell, a group of its
// own) and removes it when the test ends, after killing every process it still runs and
// removing the System V segments and semaphores it owns. It needs root and useradd: without
// them the test is skipped, or fails under CI=true (see [Require]).
func NewUser(t testing.TB) *User {
	t.Helper()
	Require(t, os.Geteuid() == 0, "creating a throwaway user needs root")
	_, err := exec.LookPath("useradd")
	Require(t, err == nil, "useradd is not installed (apt-get install passwd)")
	name := "shmmon-t" + randomHex(4)
	if out, err := account("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", name); err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	u := &User{Name: name}
	t.Cleanup(func() { u.remove(t) })
	pw, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("looking up the new user %s: %v", name, err)
	}
	uid, _ := strconv.ParseUint(pw.Uid, 10, 32)
	gid, _ := strconv.ParseUint(pw.Gid, 10, 32)
	u.Uid, u.Gid = uint32(uid), uint32(gid)
	return u
}

// Group is a throwaway local group made by [NewGroup].
type Group struct {
	Name string
	Gid  uint32
}

// NewGroup creates a local group (groupadd --system) and removes it when the test ends. It
// needs root, as [NewUser] does.
func NewGroup(t testing.TB) *Group {
	t.Helper()
	Require(t, os.Geteuid() == 0, "creating a throwaway group needs root")
	name := "shmmon-g" + randomHex(4)
	if out, err := account("groupadd", "--system", name); err != nil {
		t.Fatalf("groupadd %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := account("groupdel", name); err != nil {
			t.Errorf("groupdel %s: %v\n%s", name, err, out)
		}
	})
	g, err := user.LookupGroup(name)
	if err != nil {
		t.Fatalf("looking up the new group %s: %v", name, err)
	}
	gid, _ := strconv.ParseUint(g.Gid, 10, 32)
	return &Group{Name: name, Gid: uint32(gid)}
}

// Join makes u a member of g (usermod -aG); processes started after it by [User.Command] have
// the group.
func (u *User) Join(t testing.TB, g *Group) {
	t.Helper()
	if out, err := account("usermod", "-aG", g.Name, u.Name); err != nil {
		t.Fatalf("usermod -aG %s %s: %v\n%s", g.Name, u.Name, err, out)
	}
	u.groups = append(u.groups, g.Gid)
}

// Command returns a command that runs path as u (its uid, its gid, its supplementary groups
// from [User.Join]), with the test's environment and HOME=/.
func (u *User) Command(path string, args ...string) *exec.Cmd {
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), "HOME=/", "USER="+u.Name, "LOGNAME="+u.Name)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.Uid, Gid: u.Gid, Groups: u.groups}}
	return cmd
}

// Run runs path as u and returns its combined output.
func (u *User) Run(path string, args ...string) (string, error) {
	out, err := u.Command(path, args...).CombinedOutput()
	return string(out), err
}

// accountMu serialises useradd, usermod, userdel, groupadd and groupdel of this test binary;
// another test binary running at the same time may hold the lock of /etc/passwd, so a
// failure to lock it is tried again.
var accountMu sync.Mutex

// account runs one of the account tools, retrying while /etc/passwd or /etc/group is locked.
func account(tool string, args ...string) ([]byte, error) {
	accountMu.Lock()
	defer accountMu.Unlock()
	var out []byte
	var err error
	for range 50 {
		out, err = exec.Command(tool, args...).CombinedOutput()
		if err == nil || !bytes.Contains(bytes.ToLower(out), []byte("lock")) {
			return out, err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return out, err
}

// remove kills u's processes, removes its System V IPC objects and deletes the account.
func (u *User) remove(t testing.TB) {
	for range 100 {
		pids := userPids(u.Uid)
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
			syscall.Kill(pid, syscall.SIGCONT)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if pids := userPids(u.Uid); len(pids) > 0 {
		t.Errorf("user %s still runs %v", u.Name, pids)
	}
	removeIPC(u.Uid)
	if out, err := account("userdel", u.Name); err != nil {
		t.Errorf("userdel %s: %v\n%s", u.Name, err, out)
	}
}

// userPids returns the live processes whose real uid is uid.
func userPids(uid uint32) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []int
	for _, d := range dirs {
		st, err := os.ReadFile(d + "/status")
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(st), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "Uid:" && f[1] == strconv.FormatUint(uint64(uid), 10) {
				if pid, err := strconv.Atoi(filepath.Base(d)); err == nil && !strings.Contains(string(st), "State:\tZ") {
					pids = append(pids, pid)
				}
			}
		}
	}
	return pids
}

// removeIPC removes the System V segments and semaphore sets owned or created by uid, as
// /proc/sysvipc lists them.
func removeIPC(uid uint32) {
	for _, kind := range []struct{ file, flag string }{{"shm", "-m"}, {"sem", "-s"}} {
		b, err := os.ReadFile("/proc/sysvipc/" + kind.file)
		if err != nil {
			continue
		}
		lines := strings.Split(string(b), "\n")
		if len(lines) == 0 {
			continue
		}
		head := strings.Fields(lines[0])
		col := func(name string) int {
			for i, h := range head {
				if h == name {
					return i
				}
			}
			return -1
		}
		id, owner, creator := col(kind.file+"id"), col("uid"), col("cuid")
		if kind.file == "sem" {
			id = col("semid")
		}
		if id < 0 || owner < 0 || creator < 0 {
			continue
		}
		u := strconv.FormatUint(uint64(uid), 10)
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) > max(id, owner, creator) && (f[owner] == u || f[creator] == u) {
				exec.Command("ipcrm", kind.flag, f[id]).Run()
			}
		}
	}
}

// publicExe is the copy of the test binary that any user may run.
var publicExe made

// PublicExecutable returns a copy of the test binary in a directory every user may enter and
// read, so that a throwaway user can run it (go test builds it under a directory only its
// owner may enter). The copy is made once per test binary; [Cleanup] removes it.
func PublicExecutable(t testing.TB) string {
	t.Helper()
	return publicExe.get(t, "shmmon-exe-", func(dir string) (string, error) {
		self, err := os.Executable()
		if err != nil {
			return "", err
		}
		path := filepath.Join(dir, filepath.Base(self))
		return path, copyFile(self, path, 0o755)
	})
}

func copyFile(from, to string, mode os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// PublicDir returns a new directory that every user may enter and read (mode 0755), removed
// when the test ends: t.TempDir is only its owner's.
func PublicDir(t testing.TB) string {
	t.Helper()
	dir, err := publicTempDir("shmmon-pub-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// String returns the user's name and uid, for messages.
func (u *User) String() string { return fmt.Sprintf("%s (uid %d)", u.Name, u.Uid) }
