package pidfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
)

// other and third are uids of nobody in particular (no account needed: root may chown to any
// uid and run a process as any uid).
const other, third = 42421, 42422

// layout makes files and directories with exactly the modes and owners a case needs.
type layout struct {
	t    *testing.T
	root string // a directory of root's, mode 0755, whose parents are /tmp (sticky) and /
}

func newLayout(t *testing.T) *layout {
	testkit.Require(t, os.Geteuid() == 0, "the trust rules of pidfiles need root to make files of other owners")
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &layout{t: t, root: dir}
}

// dir makes the directory rel with mode and owner uid.
func (l *layout) dir(rel string, mode os.FileMode, uid int) string {
	l.t.Helper()
	path := filepath.Join(l.root, rel)
	if err := os.Mkdir(path, 0o700); err != nil {
		l.t.Fatal(err)
	}
	l.own(path, mode, uid)
	return path
}

// file writes text to the file rel with mode and owner uid.
func (l *layout) file(rel, text string, mode os.FileMode, uid int) string {
	l.t.Helper()
	path := filepath.Join(l.root, rel)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		l.t.Fatal(err)
	}
	l.own(path, mode, uid)
	return path
}

// link makes rel a symbolic link to target, owned by uid.
func (l *layout) link(rel, target string, uid int) string {
	l.t.Helper()
	path := filepath.Join(l.root, rel)
	if err := os.Symlink(target, path); err != nil {
		l.t.Fatal(err)
	}
	if err := os.Lchown(path, uid, uid); err != nil {
		l.t.Fatal(err)
	}
	return path
}

func (l *layout) own(path string, mode os.FileMode, uid int) {
	l.t.Helper()
	if err := os.Chown(path, uid, uid); err != nil {
		l.t.Fatal(err)
	}
	// os.Chmod takes the Go bits: ModeSticky for the sticky bit.
	if err := os.Chmod(path, mode); err != nil {
		l.t.Fatal(err)
	}
}

// TestReadTrust: the rules on the file, its directory and its path, table-driven: every
// case is a layout, the caller's effective uid, and what Read must say.
func TestReadTrust(t *testing.T) {
	const pid = "12345\n"
	tests := []struct {
		name  string
		euid  uint32
		setup func(l *layout) string // returns the pidfile's path
		want  error                  // nil, ErrUntrusted, ErrInvalid or fs.ErrNotExist
		why   string                 // in the refusal
	}{
		{"root's file in root's directory", 0, func(l *layout) string {
			return l.file("w.pid", pid, 0o644, 0)
		}, nil, ""},
		{"file writable by group", 0, func(l *layout) string {
			return l.file("w.pid", pid, 0o664, 0)
		}, ErrUntrusted, "writable by group or others (mode 0664)"},
		{"file writable by others", 0, func(l *layout) string {
			return l.file("w.pid", pid, 0o646, 0)
		}, ErrUntrusted, "mode 0646"},
		{"file of another user", 0, func(l *layout) string {
			return l.file("w.pid", pid, 0o644, other)
		}, ErrUntrusted, fmt.Sprintf("owned by uid %d, not root or uid 0", other)},
		{"file of the caller's own user", other, func(l *layout) string {
			return l.file("w.pid", pid, 0o644, other)
		}, nil, ""},
		{"file of a third user, caller not root", other, func(l *layout) string {
			return l.file("w.pid", pid, 0o644, third)
		}, ErrUntrusted, fmt.Sprintf("owned by uid %d", third)},
		{"directory of another user", 0, func(l *layout) string {
			l.dir("d", 0o755, other)
			return l.file("d/w.pid", pid, 0o644, 0)
		}, ErrUntrusted, fmt.Sprintf("d is owned by uid %d", other)},
		{"directory writable by group", 0, func(l *layout) string {
			l.dir("d", 0o775, 0)
			return l.file("d/w.pid", pid, 0o644, 0)
		}, ErrUntrusted, "d is writable by group or others (mode 0775)"},
		{"own directory sticky and writable by all", 0, func(l *layout) string {
			l.dir("d", 0o777|os.ModeSticky, 0)
			return l.file("d/w.pid", pid, 0o644, 0)
		}, ErrUntrusted, "(mode 1777)"},
		{"sticky directory on the path", 0, func(l *layout) string {
			l.dir("tmp", 0o777|os.ModeSticky, 0)
			l.dir("tmp/d", 0o755, 0)
			return l.file("tmp/d/w.pid", pid, 0o644, 0)
		}, nil, ""},
		{"directory on the path writable by all, not sticky", 0, func(l *layout) string {
			l.dir("open", 0o777, 0)
			l.dir("open/d", 0o755, 0)
			return l.file("open/d/w.pid", pid, 0o644, 0)
		}, ErrUntrusted, "open is writable by group or others (mode 0777)"},
		{"directory on the path of another user", 0, func(l *layout) string {
			l.dir("home", 0o755, other)
			l.dir("home/d", 0o755, 0)
			return l.file("home/d/w.pid", pid, 0o644, 0)
		}, ErrUntrusted, fmt.Sprintf("home is owned by uid %d", other)},
		{"root's link to root's directory (like /var/run)", 0, func(l *layout) string {
			l.dir("run", 0o755, 0)
			l.file("run/w.pid", pid, 0o644, 0)
			l.link("varrun", "run", 0)
			return filepath.Join(l.root, "varrun/w.pid")
		}, nil, ""},
		{"absolute link, then a relative one with ..", 0, func(l *layout) string {
			l.dir("run", 0o755, 0)
			l.dir("run/db", 0o755, 0)
			l.file("run/db/w.pid", pid, 0o644, 0)
			l.link("run/up", "..", 0)
			l.link("abs", filepath.Join(l.root, "run/up/run"), 0)
			return filepath.Join(l.root, "abs/db/w.pid")
		}, nil, ""},
		{"another user's link in a sticky directory", 0, func(l *layout) string {
			l.dir("tmp", 0o777|os.ModeSticky, 0)
			l.dir("run", 0o755, 0)
			l.file("run/w.pid", pid, 0o644, 0)
			l.link("tmp/run", filepath.Join(l.root, "run"), other)
			return filepath.Join(l.root, "tmp/run/w.pid")
		}, ErrUntrusted, fmt.Sprintf("tmp/run on its path is owned by uid %d", other)},
		{"a link out of another user's directory into root's", 0, func(l *layout) string {
			l.dir("run", 0o755, 0)
			l.file("run/w.pid", pid, 0o644, 0)
			l.dir("home", 0o755, other)
			l.link("home/run", filepath.Join(l.root, "run"), other)
			return filepath.Join(l.root, "home/run/w.pid")
		}, ErrUntrusted, fmt.Sprintf("home is owned by uid %d", other)},
		{"links in a loop", 0, func(l *layout) string {
			l.link("a", "b", 0)
			l.link("b", "a", 0)
			return filepath.Join(l.root, "a/w.pid")
		}, syscall.ELOOP, ""},
		{"the file is a link", 0, func(l *layout) string {
			l.file("real.pid", pid, 0o644, 0)
			return l.link("w.pid", "real.pid", 0)
		}, ErrUntrusted, "a symbolic link"},
		{"a FIFO", 0, func(l *layout) string {
			path := filepath.Join(l.root, "w.pid")
			if err := syscall.Mkfifo(path, 0o644); err != nil {
				l.t.Fatal(err)
			}
			return path
		}, ErrUntrusted, "not a regular file (a named pipe)"},
		{"a device", 0, func(l *layout) string { return "/dev/null" }, ErrUntrusted, "not a regular file (a character device)"},
		{"a directory", 0, func(l *layout) string { return l.dir("w.pid", 0o755, 0) }, ErrUntrusted, "not a regular file (a directory)"},
		{"64 bytes", 0, func(l *layout) string {
			return l.file("w.pid", strings.Repeat(" ", MaxSize-6)+pid, 0o644, 0)
		}, nil, ""},
		{"65 bytes", 0, func(l *layout) string {
			return l.file("w.pid", strings.Repeat(" ", MaxSize-5)+pid, 0o644, 0)
		}, ErrInvalid, "holds more than 64 bytes"},
		{"not a number", 0, func(l *layout) string { return l.file("w.pid", "abc\n", 0o644, 0) }, ErrInvalid, `"abc" is not a pid`},
		{"pid 1", 0, func(l *layout) string { return l.file("w.pid", "1", 0o644, 0) }, ErrInvalid, `"1" is not a pid`},
		{"negative", 0, func(l *layout) string { return l.file("w.pid", "-7", 0o644, 0) }, ErrInvalid, `"-7" is not a pid`},
		{"empty", 0, func(l *layout) string { return l.file("w.pid", "", 0o644, 0) }, ErrInvalid, `"" is not a pid`},
		{"missing", 0, func(l *layout) string { return filepath.Join(l.root, "w.pid") }, fs.ErrNotExist, ""},
		{"missing directory", 0, func(l *layout) string { return filepath.Join(l.root, "none/w.pid") }, fs.ErrNotExist, ""},
		{"relative path", 0, func(l *layout) string { return "run/w.pid" }, ErrInvalid, "not an absolute path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.setup(newLayout(t))
			f, err := read(path, tt.euid)
			if tt.want == nil {
				if err != nil || f.Pid != 12345 || f.Path != path {
					t.Fatalf("read(%s) = %+v, %v; want pid 12345", path, f, err)
				}
				return
			}
			var pe *Error
			if !errors.Is(err, tt.want) || !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("read(%s) = %+v, %v; want an *Error matching %v, saying %q", path, f, err, tt.want, tt.why)
			}
			if pe.Path != path || !strings.HasPrefix(err.Error(), "pidfile "+path+": ") {
				t.Errorf("error %q names %q, want %q first", err, pe.Path, path)
			}
		})
	}
}

// TestReadFIFODoesNotBlock: a FIFO that nobody writes is refused at once.
func TestReadFIFODoesNotBlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.pid")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := Read(path); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUntrusted) {
			t.Errorf("Read of a FIFO: %v, want ErrUntrusted", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read of a FIFO blocked")
	}
}

// startAs starts a process that sleeps, as uid, and returns its pid; it is killed and reaped
// when the test ends.
func startAs(t *testing.T, uid uint32) int {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

// TestOpenProcessOwner: the process a pidfile names belongs to the file's owner, unless the
// owner is root; the rules of the file come first.
func TestOpenProcessOwner(t *testing.T) {
	tests := []struct {
		name            string
		euid, fileOwner uint32
		processOwner    uint32
		want            error
		why             string
	}{
		{"root's file, root's process", 0, 0, 0, nil, ""},
		{"root's file, another user's process", 0, 0, other, nil, ""},
		{"the caller's file, the caller's process", other, other, other, nil, ""},
		{"the caller's file, root's process", other, other, 0, ErrUntrusted, "a process of uid 0, not of the file's owner"},
		{"the caller's file, a third user's process", other, other, third, ErrUntrusted, fmt.Sprintf("a process of uid %d", third)},
		{"another user's file, its own process", 0, other, other, ErrUntrusted, fmt.Sprintf("owned by uid %d", other)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLayout(t)
			pid := startAs(t, tt.processOwner)
			path := l.file("w.pid", strconv.Itoa(pid), 0o644, int(tt.fileOwner))
			p, _, err := open(path, tt.euid, nil)
			if tt.want == nil {
				if err != nil || p.Pid() != pid {
					t.Fatalf("open(%s) = %v; want pid %d", path, err, pid)
				}
				p.Close()
				return
			}
			if p != nil {
				p.Close()
			}
			var pe *Error
			if !errors.Is(err, tt.want) || !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("open(%s): %v; want an *Error matching %v, saying %q", path, err, tt.want, tt.why)
			}
			if pe.Owner != int(tt.fileOwner) {
				t.Errorf("error's owner %d, want %d", pe.Owner, tt.fileOwner)
			}
		})
	}
}

// TestOpenStaleAndGone: a pidfile last written before its process started is stale (by more
// than Slack, or a second for a time in whole seconds); one naming no process says so; a
// fresh one is taken.
func TestOpenStaleAndGone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.pid")
	write := func(pid int) {
		t.Helper()
		if err := os.WriteFile(path, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	setTime := func(mtime time.Time) {
		t.Helper()
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	pid := startAs(t, uint32(os.Geteuid()))
	started, err := proc.StartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	write(pid)
	for _, tt := range []struct {
		name  string
		mtime time.Time
		stale bool
	}{
		{"a minute before", started.Add(-time.Minute), true},
		{"twice the slack before", started.Add(-2*Slack - time.Nanosecond), true},
		{"half the slack before", started.Add(-Slack / 2), false},
		{"after", started.Add(time.Millisecond), false},
		{"within the second before, in whole seconds", started.Truncate(time.Second), false},
		{"two seconds before, in whole seconds", started.Truncate(time.Second).Add(-2 * time.Second), true},
	} {
		setTime(tt.mtime)
		p, f, err := Open(path)
		if tt.stale {
			if !errors.Is(err, ErrStale) || !strings.Contains(err.Error(), "stale") {
				t.Errorf("%s: Open of a pidfile written %v before its process started: %v, want ErrStale", tt.name, started.Sub(tt.mtime), err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: Open of a pidfile written %v before its process started: %v", tt.name, started.Sub(tt.mtime), err)
			continue
		}
		if f.Pid != pid || !f.ModTime.Equal(tt.mtime) {
			t.Errorf("%s: Open's file = %+v, want pid %d, time %v", tt.name, f, pid, tt.mtime)
		}
		p.Close()
	}
	if got := slack(time.Unix(5, 0)); got != time.Second {
		t.Errorf("slack for a time in whole seconds = %v, want 1s", got)
	}
	if got := slack(time.Unix(5, 1)); got != Slack {
		t.Errorf("slack for a time with a fraction = %v, want %v", got, Slack)
	}
	write(pid)
	p, _, err := Open(path)
	if err != nil {
		t.Fatalf("Open of a fresh pidfile: %v", err)
	}
	p.Close()

	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	write(cmd.Process.Pid)
	var pe *Error
	if _, _, err := Open(path); !errors.Is(err, proc.ErrNotExist) || !errors.As(err, &pe) || pe.Pid != cmd.Process.Pid {
		t.Errorf("Open of a pidfile naming a gone pid: %v, want proc.ErrNotExist naming pid %d", err, cmd.Process.Pid)
	}
	write(os.Getpid())
	if _, _, err := Open(path); !errors.Is(err, proc.ErrRefused) {
		t.Errorf("Open of a pidfile naming the caller: %v, want proc.ErrRefused", err)
	}
}

// TestOpenAfter: once the process a pidfile named has ended, the file is stale while it is
// unchanged, even when its pid names a live process that started before the file was
// written; written again, or naming another pid, it is taken.
func TestOpenAfter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.pid")
	pid := startAs(t, uint32(os.Geteuid()))
	other := startAs(t, uint32(os.Geteuid())) // started before the file is written
	if err := os.WriteFile(path, []byte(strconv.Itoa(pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	p, last, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	// The live process stands for the one that took the pid of last's ended process.
	if _, _, err := OpenAfter(path, last); !errors.Is(err, ErrStale) || !strings.Contains(err.Error(), "not written since") {
		t.Errorf("OpenAfter of an unchanged pidfile: %v, want ErrStale, not written since", err)
	}
	later := last.ModTime.Add(time.Millisecond)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	p, f, err := OpenAfter(path, last)
	if err != nil || f.Pid != pid {
		t.Fatalf("OpenAfter of a pidfile written again: %+v, %v; want pid %d", f, err, pid)
	}
	p.Close()
	if err := os.WriteFile(path, []byte(strconv.Itoa(other)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, last.ModTime, last.ModTime); err != nil {
		t.Fatal(err)
	}
	p, f, err = OpenAfter(path, last)
	if err != nil || f.Pid != other {
		t.Fatalf("OpenAfter of a pidfile naming another pid: %+v, %v; want pid %d", f, err, other)
	}
	p.Close()
}
