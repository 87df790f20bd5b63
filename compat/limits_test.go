package compat_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/cgroup"
	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
)

// cgroupOf returns the cgroup, as /proc/PID/cgroup names it, that serve started by this test
// gives the worker name, and its directory; it skips the test (fails it under CI=true) where
// cgroups are not available.
func cgroupOf(t *testing.T, name string) (rel, dir string) {
	t.Helper()
	m, err := cgroup.Open()
	testkit.Require(t, err == nil, fmt.Sprintf("cgroups are not available: %v", err))
	m.Close()
	mount := ""
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 8 && slices.Contains(f, "cgroup2") {
			mount = f[4]
			break
		}
	}
	rel = m.Path() + "/" + name
	dir = filepath.Join(mount, rel)
	// A serve SIGKILLed by a failed test leaves the cgroup; its processes are gone by then
	// (this cleanup comes after theirs).
	t.Cleanup(func() {
		if m, err := cgroup.Open(); err == nil {
			if g, _, err := m.Create(name); err == nil {
				g.Remove()
			}
			m.Close()
		}
	})
	return rel, dir
}

// workerStatus is the part of a worker's /status these tests read.
type workerStatus struct {
	Name        string   `json:"name"`
	Cgroup      string   `json:"cgroup"`
	MemoryBytes *int64   `json:"memory_bytes"`
	MemoryMax   int64    `json:"memory_max"`
	CPURatio    *float64 `json:"cpu_ratio"`
	LimitKills  uint64   `json:"limit_kills"`
	LastExit    string   `json:"last_exit"`
	Starts      uint64   `json:"starts"`
}

// startListening starts serve on path with an endpoint, and returns it with the address.
func startListening(t *testing.T, path string) (*testkit.Process, string) {
	serve := start(t, "shmmon serve", []string{envWorker + "=pkg", envPeriod + "=" + strconv.Itoa(int(beatPeriod/time.Millisecond))},
		testkit.Shmmon(t), "serve", "--config", path, "--listen", ":0")
	l := testkit.WaitLine(t, &serve.Stderr, startTimeout, "event=listen")
	_, addr, _ := strings.Cut(l, "addr=")
	addr, _, _ = strings.Cut(addr, " ")
	return serve, addr
}

// statusOf returns name's entry in serve's /status.
func statusOf(t *testing.T, addr, name string) workerStatus {
	t.Helper()
	var st struct{ Workers []workerStatus }
	getJSON(t, addr, "/status", &st)
	for _, w := range st.Workers {
		if w.Name == name {
			return w
		}
	}
	t.Fatalf("/status has no worker %s: %+v", name, st)
	return workerStatus{}
}

// TestServeCgroupTree: a worker whose shell started `setsid sleep 1000` (leaving the worker's
// process group) and never beats is killed as hung, and the sleep is gone too; while it ran,
// /status and `shmmon ls --json` showed its cgroup, whose directory is removed after.
func TestServeCgroupTree(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shmmon.toml")
	name := objectName(t)
	t.Cleanup(func() { shmobj.Remove(name) })
	rel, cgdir := cgroupOf(t, name)
	pidFile := filepath.Join(dir, "sleep.pid")
	writeConfig(t, path, []testkit.Worker{{Name: name,
		Command: []string{"sh", "-c", "setsid sleep 1000 & echo $! > " + pidFile + "; exec sleep 1000"},
		Extra:   "grace = \"1s\"\nrestart = \"never\"\n"}}, "")
	serve, addr := startListening(t, path)

	var sleeper *proc.Process
	testkit.WaitFor(t, startTimeout, "the setsid sleep", func() bool {
		b, _ := os.ReadFile(pidFile)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		var err error
		if pid > 0 {
			sleeper, err = proc.Open(pid)
		}
		return pid > 0 && err == nil
	})
	t.Cleanup(func() { sleeper.Signal(syscall.SIGKILL); sleeper.Close() })
	if w := statusOf(t, addr, name); w.Cgroup != rel {
		t.Errorf("/status: cgroup %q, want %q", w.Cgroup, rel)
	}
	out, err := exec.Command(testkit.Shmmon(t), "ls", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var ls []struct{ Name, Cgroup string }
	if err := json.Unmarshal(out, &ls); err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(ls, func(v struct{ Name, Cgroup string }) bool { return v.Name == name }); i < 0 || ls[i].Cgroup != rel {
		t.Errorf("ls --json: %+v; want %s in %s", ls, name, rel)
	}

	testkit.WaitLine(t, &serve.Stderr, startTimeout+killMargin, "killing hung worker")
	if !sleeper.WaitExit(t.Context(), killMargin) {
		t.Fatalf("the setsid sleep %d outlived its hung worker", sleeper.Pid())
	}
	testkit.WaitFor(t, startTimeout, "the worker's cgroup to go", func() bool {
		_, err := os.Stat(cgdir)
		return errors.Is(err, os.ErrNotExist)
	})
	serve.Signal(t, syscall.SIGTERM)
	if st := serve.Wait(t, killAfter+10*time.Second); st.ExitCode() != 0 {
		t.Errorf("serve ended with %v after SIGTERM, want exit 0", st)
	}
}

// TestServeAdoptsCgroup: a serve started again after a SIGKILL adopts the program in its
// cgroup, and its stop removes the cgroup.
func TestServeAdoptsCgroup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shmmon.toml")
	ws := serveWorkers(t, objectName(t), 1) // the Go worker
	name := ws[0].Name
	rel, cgdir := cgroupOf(t, name)
	var pids []int64
	killOnCleanup(t, &pids)
	writeConfig(t, path, ws, "")

	first := startServe(t, path)
	pid := waitBeating(t, name, 0)
	pids = append(pids, pid)
	if cg, err := cgroup.Of(int(pid)); err != nil || cg != rel {
		t.Fatalf("the worker is in %q, %v; want %q", cg, err, rel)
	}
	first.Signal(t, syscall.SIGKILL)
	first.Wait(t, 10*time.Second)

	second, addr := startListening(t, path)
	testkit.WaitLine(t, &second.Stderr, startTimeout, "event=adopt")
	if w := statusOf(t, addr, name); w.Cgroup != rel || waitBeating(t, name, 0) != pid {
		t.Errorf("after the adoption: /status cgroup %q, want %q (pid %d)", w.Cgroup, rel, pid)
	}
	second.Signal(t, syscall.SIGTERM)
	if st := second.Wait(t, killAfter+10*time.Second); st.ExitCode() != 0 {
		t.Errorf("serve ended with %v after SIGTERM, want exit 0", st)
	}
	if proc.Alive(int(pid)) {
		t.Error("the adopted worker outlived serve's stop")
	}
	if _, err := os.Stat(cgdir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the worker's cgroup %s is still there after serve stopped: %v", cgdir, err)
	}
}

// TestServeMemoryLimit: a Python worker that keeps beating while it allocates past
// memory_max is restarted with event=limit resource=memory; the hook on_limit runs, and
// /metrics and /status report the limit kill and the worker's memory.
func TestServeMemoryLimit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shmmon.toml")
	name := objectName(t)
	t.Cleanup(func() { shmobj.Remove(name) })
	hook := fmt.Sprintf("env > %s/.limit.tmp && mv %s/.limit.tmp %s/limit.env", dir, dir, dir)
	writeConfig(t, path, []testkit.Worker{{Name: name, Command: []string{"python3", testkit.Hog(t)},
		Extra: fmt.Sprintf("memory_max = \"64MiB\"\ncpu_max = \"1000%%\"\non_limit = %q\nenv = { HOG_GROW = \"100000000\" }\n", hook)}}, "")
	serve, addr := startListening(t, path)

	first := waitBeating(t, name, 0)
	testkit.WaitLine(t, &serve.Stderr, startTimeout, "event=limit resource=memory")
	second := waitBeating(t, name, first)
	if second == first {
		t.Fatal("not restarted")
	}
	testkit.WaitFor(t, startTimeout, "the hook", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "limit.env"))
		return err == nil && strings.Contains(string(b), "SHMMON_EVENT=limit\n") && strings.Contains(string(b), "SHMMON_DETAIL=memory ")
	})
	w := statusOf(t, addr, name)
	if w.MemoryMax != 64<<20 || w.LimitKills < 1 || !strings.HasPrefix(w.LastExit, "over the memory limit") {
		t.Errorf("/status: %+v", w)
	}
	testkit.WaitFor(t, startTimeout, "a measure of the new run", func() bool {
		m := scrapeMetrics(t, addr)
		lv := map[string]string{"name": name, "kind": "shm"}
		return m["shmmon_worker_memory_bytes"] != nil && sample(t, m, "shmmon_worker_memory_bytes", lv) > 0 &&
			sample(t, m, "shmmon_worker_limit_kills_total", lv) >= 1 && m["shmmon_worker_cpu_ratio"] != nil
	})
	serve.Signal(t, syscall.SIGTERM)
	if st := serve.Wait(t, killAfter+10*time.Second); st.ExitCode() != 0 {
		t.Errorf("serve ended with %v after SIGTERM, want exit 0", st)
	}
}

// TestRunWatchLimits: `shmmon run --memory-max` stops the growing worker (exit 1 under
// --restart never: a failure), `shmmon watch --pid --memory-max` kills it (exit 3), and
// `shmmon run --limit-*` starts the program with its limits.
func TestRunWatchLimits(t *testing.T) {
	hog := testkit.Hog(t)
	shmmon := testkit.Shmmon(t)
	t.Run("run", func(t *testing.T) {
		name := objectName(t)
		t.Cleanup(func() { shmobj.Remove(name) })
		r := start(t, "shmmon run", []string{"HOG_GROW=100000000"}, shmmon, "run", "--name", name, "--interval", interval.String(),
			"--memory-max", "64MiB", "--restart", "never", "--", "python3", hog)
		if st := r.Wait(t, startTimeout); st.ExitCode() != 1 {
			t.Errorf("shmmon run ended with %v, want exit 1", st)
		}
		if !strings.Contains(r.Stderr.String(), "event=limit resource=memory") {
			t.Errorf("no event=limit:\n%s", r.Stderr.String())
		}
	})
	t.Run("watch", func(t *testing.T) {
		name := objectName(t)
		t.Cleanup(func() { shmobj.Remove(name) })
		h := start(t, "hog", []string{"HOG_GROW=100000000"}, "python3", hog, name)
		w := start(t, "shmmon watch", nil, shmmon, "watch", "--name", name, "--pid", strconv.Itoa(h.Pid()),
			"--interval", interval.String(), "--grace", "5s", "--memory-max", "64MiB")
		if st := w.Wait(t, startTimeout); st.ExitCode() != 3 {
			t.Errorf("shmmon watch ended with %v, want exit 3", st)
		}
		if !strings.Contains(w.Stderr.String(), "event=limit resource=memory") {
			t.Errorf("no event=limit:\n%s", w.Stderr.String())
		}
	})
	t.Run("rlimits", func(t *testing.T) {
		name := objectName(t)
		t.Cleanup(func() { shmobj.Remove(name) })
		r := start(t, "shmmon run", nil, shmmon, "run", "--name", name, "--heartbeat", "none",
			"--limit-nofile", "100:200", "--limit-core", "0", "--", "sleep", "1000")
		l := testkit.WaitLine(t, &r.Stderr, startTimeout, "event=start")
		_, pid, _ := strings.Cut(l, " pid=")
		pid, _, _ = strings.Cut(pid, " ")
		b, err := os.ReadFile("/proc/" + pid + "/limits")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Max open files            100                  200", "Max core file size        0                    0"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("/proc/%s/limits lacks %q:\n%s", pid, want, b)
			}
		}
		r.Signal(t, syscall.SIGTERM)
		if st := r.Wait(t, startTimeout); st.ExitCode() != 0 {
			t.Errorf("shmmon run ended with %v after SIGTERM, want exit 0", st)
		}
	})
}
