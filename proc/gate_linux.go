package proc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// gateArg0 is the argv[0] that makes a binary linking this package the gate (see
// [ChildOptions]).
const gateArg0 = "shmmon: start gate"

// gateTimeout bounds the wait for the gate to run the program or fail: a gate that hangs (it
// was stopped, say) fails the start rather than the caller.
const gateTimeout = 10 * time.Second

// exitGateFailed is the gate's exit code when it did not run the program.
const exitGateFailed = 125

func init() {
	if len(os.Args) >= 5 && os.Args[0] == gateArg0 {
		os.Exit(gateMain(os.Args[1], os.Args[2], os.Args[3], os.Args[4:]))
	}
}

// gateSpec is what the gate does before it runs the program, as its argument carries it.
type gateSpec struct {
	rlimits []Rlimit
	cgroup  string
	cred    *syscall.Credential
}

// String encodes the spec as one argument: "nofile=S:H;core=S:H;cgroup=DIR;cred=UID:GID:G1,G2"
// (cred's groups "-" for NoSetGroups), parts in that order, each only when set.
func (g gateSpec) String() string {
	var parts []string
	for _, r := range g.rlimits {
		parts = append(parts, fmt.Sprintf("%s=%d:%d", r.Resource, r.Limit.Soft, r.Limit.Hard))
	}
	if g.cgroup != "" {
		parts = append(parts, "cgroup="+g.cgroup)
	}
	if c := g.cred; c != nil {
		groups := make([]string, len(c.Groups))
		for i, gid := range c.Groups {
			groups[i] = strconv.FormatUint(uint64(gid), 10)
		}
		gs := strings.Join(groups, ",")
		if c.NoSetGroups {
			gs = "-"
		}
		parts = append(parts, fmt.Sprintf("cred=%d:%d:%s", c.Uid, c.Gid, gs))
	}
	return strings.Join(parts, ";")
}

// parseGateSpec decodes what String encoded.
func parseGateSpec(s string) (gateSpec, error) {
	var g gateSpec
	num := func(v string) uint64 {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			panic(fmt.Errorf("bad number %q", v))
		}
		return n
	}
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%v", r)
			}
		}()
		for part := range strings.SplitSeq(s, ";") {
			k, v, _ := strings.Cut(part, "=")
			switch k {
			case "":
			case "cgroup":
				g.cgroup = v
			case "cred":
				f := strings.SplitN(v, ":", 3)
				if len(f) != 3 {
					panic(fmt.Errorf("bad credential %q", v))
				}
				c := &syscall.Credential{Uid: uint32(num(f[0])), Gid: uint32(num(f[1])), NoSetGroups: f[2] == "-"}
				if f[2] != "" && f[2] != "-" {
					for gid := range strings.SplitSeq(f[2], ",") {
						c.Groups = append(c.Groups, uint32(num(gid)))
					}
				}
				g.cred = c
			default:
				res := Resource(0)
				for r, name := range resourceNames {
					if name == k && name != "" {
						res = Resource(r)
					}
				}
				soft, hard, _ := strings.Cut(v, ":")
				if res == 0 {
					panic(fmt.Errorf("bad part %q", part))
				}
				g.rlimits = append(g.rlimits, Rlimit{res, Limit{num(soft), num(hard)}})
			}
		}
	}()
	return g, err
}

// rlimitOf maps a [Resource] to its RLIMIT_ number.
var rlimitOf = map[Resource]int{Nofile: unix.RLIMIT_NOFILE, Core: unix.RLIMIT_CORE, Nproc: unix.RLIMIT_NPROC}

// gateMain is the gate: it does what spec says to itself, then executes path with argv. On
// a failure it writes why to the socket fd and returns; a successful exec closes the socket
// (close-on-exec), which tells the parent the program runs.
func gateMain(fd, spec, path string, argv []string) int {
	n, err := strconv.Atoi(fd)
	if err != nil {
		fmt.Fprintf(os.Stderr, "shmmon: start gate: bad descriptor %q\n", fd)
		return exitGateFailed
	}
	fail := func(err error) int {
		syscall.Write(n, []byte(err.Error()))
		return exitGateFailed
	}
	g, err := parseGateSpec(spec)
	if err != nil {
		return fail(fmt.Errorf("bad gate argument: %w", err))
	}
	for _, r := range g.rlimits {
		// syscall.Setrlimit, not a raw call: the Go runtime restores, before an exec, the soft
		// limit of open files it found at its start, unless this is how it was changed.
		if err := syscall.Setrlimit(rlimitOf[r.Resource], &syscall.Rlimit{Cur: r.Limit.Soft, Max: r.Limit.Hard}); err != nil {
			return fail(fmt.Errorf("set %v limit %v: %w", r.Resource, r.Limit, err))
		}
	}
	if g.cgroup != "" {
		procs := filepath.Join(g.cgroup, "cgroup.procs")
		if err := os.WriteFile(procs, []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			return fail(fmt.Errorf("join cgroup: %w", err))
		}
	}
	if c := g.cred; c != nil {
		if !c.NoSetGroups {
			gids := make([]int, len(c.Groups))
			for i, gid := range c.Groups {
				gids[i] = int(gid)
			}
			if err := syscall.Setgroups(gids); err != nil {
				return fail(fmt.Errorf("setgroups: %w", err))
			}
		}
		if err := syscall.Setgid(int(c.Gid)); err != nil {
			return fail(fmt.Errorf("setgid %d: %w", c.Gid, err))
		}
		if err := syscall.Setuid(int(c.Uid)); err != nil {
			return fail(fmt.Errorf("setuid %d: %w", c.Uid, err))
		}
	}
	if _, err := unix.FcntlInt(uintptr(n), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return fail(fmt.Errorf("close-on-exec: %w", err))
	}
	err = syscall.Exec(path, argv, os.Environ())
	return fail(fmt.Errorf("exec %s: %w", path, err))
}

// gate makes cmd start the gate for opts: the program's path and argv become the gate's
// arguments, its Credential the gate's to take, and one end of a new socket pair its last
// extra file. It returns the gate's end and the parent's (non-blocking, so its read can time
// out); the caller closes both.
func gate(cmd *exec.Cmd, opts ChildOptions) (child, parent *os.File, err error) {
	if cmd.Err != nil {
		return nil, nil, fmt.Errorf("proc: start child: %w", cmd.Err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		if err = unix.SetNonblock(fds[1], true); err != nil {
			unix.Close(fds[0])
			unix.Close(fds[1])
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("proc: start child: gate: %w", err)
	}
	child, parent = os.NewFile(uintptr(fds[0]), "gate"), os.NewFile(uintptr(fds[1]), "gate")
	spec := gateSpec{rlimits: opts.Rlimits, cgroup: opts.Cgroup}
	if cmd.SysProcAttr != nil && cmd.SysProcAttr.Credential != nil {
		attr := *cmd.SysProcAttr
		spec.cred, attr.Credential = attr.Credential, nil
		cmd.SysProcAttr = &attr
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, child)
	fd := 3 + len(cmd.ExtraFiles) - 1
	cmd.Args = append([]string{gateArg0, strconv.Itoa(fd), spec.String(), cmd.Path}, cmd.Args...)
	cmd.Path = "/proc/self/exe"
	return child, parent, nil
}

// passed waits for the gate to run the program: its socket closes at the exec (nil), or it
// says why it did not (the error), within gateTimeout.
func passed(conn *os.File) error {
	conn.SetReadDeadline(time.Now().Add(gateTimeout))
	msg, err := io.ReadAll(io.LimitReader(conn, 4096))
	switch {
	case len(msg) > 0:
		return errors.New(string(msg))
	case err != nil:
		return fmt.Errorf("the start gate: %w", err)
	}
	return nil
}
