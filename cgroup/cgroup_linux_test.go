package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
)

// helperEnv makes the test binary a helper: "open" opens a Manager and prints its path (or
// the error), then blocks until stdin closes.
const helperEnv = "SHMMON_CGROUP_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode))
	}
	os.Exit(m.Run())
}

func helper(mode string) int {
	switch mode {
	case "open":
		m, err := Open()
		if err != nil {
			fmt.Println("error:", err)
			return 0
		}
		defer m.Close()
		own, _ := Of(os.Getpid())
		fmt.Println(m.Path(), own)
		bufio.NewReader(os.Stdin).ReadString('\n')
		return 0
	}
	return 2
}

// open opens the Manager of the test process, or skips the test (fails under CI=true) where
// cgroups are not available.
func open(t *testing.T) *Manager {
	t.Helper()
	m, err := Open()
	testkit.Require(t, err == nil, fmt.Sprintf("cgroups are not available: %v", err))
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

// create makes the group of a test worker, removed when the test ends.
func create(t *testing.T, m *Manager) *Group {
	t.Helper()
	g, left, err := m.Create(testkit.Name(t, "cg"))
	if err != nil || left != 0 {
		t.Fatalf("Create = %v, %d leftovers; want a new group", err, left)
	}
	t.Cleanup(func() {
		if err := g.Remove(); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(g.dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the group %s is still there: %v", g.dir, err)
		}
	})
	return g
}

// start starts cmd in g, and returns it with the pid the program printed first (0 if it prints
// none).
func start(t *testing.T, g *Group, cmd *exec.Cmd) (*proc.Child, int) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = w
	var opts proc.ChildOptions
	g.Prepare(cmd, &opts)
	opts.AfterExit = g.Kill
	c, err := proc.StartChildWith(cmd, opts)
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.SignalGroup(syscall.SIGKILL); c.Wait(); r.Close() })
	r.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, _ := bufio.NewReader(r).ReadString('\n')
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return c, pid
}

// TestGroupEndsSetsid: a program started in its worker's cgroup — directly, or joining it
// through the start gate — is there with the process it started in a session of its own
// (setsid, out of the program's process group); when the program ends, that process is
// killed too, and removing the group leaves nothing.
func TestGroupEndsSetsid(t *testing.T) {
	m := open(t)
	for _, direct := range []bool{true, false} {
		t.Run(map[bool]string{true: "clone3", false: "gate"}[direct], func(t *testing.T) {
			if direct && !m.clone3.Load() {
				t.Skip("this kernel has no clone3")
			}
			saved := m.clone3.Load()
			m.clone3.Store(direct)
			defer m.clone3.Store(saved)
			g := create(t, m)
			c, sleeper := start(t, g, exec.Command("sh", "-c", "setsid sleep 1000 & echo $!; exec sleep 1000"))
			for _, pid := range []int{c.Pid(), sleeper} {
				if cg, err := Of(pid); err != nil || cg != g.Path() {
					t.Errorf("pid %d is in %q, %v; want %q", pid, cg, err, g.Path())
				}
			}
			testkit.WaitFor(t, 5*time.Second, "the sleep to leave the program's group", func() bool {
				pgid, err := unix.Getpgid(sleeper)
				return err == nil && pgid != c.Pid()
			})
			hold, err := proc.Open(sleeper)
			if err != nil {
				t.Fatal(err)
			}
			defer hold.Close()
			c.Signal(syscall.SIGKILL) // the program alone
			if _, err := c.Wait(); err != nil {
				t.Errorf("Wait: %v", err)
			}
			if !hold.WaitExit(t.Context(), 5*time.Second) {
				t.Error("the setsid sleep outlived the program")
			}
			if g.Populated() {
				t.Error("the group is still populated")
			}
		})
	}
}

// TestGroupUsage: the group's CPU is cpu.stat's (a busy process's time is counted after it
// ended), its memory the members' resident memory.
func TestGroupUsage(t *testing.T) {
	m := open(t)
	g := create(t, m)
	_, _ = start(t, g, exec.Command("sh", "-c", "echo; timeout 0.4 sh -c 'while :; do :; done'; exec sleep 1000"))
	time.Sleep(700 * time.Millisecond)
	u, err := g.Usage()
	// The sleep, the one member left, used next to nothing: the time is the loop's.
	if err != nil || u.CPU < 20*time.Millisecond || u.Memory <= 0 {
		t.Errorf("Usage = %+v, %v; want the CPU of the busy loop that ended (at least 20ms of its 400ms), and some memory", u, err)
	}
	if !g.memory && u.Procs != 1 {
		t.Errorf("Usage counted %d processes, want 1 (the sleep)", u.Procs)
	}
}

// TestCreateLeftovers: a group that is still populated when its worker's next run creates it
// (its monitor died) is emptied first.
func TestCreateLeftovers(t *testing.T) {
	m := open(t)
	g := create(t, m)
	c, _ := start(t, g, exec.Command("sh", "-c", "echo; exec sleep 1000"))
	again, left, err := m.Create(g.name)
	if err != nil || left != 1 {
		t.Fatalf("Create again = %v, %d leftovers; want 1", err, left)
	}
	defer again.close()
	if !c.WaitExit(t.Context(), 5*time.Second) {
		t.Error("the leftover still runs")
	}
}

// TestFind: an adopted program's cgroup is found by its pid; a process in another cgroup, or
// gone, finds none.
func TestFind(t *testing.T) {
	m := open(t)
	g := create(t, m)
	c, _ := start(t, g, exec.Command("sh", "-c", "echo; exec sleep 1000"))
	found, ok := m.Find(g.name, c.Pid())
	if !ok || found.Path() != g.Path() {
		t.Fatalf("Find = %v, %v; want %s", found, ok, g.Path())
	}
	found.close()
	if _, ok := m.Find(g.name, os.Getpid()); ok {
		t.Error("Find found the test's own process in the worker's cgroup")
	}
	if _, ok := m.Find("other", c.Pid()); ok {
		t.Error("Find found the program in another worker's cgroup")
	}
}

// TestCreateRefusesKernelNames: a worker named after a file of the kernel's cannot have a
// cgroup of that name.
func TestCreateRefusesKernelNames(t *testing.T) {
	m := open(t)
	if g, _, err := m.Create("cgroup.procs"); err == nil || !strings.Contains(err.Error(), "file of the kernel's") {
		t.Errorf("Create(cgroup.procs) = %v, %v; want an error", g, err)
	}
}

// TestOpenDelegation: in a cgroup of its own, a monitor makes cgroups only when the cgroup is
// delegated to it (the extended attribute systemd sets for Delegate=yes), below it.
func TestOpenDelegation(t *testing.T) {
	open(t) // the test's own: only to skip where cgroups are not available
	mount, _, err := where()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		mark bool
		leaf bool // the helper starts in DIR/monitor
		want string
	}{
		{"delegated", true, false, "/shmmon"},
		{"delegated, in its monitor leaf", true, true, "/shmmon"},
		{"not delegated", false, false, "error: cgroup: not available: the cgroup /"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rel := "/" + testkit.Name(t, "cgdeleg")
			dir := filepath.Join(mount, rel)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				os.Remove(filepath.Join(dir, workersDir))
				os.Remove(filepath.Join(dir, monitorDir))
				if err := os.Remove(dir); err != nil {
					t.Error(err)
				}
			})
			if tt.mark {
				if err := unix.Setxattr(dir, "trusted.delegate", []byte("1"), 0); err != nil {
					t.Skipf("cannot mark the cgroup as delegated: %v", err)
				}
			}
			in := dir
			if tt.leaf {
				in = filepath.Join(dir, monitorDir)
				if err := os.Mkdir(in, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			fd, err := unix.Open(in, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), helperEnv+"=open")
			cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
			stdin, _ := cmd.StdinPipe()
			out, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { stdin.Close(); cmd.Wait() }()
			line, _ := bufio.NewReader(out).ReadString('\n')
			want := tt.want
			if tt.mark {
				want = rel + "/shmmon " + strings.TrimPrefix(in, mount) + "\n"
			}
			if !strings.HasPrefix(line, want) {
				t.Errorf("the helper in %s says %q, want %q", rel, line, want)
			}
		})
	}
}

// TestMemoryMax: with the memory controller, memory.max holds the program's memory, and the
// kernel's OOM kill is counted. It runs only where the controller is enabled for the
// workers (see testkit.RequireController).
func TestMemoryMax(t *testing.T) {
	m := open(t)
	testkit.RequireController(t, m.Controllers(), "memory")
	g := create(t, m)
	if ok, err := g.SetMemoryMax(32 << 20); !ok || err != nil {
		t.Fatalf("SetMemoryMax = %v, %v", ok, err)
	}
	// A shell that grows a string until the kernel kills it.
	c, _ := start(t, g, exec.Command("sh", "-c", "echo; x=x; while :; do x=$x$x; done"))
	st, _ := c.Wait()
	if st.String() != "signal killed" {
		t.Errorf("the program ended with %s, want signal killed", st)
	}
	if n := g.OOMKills(); n == 0 {
		t.Error("no OOM kill counted")
	}
}
