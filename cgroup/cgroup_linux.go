package cgroup

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/shmmon/shmmon/proc"
)

// Names of the cgroups shmmon makes below its own.
const (
	workersDir = "shmmon"  // the workers' parent
	monitorDir = "monitor" // the leaf shmmon moves itself into to enable controllers
)

// wanted are the controllers shmmon enables for its workers, in the order it names them.
var wanted = []string{"memory", "pids"}

// killWait bounds the wait for a killed cgroup to empty.
const killWait = proc.KillWait

// Manager is the subtree a monitor makes its workers' cgroups in. Create it with [Open]; it is
// safe for concurrent use.
type Manager struct {
	mount string // the v2 hierarchy's mount point
	base  string // the workers' parent, an absolute path below mount
	rel   string // base as /proc/PID/cgroup names it (relative to the hierarchy)
	ctl   []string
	why   string // why a wanted controller is not enabled; "" when all are

	// clone3 is false once the kernel (or a seccomp filter) refused clone3: programs then
	// join their cgroup through the start gate.
	clone3 atomic.Bool
}

// Open makes the workers' parent below the monitor's own cgroup, as the package doc says, and
// returns its Manager; or an error matching [ErrUnavailable] saying why cgroups cannot be used.
func Open() (*Manager, error) {
	mount, own, err := where()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(mount, own)
	if parent := filepath.Dir(own); filepath.Base(own) == monitorDir && own != "/" && delegated(filepath.Join(mount, parent)) {
		// The leaf of a delegated cgroup this process, or a previous monitor, moved into (or
		// systemd's DelegateSubgroup=monitor put it in): the delegated cgroup is its own.
		own, dir = parent, filepath.Join(mount, parent)
	}
	if own != "/" && !delegated(dir) {
		return nil, unavailable("the cgroup %s is not delegated to shmmon (under systemd: Delegate=yes)", own)
	}
	m := &Manager{mount: mount, base: filepath.Join(dir, workersDir), rel: filepath.Join(own, workersDir)}
	m.clone3.Store(true)
	if own != "/" {
		m.why = enableOwn(dir)
	}
	switch err := os.Mkdir(m.base, 0o755); {
	case err == nil, errors.Is(err, fs.ErrExist):
	case errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS):
		return nil, unavailable("cannot make %s: %v", m.base, err)
	default:
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	if _, err := os.Stat(filepath.Join(m.base, "cgroup.kill")); err != nil {
		m.Close()
		return nil, unavailable("the kernel has no cgroup.kill (it needs Linux 5.14)")
	}
	m.enable()
	m.clone3.Store(probeClone3(m.base))
	return m, nil
}

// ErrUnavailable is matched by the error of [Open] when the monitor cannot make cgroups for
// its workers.
var ErrUnavailable = errors.New("cgroup: not available")

func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnavailable, fmt.Sprintf(format, args...))
}

// where returns the mount point of the cgroup v2 hierarchy and this process's cgroup in it.
func where() (mount, own string, err error) {
	mounts, err := procfs.GetMounts()
	if err != nil {
		return "", "", fmt.Errorf("cgroup: %w", err)
	}
	for _, mi := range mounts {
		if mi.FSType == "cgroup2" {
			mount = mi.MountPoint
			break
		}
	}
	if mount == "" {
		return "", "", unavailable("no cgroup v2 hierarchy is mounted")
	}
	if own, err = Of(os.Getpid()); err != nil {
		return "", "", err
	}
	if own == "" {
		return "", "", unavailable("this process is in no cgroup v2")
	}
	return mount, own, nil
}

// Of returns the cgroup v2 of the process pid, as /proc/PID/cgroup names it ("/shmmon/db"):
// "" when it has none. The error matches proc.ErrNotExist when there is no such process.
func Of(pid int) (string, error) {
	pfs, err := procFS()
	var p procfs.Proc
	if err == nil {
		p, err = pfs.Proc(pid)
	}
	var cgs []procfs.Cgroup
	if err == nil {
		cgs, err = p.Cgroups()
	}
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return "", fmt.Errorf("%w: pid %d", proc.ErrNotExist, pid)
	}
	if err != nil {
		return "", fmt.Errorf("cgroup: of pid %d: %w", pid, err)
	}
	for _, cg := range cgs {
		if cg.HierarchyID == 0 {
			return cg.Path, nil
		}
	}
	return "", nil
}

// procFS is /proc, made once (procfs.NewFS checks the mount each time).
var procFS = sync.OnceValues(procfs.NewDefaultFS)

// delegated reports whether the cgroup dir is marked as delegated to its processes (systemd's
// Delegate=yes sets trusted.delegate, or user.delegate for a user manager, to "1").
func delegated(dir string) bool {
	for _, attr := range []string{"trusted.delegate", "user.delegate"} {
		b := make([]byte, 8)
		if n, err := unix.Getxattr(dir, attr, b); err == nil && string(b[:n]) == "1" {
			return true
		}
	}
	return false
}

// enableOwn enables the wanted controllers that the delegated cgroup dir offers in its
// cgroup.subtree_control, moving this process into dir/monitor first when it is the only one
// in dir. It returns why some could not be, "" when all could.
func enableOwn(dir string) string {
	missing := missingIn(dir)
	if len(missing) == 0 {
		return ""
	}
	err := writeControl(dir, missing)
	if errors.Is(err, unix.EBUSY) {
		// A cgroup with processes of its own gives its children no controller.
		procs, _ := readPids(filepath.Join(dir, "cgroup.procs"))
		if !slices.Equal(procs, []int{os.Getpid()}) {
			return fmt.Sprintf("%s has processes other than shmmon, so it cannot enable %s for its children", dir, strings.Join(missing, ", "))
		}
		leaf := filepath.Join(dir, monitorDir)
		if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err.Error()
		}
		if err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			return err.Error()
		}
		err = writeControl(dir, missing)
	}
	if err != nil {
		return fmt.Sprintf("enabling %s in %s: %v", strings.Join(missing, ", "), dir, err)
	}
	return ""
}

// missingIn returns the wanted controllers that dir offers (cgroup.controllers) but does not
// enable for its children (cgroup.subtree_control).
func missingIn(dir string) []string {
	offered, _ := readWords(filepath.Join(dir, "cgroup.controllers"))
	enabled, _ := readWords(filepath.Join(dir, "cgroup.subtree_control"))
	var out []string
	for _, c := range wanted {
		if slices.Contains(offered, c) && !slices.Contains(enabled, c) {
			out = append(out, c)
		}
	}
	return out
}

// writeControl enables the controllers cs in dir's cgroup.subtree_control.
func writeControl(dir string, cs []string) error {
	return os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+strings.Join(cs, " +")), 0)
}

// enable enables the wanted controllers the workers' parent offers for the workers, and
// records which are.
func (m *Manager) enable() {
	if missing := missingIn(m.base); len(missing) > 0 {
		if err := writeControl(m.base, missing); err != nil && m.why == "" {
			m.why = fmt.Sprintf("enabling %s in %s: %v", strings.Join(missing, ", "), m.base, err)
		}
	}
	enabled, _ := readWords(filepath.Join(m.base, "cgroup.subtree_control"))
	for _, c := range wanted {
		if slices.Contains(enabled, c) {
			m.ctl = append(m.ctl, c)
		}
	}
	if len(m.ctl) < len(wanted) && m.why == "" {
		offered, _ := readWords(filepath.Join(m.base, "cgroup.controllers"))
		m.why = fmt.Sprintf("the cgroup above %s does not enable %s for it (it has: %s)", m.rel,
			strings.Join(slices.DeleteFunc(slices.Clone(wanted), func(c string) bool { return slices.Contains(m.ctl, c) }), ", "),
			cmp.Or(strings.Join(offered, " "), "none"))
	}
}

// probeClone3 reports whether a program can be started directly into a cgroup (clone3 with
// CLONE_INTO_CGROUP, Linux 5.7), by starting true(1) into dir, a cgroup without controllers
// of its own. Only ENOSYS (no clone3, or a seccomp filter that hides it) says no.
func probeClone3(dir string) bool {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return true
	}
	defer unix.Close(fd)
	path, err := exec.LookPath("true")
	if err != nil {
		return true
	}
	cmd := exec.Command(path)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	err = cmd.Run()
	return !errors.Is(err, syscall.ENOSYS)
}

// Controllers returns the controllers enabled for the workers' cgroups: "memory", "pids",
// both or none.
func (m *Manager) Controllers() []string { return slices.Clone(m.ctl) }

// Missing says why a controller shmmon wants (memory, pids) is not enabled; "" when both are.
func (m *Manager) Missing() string { return m.why }

// Path returns the workers' parent as /proc/PID/cgroup names cgroups ("/shmmon").
func (m *Manager) Path() string { return m.rel }

// Close removes the workers' parent when it is empty: another monitor of the host may still
// have workers there (a parent that another removed is made again when a worker needs it),
// and one that died left it. The Manager's groups must be removed first.
func (m *Manager) Close() error {
	if err := unix.Rmdir(m.base); err != nil && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("cgroup: %w", err)
	}
	return nil
}

// Group is the cgroup of one run of a worker's program. Its methods are for the worker's
// owner; [Group.Usage] and [Group.OOMKills] may be called from another goroutine.
type Group struct {
	m      *Manager
	name   string
	dir    string
	fd     int // the directory, for CLONE_INTO_CGROUP; -1 once removed
	memory bool
	pids   bool

	mu  sync.Mutex // guards oom
	oom uint64     // the oom_kill count already reported
}

// Create makes the cgroup of worker name (its object's name) for a new run, and returns it
// with the number of processes it killed there: those a previous run of the worker left (a
// monitor that died before it could remove the cgroup). A name the kernel keeps for a file of
// its own (cgroup.procs, memory.max...) is an error.
func (m *Manager) Create(name string) (g *Group, leftovers int, err error) {
	dir := filepath.Join(m.base, name)
	err = os.Mkdir(dir, 0o755)
	if errors.Is(err, fs.ErrNotExist) {
		// Another monitor removed the parent as it left: make it again.
		if err = os.Mkdir(m.base, 0o755); err == nil || errors.Is(err, fs.ErrExist) {
			m.enable()
			err = os.Mkdir(dir, 0o755)
		}
	}
	if errors.Is(err, fs.ErrExist) {
		if fi, serr := os.Stat(dir); serr == nil && fi.IsDir() {
			err = nil
		} else {
			return nil, 0, fmt.Errorf("cgroup: %q is the name of a file of the kernel's in %s", name, m.rel)
		}
	}
	if err != nil {
		return nil, 0, fmt.Errorf("cgroup: %w", err)
	}
	if g, err = m.open(name, dir); err != nil {
		return nil, 0, err
	}
	if pids, _ := readPids(filepath.Join(dir, "cgroup.procs")); len(pids) > 0 {
		leftovers = len(pids)
		if err := g.Kill(); err != nil {
			g.close()
			return nil, leftovers, err
		}
	}
	if g.memory {
		// An OOM kill ends the whole worker, to be restarted, not one of its processes.
		g.write("memory.oom.group", "1")
	}
	return g, leftovers, nil
}

// Find returns the cgroup of worker name when the process pid is in it: an adopted program's
// (see the package doc). ok is false when pid is in another cgroup, or gone.
func (m *Manager) Find(name string, pid int) (g *Group, ok bool) {
	cg, err := Of(pid)
	if err != nil || cg != filepath.Join(m.rel, name) {
		return nil, false
	}
	g, err = m.open(name, filepath.Join(m.base, name))
	return g, err == nil
}

// open holds the existing cgroup dir of worker name.
func (m *Manager) open(name, dir string) (*Group, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("cgroup: open %s: %w", dir, err)
	}
	g := &Group{m: m, name: name, dir: dir, fd: fd,
		memory: slices.Contains(m.ctl, "memory"), pids: slices.Contains(m.ctl, "pids")}
	g.oom, _ = g.oomKills()
	return g, nil
}

// Path returns the cgroup as /proc/PID/cgroup names it ("/shmmon/db").
func (g *Group) Path() string { return filepath.Join(g.m.rel, g.name) }

// Memory and Pids report whether the memory and pids controllers are enabled in the group.
func (g *Group) Memory() bool { return g.memory }

// Pids: see [Group.Memory].
func (g *Group) Pids() bool { return g.pids }

// Prepare makes cmd start its program in the group: directly (CLONE_INTO_CGROUP) where the
// kernel can, else by joining it before its exec (opts.Cgroup, for [proc.StartChildWith]).
func (g *Group) Prepare(cmd *exec.Cmd, opts *proc.ChildOptions) {
	if !g.m.clone3.Load() {
		opts.Cgroup = g.dir
		return
	}
	var attr syscall.SysProcAttr
	if cmd.SysProcAttr != nil {
		attr = *cmd.SysProcAttr
	}
	attr.UseCgroupFD, attr.CgroupFD = true, g.fd
	cmd.SysProcAttr = &attr
}

// SetMemoryMax sets memory.max to n bytes (0: no limit); false when the memory controller is
// not enabled.
func (g *Group) SetMemoryMax(n int64) (bool, error) {
	if !g.memory {
		return false, nil
	}
	v := "max"
	if n > 0 {
		v = strconv.FormatInt(n, 10)
	}
	return true, g.write("memory.max", v)
}

// SetPidsMax sets pids.max to n processes (0: no limit); false when the pids controller is
// not enabled.
func (g *Group) SetPidsMax(n int) (bool, error) {
	if !g.pids {
		return false, nil
	}
	v := "max"
	if n > 0 {
		v = strconv.Itoa(n)
	}
	return true, g.write("pids.max", v)
}

// Usage measures the group: memory.current (with the memory controller; else the resident
// memory of its members, from /proc) and the CPU time of cpu.stat, which counts the processes
// that ended too.
func (g *Group) Usage() (proc.Usage, error) {
	var u proc.Usage
	var members []int
	if g.memory {
		n, err := g.readInt("memory.current")
		if err != nil {
			return u, err
		}
		u.Memory = n
	} else {
		var err error
		if members, err = readPids(filepath.Join(g.dir, "cgroup.procs")); err != nil {
			return u, fmt.Errorf("cgroup: %w", err)
		}
		pu := proc.PidsUsage(members)
		u.Memory, u.Procs = pu.Memory, pu.Procs
	}
	usec, err := g.statField("cpu.stat", "usage_usec")
	if err != nil {
		return u, err
	}
	u.CPU = time.Duration(usec) * time.Microsecond
	return u, nil
}

// OOMKills returns how many processes the kernel's OOM killer killed in the group since the
// last call (or since the group was opened): memory.events' oom_kill. It is 0 without the
// memory controller.
func (g *Group) OOMKills() uint64 {
	n, err := g.oomKills()
	if err != nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if n <= g.oom {
		return 0
	}
	d := n - g.oom
	g.oom = n
	return d
}

func (g *Group) oomKills() (uint64, error) {
	if !g.memory {
		return 0, nil
	}
	n, err := g.statField("memory.events", "oom_kill")
	return uint64(n), err
}

// Populated reports whether a process is left in the group (cgroup.events).
func (g *Group) Populated() bool {
	n, err := g.statField("cgroup.events", "populated")
	return err == nil && n != 0
}

// Kill kills every process in the group (cgroup.kill: SIGKILL, those that left the worker's
// process group too, and any forked meanwhile) and waits for the group to empty, up to
// proc.KillWait.
func (g *Group) Kill() error {
	if !g.Populated() {
		return nil
	}
	if err := g.write("cgroup.kill", "1"); err != nil {
		return err
	}
	deadline := time.Now().Add(killWait)
	for g.Populated() {
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup: %s: processes left %v after cgroup.kill", g.Path(), killWait)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// Remove kills what is left in the group (see [Group.Kill]) and removes it. It is safe to
// call more than once.
func (g *Group) Remove() error {
	if g.fd < 0 {
		return nil
	}
	err := g.Kill()
	g.close()
	// An emptied cgroup may stay busy for a moment while its last member is released.
	for i := 0; ; i++ {
		rerr := unix.Rmdir(g.dir)
		if rerr == nil || errors.Is(rerr, unix.ENOENT) {
			break
		}
		if !errors.Is(rerr, unix.EBUSY) || i == 100 {
			return errors.Join(err, fmt.Errorf("cgroup: remove %s: %w", g.Path(), rerr))
		}
		time.Sleep(5 * time.Millisecond)
	}
	return err
}

// close releases the directory's descriptor.
func (g *Group) close() {
	if g.fd >= 0 {
		unix.Close(g.fd)
		g.fd = -1
	}
}

func (g *Group) write(file, v string) error {
	if err := os.WriteFile(filepath.Join(g.dir, file), []byte(v), 0); err != nil {
		return fmt.Errorf("cgroup: %s: %w", g.Path(), err)
	}
	return nil
}

func (g *Group) readInt(file string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(g.dir, file))
	if err != nil {
		return 0, fmt.Errorf("cgroup: %s: %w", g.Path(), err)
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cgroup: %s/%s: %w", g.Path(), file, err)
	}
	return n, nil
}

// statField reads the value of key in a flat keyed file ("usage_usec 12345" lines).
func (g *Group) statField(file, key string) (int64, error) {
	f, err := os.Open(filepath.Join(g.dir, file))
	if err != nil {
		return 0, fmt.Errorf("cgroup: %s: %w", g.Path(), err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, _ := strings.Cut(s.Text(), " ")
		if k == key {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("cgroup: %s/%s: no %s", g.Path(), file, key)
}

// readWords reads a file of space-separated words (cgroup.controllers).
func readWords(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	return strings.Fields(string(b)), err
}

// readPids reads a file of pids, one a line (cgroup.procs).
func readPids(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// Setup opens the Manager (see [Open]) for a monitor that starts workers, and logs once what
// they get: their cgroups' parent and controllers (event=cgroups), or why they get none and
// keep their process groups (event=cgroups-unavailable). It returns nil in that case.
func Setup(log *slog.Logger) *Manager {
	m, err := Open()
	if err != nil {
		log.Info("cgroups are not available: each worker has its process group only", "event", "cgroups-unavailable", "why", err)
		return nil
	}
	attrs := []any{"event", "cgroups", "cgroup", m.Path(), "controllers", strings.Join(m.Controllers(), ",")}
	if m.Missing() != "" {
		attrs = append(attrs, "missing", m.Missing())
	}
	log.Info("each supervised worker runs in a cgroup of its own", attrs...)
	return m
}
