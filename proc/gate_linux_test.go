package proc

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/field"
	"github.com/shmmon/shmmon/internal/testkit"
)

// limitsOf returns the lines of /proc/PID/limits, by the limit's name ("Max open files"), as
// the soft and hard values the kernel shows.
func limitsOf(t *testing.T, pid int) map[string][2]string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/limits")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]string{}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		if len(line) < 26 {
			continue
		}
		f := strings.Fields(line[25:])
		if len(f) >= 2 {
			out[strings.TrimSpace(line[:25])] = [2]string{f[0], f[1]}
		}
	}
	return out
}

// TestStartChildRlimits: the limits are in place when the program runs, as
// /proc/PID/limits of the program (not of the gate: its command line is the program's) shows
// them, for a C program (sleep, which keeps them as they are) and a Go one (the test binary,
// which raises its own soft limit of open files to the hard one, as every Go program does).
func TestStartChildRlimits(t *testing.T) {
	limits := []Rlimit{
		{Nofile, Limit{Soft: 123, Hard: 456}},
		{Core, Limit{Soft: 0, Hard: Unlimited}},
		{Nproc, Limit{Soft: 3000, Hard: 4000}},
	}
	for _, tt := range []struct {
		name   string
		cmd    *exec.Cmd
		nofile [2]string
	}{
		{"sleep", exec.Command("sleep", "60"), [2]string{"123", "456"}},
		{"go", helperCmd("sleep"), [2]string{"455", "456"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := slices.Clone(tt.cmd.Args)
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			tt.cmd.Stdout = w
			c, err := StartChildWith(tt.cmd, ChildOptions{Rlimits: limits})
			w.Close()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.SignalGroup(syscall.SIGKILL); c.Wait() })
			if tt.name == "go" { // its runtime has set its limits once it prints
				r.SetReadDeadline(time.Now().Add(long))
				if line, err := bufio.NewReader(r).ReadString('\n'); line != "ready\n" {
					t.Fatalf("the helper printed %q, %v", line, err)
				}
			}
			if have, err := Cmdline(c.Pid()); err != nil || !slices.Equal(have, args) {
				t.Fatalf("the child runs %q, %v; want the program, %q", have, err, args)
			}
			lim := limitsOf(t, c.Pid())
			for name, want := range map[string][2]string{
				"Max open files":     tt.nofile,
				"Max core file size": {"0", "unlimited"},
				"Max processes":      {"3000", "4000"},
			} {
				if lim[name] != want {
					t.Errorf("%s: %q, want %q", name, lim[name], want)
				}
			}
			if !LeadsGroup(c.Pid()) {
				t.Error("the program does not lead its process group")
			}
		})
	}
}

// TestStartChildGateRefused: when the gate cannot do what it is asked, the start fails
// with why, the program never runs, and the gate is gone and reaped.
func TestStartChildGateRefused(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts ChildOptions
		path string // of the program; "" is sh
		want string
	}{
		{name: "limit", opts: ChildOptions{Rlimits: []Rlimit{{Nofile, Limit{Soft: 10, Hard: 5}}}},
			want: "set nofile limit 10:5: invalid argument"},
		{name: "cgroup", opts: ChildOptions{Cgroup: "/nonexistent"}, want: "join cgroup: open /nonexistent/cgroup.procs"},
		{name: "exec", opts: ChildOptions{Rlimits: []Rlimit{{Core, Limit{}}}}, path: "/nonexistent/prog",
			want: "exec /nonexistent/prog: no such file or directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mark := filepath.Join(t.TempDir(), "ran")
			cmd := exec.Command("sh", "-c", "touch "+mark)
			if tt.path != "" {
				cmd.Path = tt.path
			}
			c, err := StartChildWith(cmd, tt.opts)
			if c != nil || err == nil || !strings.Contains(err.Error(), "killed before it ran: "+tt.want) {
				t.Fatalf("StartChildWith = %v, %v; want nil and %q", c, err, tt.want)
			}
			if cmd.ProcessState == nil {
				t.Fatal("the gate was not reaped")
			}
			time.Sleep(50 * time.Millisecond)
			if _, err := os.Stat(mark); err == nil {
				t.Error("the program ran")
			}
		})
	}
}

// TestStartChildAfterExit: AfterExit runs once the child has exited, before it is reaped,
// and its error is Wait's.
func TestStartChildAfterExit(t *testing.T) {
	var reaped bool
	cmd := helperCmd("exit 0")
	c, err := StartChildWith(cmd, ChildOptions{AfterExit: func() error {
		reaped = cmd.ProcessState != nil
		return errors.New("after")
	}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := waitChild(t, c)
	if st.String() != "exit 0" || err == nil || err.Error() != "after" || reaped {
		t.Errorf("Wait = %q, %v (reaped before AfterExit: %v); want exit 0, after, false", st, err, reaped)
	}
}

// TestStartChildGateUser: a root monitor starts the gate as another user: the credential
// applies to the gate, which runs the program in its place, and the limits to both.
func TestStartChildGateUser(t *testing.T) {
	u := testkit.NewUser(t)
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.Uid, Gid: u.Gid}}
	c, err := StartChildWith(cmd, ChildOptions{Rlimits: []Rlimit{{Nofile, Limit{Soft: 2048, Hard: 4096}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.SignalGroup(syscall.SIGKILL); c.Wait() })
	testkit.WaitFor(t, long, "sleep to replace the gate", func() bool {
		have, err := Cmdline(c.Pid())
		return err == nil && slices.Equal(have, []string{"sleep", "60"})
	})
	if have := limitsOf(t, c.Pid())["Max open files"]; have != [2]string{"2048", "4096"} {
		t.Errorf("open files %q, want 2048 4096", have)
	}
	cr, err := c.Credentials()
	if err != nil || cr.Uid != u.Uid {
		t.Errorf("credentials %+v, %v; want uid %d", cr, err, u.Uid)
	}
}

func TestParseLimit(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Limit
		bad  string
	}{
		{in: "1024", want: Limit{1024, 1024}},
		{in: "1024:4096", want: Limit{1024, 4096}},
		{in: "0:unlimited", want: Limit{0, Unlimited}},
		{in: "infinity", want: Limit{Unlimited, Unlimited}},
		{in: " 5 : 6 ", want: Limit{5, 6}},
		{in: "4096:1024", bad: "has a soft limit above the hard one"},
		{in: "1024:", bad: "is not a resource limit"},
		{in: ":1024", bad: "is not a resource limit"},
		{in: "-1", bad: "is not a resource limit"},
		{in: "lots", bad: "is not a resource limit"},
		{in: "", bad: "is not a resource limit"},
		{in: "18446744073709551615", bad: "is not a resource limit"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			have, err := ParseLimit(tt.in)
			var fe *field.Error
			switch {
			case tt.bad == "" && (err != nil || have != tt.want):
				t.Errorf("ParseLimit = %v, %v; want %v", have, err, tt.want)
			case tt.bad != "" && (!errors.As(err, &fe) || fe.Problem != tt.bad || fe.Value != tt.in):
				t.Errorf("ParseLimit = %v, %v; want the problem %q", have, err, tt.bad)
			case tt.bad == "":
				if again, err := ParseLimit(have.String()); err != nil || again != have {
					t.Errorf("String %q parses as %v, %v", have.String(), again, err)
				}
			}
		})
	}
}
