//go:build faults

package faults

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/worker"
	"github.com/shmmon/shmmon/worklog"
)

// envFlood makes the test binary the flooding worker of TestLogFloodFault: in one loop it
// writes 1 KiB lines to stdout (every 8th to stderr too) at FAULTS_FLOOD bytes a second and
// beats after each, so a write that blocks stops its beats. It is taken before TestMain (in
// init), as a mode of this file's own.
const envFlood = "FAULTS_FLOOD"

func init() {
	rate, err := strconv.Atoi(os.Getenv(envFlood))
	if err != nil {
		return
	}
	testkit.Flood(rate)
}

// ctlRun runs shmmon ctl on the control socket path and returns its exit code and output.
func ctlRun(t testing.TB, path string, args ...string) (int, string) {
	cmd := exec.Command(testkit.Shmmon(t), append([]string{"ctl", "--control", path}, args...)...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// programsOf returns the live processes of the case that run for one of the objects names
// (their environment holds SHMMON_NAME=name): the programs serve started for those workers.
func programsOf(tag string, names []string) map[string][]int {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string][]int{}
	for _, pid := range tagged(tag) {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			continue
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			if name, ok := strings.CutPrefix(kv, worker.EnvName+"="); ok && want[name] {
				out[name] = append(out[name], pid)
			}
		}
	}
	return out
}

// TestCtlRestartStorm: 100 workers beat under one serve while two busy loops keep both cores
// busy, and four ctl clients restart random workers, 100 restarts in all. Every restart is
// done and gives its worker a new program; no worker ever has two programs at once, none is
// lost (each beats at the end), and none is killed as hung.
func TestCtlRestartStorm(t *testing.T) {
	const workers, restarts, clients = 100, 100, 4
	c := newCase(t, fmt.Sprintf("ctl restart storm: %d restarts of random workers by %d clients, %d workers at 20 Hz, 2 CPU hogs", restarts, clients, workers),
		"every restart done with a new pid; never two programs of a worker; none lost; no kill")
	c.row.Trials = restarts
	dir := testkit.PublicDir(t)
	path, ctl := filepath.Join(dir, "shmmon.toml"), filepath.Join(dir, "control.sock")
	names := make([]string, workers)
	ws := make([]testkit.Worker, workers)
	for i := range names {
		names[i] = c.object(i)
		ws[i] = testkit.Worker{Name: names[i], Command: []string{testkit.Executable(t)}, Extra: "env = { GOMAXPROCS = \"1\" }\n"}
	}
	writeConfig(t, path, "interval = \"500ms\"\nstalls = 3\nkill_after = \"2s\"\ngrace = \"1m\"", ws)
	serve := c.start("shmmon serve", workerEnv(envPeriod+"=50"), testkit.Shmmon(t), "serve", "--config", path, "--control", ctl)
	pids := map[string]int{}
	testkit.WaitFor(t, 2*time.Minute, "every worker beating", func() bool {
		for _, name := range names {
			if pids[name] == 0 {
				if snap, err := shmobj.Read(name); err == nil && snap.Seq > 0 && snap.Record.State == shmobj.StateOK {
					pids[name] = int(snap.Record.WatchedPid)
				}
			}
		}
		return len(pids) == workers
	})
	for range 2 {
		c.start("cpu hog", []string{envMode + "=hog"}, testkit.Executable(t))
	}

	// A watcher counts each worker's programs all along: more than one is a duplicate.
	var mu sync.Mutex
	duplicates := map[string][]int{}
	samples := 0
	stop := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			progs := programsOf(c.tag, names)
			mu.Lock()
			samples++
			for name, ps := range progs {
				if len(ps) > 1 && duplicates[name] == nil {
					duplicates[name] = ps
				}
			}
			mu.Unlock()
		}
	})

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid())))
	targets := make([]string, restarts)
	for i := range targets {
		targets[i] = names[rng.IntN(workers)]
	}
	var took []time.Duration
	failed := 0
	var wg sync.WaitGroup
	start := time.Now()
	for k := range clients {
		wg.Go(func() {
			for i := k; i < restarts; i += clients {
				t0 := time.Now()
				code, out := ctlRun(t, ctl, "restart", targets[i])
				d := time.Since(t0)
				mu.Lock()
				took = append(took, d)
				if code != 0 || !strings.Contains(out, ": restarted (pid ") {
					failed++
					t.Errorf("ctl restart %s: exit %d, %q", targets[i], code, out)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	storm := time.Since(start)
	time.Sleep(2 * time.Second) // the last ones beat again
	close(stop)
	watch.Wait()

	lost := 0
	for _, name := range names {
		snap, err := shmobj.Read(name)
		if err != nil || snap.Record.State != shmobj.StateOK || !proc.Alive(int(snap.Record.WatchedPid)) {
			lost++
			t.Errorf("%s: not beating after the storm (%v, state %v)", name, err, snap.Record.State)
		}
	}
	if progs := programsOf(c.tag, names); len(progs) != workers {
		t.Errorf("%d workers have a program, want %d", len(progs), workers)
	}
	restarted := map[string]bool{}
	for _, name := range targets {
		restarted[name] = true
	}
	for name := range restarted {
		if snap, _ := shmobj.Read(name); int(snap.Record.WatchedPid) == pids[name] {
			t.Errorf("%s was restarted but has its first pid %d", name, pids[name])
		}
	}
	for name, ps := range duplicates {
		t.Errorf("%s had two programs at once: %v", name, ps)
	}
	ks := kills(&serve.Stderr)
	c.row.FalseKills = len(ks)
	for _, k := range ks {
		t.Errorf("serve killed %s pid %d as hung", k.worker, k.pid)
	}
	slices.Sort(took)
	pct := func(p float64) time.Duration { return took[int(p*float64(len(took)-1))].Round(time.Millisecond) }
	c.row.observe("%d restarts of %d workers in %v: %d failed, %d workers with two programs at once (%d samples), %d lost, %d kills; ctl restart p50 %v, p90 %v, max %v",
		restarts, len(restarted), storm.Round(time.Millisecond), failed, len(duplicates), samples, lost, len(ks), pct(0.5), pct(0.9), pct(1))
	serve.Signal(t, syscall.SIGTERM)
	if st := serve.Wait(t, time.Minute); st.ExitCode() != 0 {
		t.Errorf("serve after SIGTERM: %v", st)
	}
}

// TestLogFloodFault: 20 workers each write 1 MB/s to their log files, beating in the same
// loop: none is killed as hung (no write of theirs blocks), each log keeps to log_max_size
// and log_keep; what the disk did not take in time is dropped and counted, not waited for.
func TestLogFloodFault(t *testing.T) {
	const workers, rate, run = 20, 1 << 20, 20 * time.Second
	c := newCase(t, fmt.Sprintf("log flood: %d workers writing %d MB/s each to their log files (4 MiB, 2 kept), for %v", workers, rate>>20, run),
		"no kill; every log rotated within 4 MiB and 2 old files; drops counted, never a wait")
	c.row.Trials = workers
	dir := testkit.PublicDir(t)
	path, ctl := filepath.Join(dir, "shmmon.toml"), filepath.Join(dir, "control.sock")
	logs := t.TempDir()
	names := make([]string, workers)
	ws := make([]testkit.Worker, workers)
	for i := range names {
		names[i] = c.object(i)
		ws[i] = testkit.Worker{Name: names[i], Command: []string{testkit.Executable(t)},
			Extra: fmt.Sprintf("env = { %s = \"%d\" }\nlog = %q\n", envFlood, rate, filepath.Join(logs, fmt.Sprintf("w%d.log", i)))}
	}
	writeConfig(t, path, "interval = \"500ms\"\nstalls = 3\nkill_after = \"1s\"\nlog_max_size = \"4MiB\"\nlog_keep = 2", ws)
	serve := c.start("shmmon serve", nil, testkit.Shmmon(t), "serve", "--config", path, "--control", ctl)
	testkit.WaitFor(t, time.Minute, "every worker beating", func() bool {
		for _, name := range names {
			if snap, err := shmobj.Read(name); err != nil || snap.Seq == 0 || snap.Record.State != shmobj.StateOK {
				return false
			}
		}
		return true
	})
	time.Sleep(run)
	ks := kills(&serve.Stderr)
	c.row.FalseKills = len(ks)
	for _, k := range ks {
		t.Errorf("serve killed %s pid %d as hung", k.worker, k.pid)
	}
	var total, biggest int64
	for i := range workers {
		base := filepath.Join(logs, fmt.Sprintf("w%d.log", i))
		for j := 0; j <= 3; j++ {
			name := base
			if j > 0 {
				name = worklog.OldFile(base, j)
			}
			fi, err := os.Stat(name)
			switch {
			case j == 3 && err == nil:
				t.Errorf("%s exists: more than 2 old files", name)
			case j < 3 && err != nil:
				t.Errorf("%s: %v (not rotated?)", name, err)
			case j < 3:
				total += fi.Size()
				biggest = max(biggest, fi.Size())
			}
		}
	}
	if biggest > 4<<20 {
		t.Errorf("a log file of %d bytes, more than log_max_size", biggest)
	}
	_, out := ctlRun(t, ctl, "status", "--json")
	var dropped int64
	for _, f := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(f), `"log_dropped_bytes": `); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(v, ","), 10, 64)
			dropped += n
		}
	}
	offered := float64(workers*rate) * run.Seconds()
	c.row.observe("%d kills; %.0f MB offered to the logs in %v (%.1f MB/s); %d bytes dropped and counted (%.2f%%); largest file %d bytes",
		len(ks), offered/1e6, run, float64(workers*rate)/1e6, dropped, 100*float64(dropped)/offered, biggest)
	t.Logf("the files hold %d bytes at the end (3 files of 4 MiB at most per worker)", total)
	serve.Signal(t, syscall.SIGTERM)
	if st := serve.Wait(t, time.Minute); st.ExitCode() != 0 {
		t.Errorf("serve after SIGTERM: %v", st)
	}
}
