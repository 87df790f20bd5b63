package compat_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
)

// waitBeating waits until the object name is watched by a monitor whose worker is not the
// process not (0: any), is in state ok and has beaten, and returns the worker's pid.
func waitBeating(t *testing.T, name string, not int64) int64 {
	t.Helper()
	return int64(testkit.WaitBeating(t, startTimeout+killMargin, name, int(not)))
}

// killOnCleanup kills the processes when the test ends: supervised workers outlive a serve
// that was SIGKILLed, and must not outlive the test.
func killOnCleanup(t *testing.T, pids *[]int64) {
	t.Cleanup(func() {
		for _, pid := range *pids {
			syscall.Kill(int(pid), syscall.SIGKILL)
			syscall.Kill(int(pid), syscall.SIGCONT)
		}
	})
}

// writeConfig writes the config of ws and tail, with the check rules of the scenarios as
// its [defaults], as an editor does (see testkit.WriteConfig).
func writeConfig(t *testing.T, path string, ws []testkit.Worker, tail string) {
	t.Helper()
	head := fmt.Sprintf("[defaults]\ninterval = %q\nstalls = %d\nkill_after = %q\n", interval, stalls, killAfter)
	testkit.WriteConfig(t, path, head, ws, tail)
}

// serveWorkers returns n workers for a serve test, alternating the Go worker (the test
// binary, told its object by SHMMON_NAME) and the C++ Boost worker.
func serveWorkers(t *testing.T, base string, n int) []testkit.Worker {
	var ws []testkit.Worker
	for i := range n {
		name := fmt.Sprintf("%s-%d", base, i)
		t.Cleanup(func() { shmobj.Remove(name) })
		cmd := []string{testkit.Executable(t)}
		if i%2 == 1 {
			cmd = []string{needBoost(t).worker, name, beatMs}
		}
		ws = append(ws, testkit.Worker{Name: name, Command: cmd})
	}
	return ws
}

// startServe starts `shmmon serve` on path, in env added to the Go workers' environment: the
// Go workers it starts inherit their worker mode.
func startServe(t *testing.T, path string, env ...string) *testkit.Process {
	return start(t, "shmmon serve", append(goWorkerEnv("pkg"), env...), testkit.Shmmon(t), "serve", "--config", path)
}

// TestRun runs the C++ Boost worker, the Go worker (package-level worker.Beat, told its
// object by SHMMON_NAME) and the C and Python clients (shmmon_beat, shmmon.beat) under
// `shmmon run`: a hung worker (SIGSTOP) is killed and restarted and beats again; a crashed one (SIGKILL) is restarted; SIGTERM stops everything.
func TestRun(t *testing.T) {
	kinds := []struct {
		name    string
		command func(t *testing.T, name string) ([]string, []string) // argv, extra env
	}{
		{"boost_worker", func(t *testing.T, name string) ([]string, []string) {
			return []string{needBoost(t).worker, name, beatMs}, nil
		}},
		{"go_worker", func(t *testing.T, name string) ([]string, []string) {
			return []string{testkit.Executable(t)}, goWorkerEnv("pkg")
		}},
		// The clients' one-call forms, told the object by SHMMON_NAME.
		{"c_worker", func(t *testing.T, name string) ([]string, []string) { return cClient.command(t) }},
		{"py_worker", func(t *testing.T, name string) ([]string, []string) { return pyClient.command(t) }},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			name := objectName(t)
			argv, env := k.command(t, name)
			run := startRun(t, name, env, argv)
			var seen []int64
			killOnCleanup(t, &seen) // should run die first, its workers must not outlive the test
			beating := func(not int64) int64 {
				pid := waitBeating(t, name, not)
				seen = append(seen, pid)
				return pid
			}

			first := beating(0)
			syscall.Kill(int(first), syscall.SIGSTOP) // hung
			second := beating(first)
			if proc.Alive(int(first)) {
				t.Errorf("hung worker %d still alive after its restart", first)
			}
			syscall.Kill(int(second), syscall.SIGKILL) // crashed
			third := beating(second)

			snap, _ := shmobj.Read(name)
			if snap.Record.Kills != 1 || snap.Record.Restarts != 2 {
				t.Errorf("kills %d restarts %d, want 1 and 2", snap.Record.Kills, snap.Record.Restarts)
			}
			log := run.Stderr.String()
			if n := strings.Count(log, `msg="killing hung worker"`); n != 1 {
				t.Errorf("%d hang kills logged, want 1", n)
			}
			if !strings.Contains(log, `status="signal killed"`) {
				t.Error("the crash is not logged")
			}

			run.Terminate(t, killAfter+5*time.Second)
			if proc.Alive(int(third)) {
				t.Errorf("worker %d still alive after shmmon run stopped", third)
			}
			if _, err := os.Stat(shmobj.Path(name)); err == nil {
				t.Error("object left after shmmon run stopped")
			}
		})
	}
}

// TestServeHeartbeatNone: programs supervised without a heartbeat (heartbeat = "none", as
// the original framework's scheduler runs them) are never judged: one that exits every 2 s
// is started again each time and never killed; a periodic job that never beats runs on
// schedule. ls shows them with kind none.
func TestServeHeartbeatNone(t *testing.T) {
	exiter, job := objectName(t)+"-exits", objectName(t)+"-job"
	t.Cleanup(func() { shmobj.Remove(exiter); shmobj.Remove(job) })
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	path := filepath.Join(dir, "shmmon.toml")
	writeConfig(t, path, []testkit.Worker{
		{Name: exiter, Command: []string{"/bin/sh", "-c", "sleep 2"}, Extra: "heartbeat = \"none\"\ngrace = \"300ms\"\n"},
		{Name: job, Command: []string{"/bin/sh", "-c", "echo run >> " + runs + "; sleep 0.5"},
			Extra: "heartbeat = \"none\"\nevery = \"1s\"\ngrace = \"300ms\"\n"},
	}, "")
	serve := startServe(t, path)
	testkit.WaitFor(t, startTimeout, "the program running, kind none", func() bool {
		e, _ := lsJSON(t, exiter)
		return e.Kind == "none" && e.State == "running" && e.Pid != 0
	})
	time.Sleep(7 * time.Second) // three exits of the first, several runs of the job: never beaten
	log := serve.Stderr.Lines()
	if n := len(testkit.LinesWith(log, "msg=started", "worker="+exiter)); n < 3 {
		t.Errorf("the program that exits every 2 s was started %d times in 7 s, want at least 3", n)
	}
	if n := len(testkit.LinesWith(log, "msg=started", "worker="+job)); n < 4 {
		t.Errorf("the periodic job ran %d times in 7 s at every 1s (+0.5 s each), want at least 4", n)
	}
	for _, l := range log {
		if strings.Contains(l, "killing hung worker") || strings.Contains(l, "state=stalled") || strings.Contains(l, "state=abnormal") {
			t.Errorf("a program without a heartbeat was judged: %s", l)
		}
	}
	if e, _ := lsJSON(t, job); e.Kind != "none" {
		t.Errorf("ls shows the job as %+v, want kind none", e)
	}
}

// TestServeReload edits the config of a running serve: one worker added, one removed, one
// changed, one untouched; then an invalid edit.
func TestServeReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shmmon.toml")
	ws := serveWorkers(t, objectName(t), 4) // 0 go, 1 boost, 2 go, 3 boost
	var pids []int64
	killOnCleanup(t, &pids)

	writeConfig(t, path, ws[:3], "")
	serve := startServe(t, path)
	before := map[string]int64{}
	for _, w := range ws[:3] {
		before[w.Name] = waitBeating(t, w.Name, 0)
		pids = append(pids, before[w.Name])
	}

	// Keep 0 untouched, remove 1, change 2 (one more stall allowed), add 3.
	changed := ws[2]
	changed.Extra = fmt.Sprintf("stalls = %d\n", stalls+1)
	writeConfig(t, path, []testkit.Worker{ws[0], changed, ws[3]}, "")
	testkit.WaitLine(t, &serve.Stderr, startTimeout, "event=reload")
	if l := testkit.WaitLine(t, &serve.Stderr, startTimeout, "event=reload"); !strings.Contains(l, "started=1 stopped=1 restarted=1 unchanged=1") {
		t.Errorf("reload: %s", l)
	}
	newChanged := waitBeating(t, ws[2].Name, before[ws[2].Name])
	added := waitBeating(t, ws[3].Name, 0)
	pids = append(pids, newChanged, added)
	testkit.WaitFor(t, startTimeout, "the removed worker's object to go", func() bool {
		_, err := os.Stat(shmobj.Path(ws[1].Name))
		return os.IsNotExist(err)
	})
	if proc.Alive(int(before[ws[1].Name])) {
		t.Errorf("removed worker %d still running", before[ws[1].Name])
	}
	if proc.Alive(int(before[ws[2].Name])) {
		t.Errorf("changed worker's old process %d still running", before[ws[2].Name])
	}
	if pid := waitBeating(t, ws[0].Name, 0); pid != before[ws[0].Name] {
		t.Errorf("untouched worker restarted: pid %d, was %d", pid, before[ws[0].Name])
	}
	if snap, _ := shmobj.Read(ws[2].Name); snap.Record.Threshold != stalls+1 {
		t.Errorf("changed worker judged with threshold %d, want %d", snap.Record.Threshold, stalls+1)
	}

	// An invalid edit: an unknown key on a known line. Everything keeps running.
	writeConfig(t, path, []testkit.Worker{ws[0], changed, ws[3]}, "bogus_key = 1\n")
	data, _ := os.ReadFile(path)
	line := strings.Count(string(data), "\n") // the last line
	l := testkit.WaitLine(t, &serve.Stderr, startTimeout, "event=reload-failed")
	if want := fmt.Sprintf("shmmon.toml:%d: ", line); !strings.Contains(l, want) || !strings.Contains(l, "bogus_key") {
		t.Errorf("reload error %q does not name %q and the key", l, want)
	}
	time.Sleep(5 * interval)
	for name, pid := range map[string]int64{ws[0].Name: before[ws[0].Name], ws[2].Name: newChanged, ws[3].Name: added} {
		if got := waitBeating(t, name, 0); got != pid {
			t.Errorf("%s: pid %d after the invalid edit, want %d", name, got, pid)
		}
	}
	// The invalid edit's error lists the accepted keys, on_abnormal among them: that line
	// is not about a worker.
	for _, l := range serve.Stderr.Lines() {
		if strings.Contains(l, "abnormal") && !strings.Contains(l, "event=reload-failed") {
			t.Errorf("a healthy worker was judged abnormal during the reloads: %s", l)
		}
	}

	serve.Terminate(t, killAfter+10*time.Second)
	for _, w := range ws {
		if _, err := os.Stat(shmobj.Path(w.Name)); err == nil {
			t.Errorf("object %s left after serve stopped", w.Name)
		}
	}
}

// TestServeRestartAdopts SIGKILLs serve and starts it again: the workers it started are
// adopted, neither killed nor started a second time. Then a worker's command changes while
// serve is down: its old program is stopped, not left to run beside the new one.
func TestServeRestartAdopts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shmmon.toml")
	ws := serveWorkers(t, objectName(t), 2)
	var pids []int64
	killOnCleanup(t, &pids)
	writeConfig(t, path, ws, "")

	first := startServe(t, path)
	before := map[string]int64{}
	for _, w := range ws {
		before[w.Name] = waitBeating(t, w.Name, 0)
		pids = append(pids, before[w.Name])
	}
	first.Signal(t, syscall.SIGKILL)
	first.Wait(t, 10*time.Second)
	time.Sleep(3 * interval) // the workers beat on with no monitor

	second := startServe(t, path)
	for range ws {
		testkit.WaitLine(t, &second.Stderr, startTimeout, "event=adopt")
	}
	time.Sleep(10 * interval)
	for _, w := range ws {
		if pid := waitBeating(t, w.Name, 0); pid != before[w.Name] {
			t.Errorf("%s: pid %d after the restart, want the adopted %d", w.Name, pid, before[w.Name])
		}
		if n := countProcesses(t, w.Command); n != 1 {
			t.Errorf("%s: %d processes run %q, want 1", w.Name, n, w.Command)
		}
	}
	log := second.Stderr.String()
	if strings.Count(log, "event=adopt") != len(ws) || strings.Contains(log, "msg=started") || strings.Contains(log, "killing hung worker") {
		t.Errorf("the restarted serve did not just adopt its workers:\n%s", log)
	}

	// While serve is down, the Go worker's command changes: the restarted serve must stop
	// the old program (it would beat into the new one's object) and start the new one.
	second.Signal(t, syscall.SIGKILL)
	second.Wait(t, 10*time.Second)
	changed := ws[0]
	changed.Command = append(slices.Clone(ws[0].Command), "changed")
	writeConfig(t, path, []testkit.Worker{changed, ws[1]}, "")
	third := startServe(t, path)
	testkit.WaitLine(t, &third.Stderr, startTimeout, "event=stop-previous")
	newPid := waitBeating(t, ws[0].Name, before[ws[0].Name])
	pids = append(pids, newPid)
	testkit.WaitFor(t, startTimeout, "the previous worker to stop", func() bool {
		return !proc.Alive(int(before[ws[0].Name]))
	})
	if n := countProcesses(t, ws[0].Command); n != 0 {
		t.Errorf("%d processes still run the old command %q", n, ws[0].Command)
	}
	if n := countProcesses(t, changed.Command); n != 1 {
		t.Errorf("%d processes run the new command %q, want 1", n, changed.Command)
	}
	if pid := waitBeating(t, ws[1].Name, 0); pid != before[ws[1].Name] {
		t.Errorf("the unchanged worker was not adopted: pid %d, want %d", pid, before[ws[1].Name])
	}

	third.Terminate(t, killAfter+10*time.Second)
	for _, pid := range []int64{newPid, before[ws[1].Name]} {
		testkit.WaitFor(t, startTimeout, "the workers to stop", func() bool { return !proc.Alive(int(pid)) })
	}
}

// countProcesses counts the running processes whose argv is exactly argv.
func countProcesses(t *testing.T, argv []string) int {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range dirs {
		pid, _ := strconv.Atoi(filepath.Base(d))
		if args, err := proc.Cmdline(pid); err == nil && slices.Equal(args, argv) && proc.Alive(pid) {
			n++
		}
	}
	return n
}

// startRun starts `shmmon run` on name with the check rules of the scenarios and more flags,
// if any, before argv, the program; env is added to its environment.
func startRun(t *testing.T, name string, env, argv []string, flags ...string) *testkit.Process {
	t.Helper()
	args := append(append(append([]string{"run", "--name", name}, checkFlags...), flags...), "--")
	return start(t, "shmmon run", env, testkit.Shmmon(t), append(args, argv...)...)
}

// TestServeNotify runs serve as systemd would, with NOTIFY_SOCKET and WATCHDOG_USEC: it
// sends READY=1 once its workers are started, WATCHDOG=1 at least every half watchdog
// period, and STOPPING=1 when it stops.
func TestServeNotify(t *testing.T) {
	sock, msgs := testkit.NotifySocket(t)

	path := filepath.Join(t.TempDir(), "shmmon.toml")
	ws := serveWorkers(t, objectName(t), 1)
	var pids []int64
	killOnCleanup(t, &pids)
	writeConfig(t, path, ws, "")
	const watchdog = 400 * time.Millisecond
	serve := startServe(t, path, "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC="+strconv.Itoa(int(watchdog/time.Microsecond)))
	testkit.WaitLine(t, msgs, startTimeout, "READY=1")
	pids = append(pids, waitBeating(t, ws[0].Name, 0))
	// Half the watchdog period is 200ms: in 2 s, at least a few pings even on a loaded machine.
	time.Sleep(2 * time.Second)
	if n := strings.Count(msgs.String(), "WATCHDOG=1"); n < 3 {
		t.Errorf("%d WATCHDOG=1 in 2s with WATCHDOG_USEC=%v, want several", n, watchdog)
	}
	serve.Terminate(t, killAfter+10*time.Second)
	testkit.WaitLine(t, msgs, startTimeout, "STOPPING=1")
}

// TestServeWatchedPidfile watches a worker started elsewhere, named by a pidfile: a healthy
// one survives a restart of serve; a hung one is killed and the next process the pidfile
// names is watched; a pidfile naming a process that started after it was written is stale.
func TestServeWatchedPidfile(t *testing.T) {
	dir := t.TempDir()
	path, pidfile := filepath.Join(dir, "shmmon.toml"), filepath.Join(dir, "worker.pid")
	name := objectName(t)
	writePid := func(pid int) {
		t.Helper()
		if err := os.WriteFile(pidfile, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf("[[worker]]\nname = %q\npidfile = %q\ninterval = %q\nstalls = %d\nkill_after = %q\n",
		name, pidfile, interval, stalls, killAfter)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}

	w1 := startGoWorker(t, name, "open") // retries its open until serve publishes the object
	writePid(w1.Pid())
	serve := startServe(t, path)
	if pid := waitBeating(t, name, 0); pid != int64(w1.Pid()) {
		t.Fatalf("watching pid %d, want %d", pid, w1.Pid())
	}

	// serve dies and comes back: the healthy worker is not killed and keeps its object.
	before, _ := shmobj.Read(name)
	serve.Signal(t, syscall.SIGKILL)
	serve.Wait(t, 10*time.Second)
	serve = startServe(t, path)
	testkit.WaitLine(t, &serve.Stderr, startTimeout, "state=ok")
	time.Sleep(10 * interval)
	after, _ := shmobj.Read(name)
	if !w1.Running() || after.Record.WatchedPid != int64(w1.Pid()) || after.Seq <= before.Seq {
		t.Fatalf("after the restart: worker running %v, watched %d, seq %d -> %d; want the same worker, still beating in the same object",
			w1.Running(), after.Record.WatchedPid, before.Seq, after.Seq)
	}

	// It hangs: killed.
	w1.Signal(t, syscall.SIGSTOP)
	testkit.WaitLine(t, &serve.Stderr, startTimeout+killMargin, "state=killed")
	w1.Wait(t, 10*time.Second)

	// A pidfile last written before its process started (as when a pid is reused after the
	// file's process died) is stale: not trusted.
	w2 := startGoWorker(t, name, "open")
	writePid(w2.Pid())
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(pidfile, old, old); err != nil {
		t.Fatal(err)
	}
	testkit.WaitLine(t, &serve.Stderr, startTimeout, "stale")
	if strings.Contains(serve.Stderr.String(), fmt.Sprintf("pid=%d state=ok", w2.Pid())) {
		t.Errorf("serve watched pid %d through a pidfile written before it started", w2.Pid())
	}

	// Its supervisor writes the new pid: watched again.
	writePid(w2.Pid())
	if pid := waitBeating(t, name, int64(w1.Pid())); pid != int64(w2.Pid()) {
		t.Errorf("watching pid %d, want the new %d", pid, w2.Pid())
	}
	serve.Terminate(t, killAfter+10*time.Second)
	if !w2.Running() {
		t.Error("stopping serve killed a watched-only worker it did not start")
	}
}

// TestServeUser runs a supervised worker as another user (serve is root): the C++ worker
// runs as nobody and beats into an object it may write (mode 0666).
func TestServeUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running workers as another user needs root")
	}
	// The checkout may sit below a directory nobody cannot enter: run a copy from one it can.
	bin, err := os.ReadFile(needBoost(t).worker)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(testkit.PublicDir(t), "boost_worker")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	name := objectName(t)
	path := filepath.Join(t.TempDir(), "shmmon.toml")
	conf := fmt.Sprintf("[[worker]]\nname = %q\ncommand = [%q, %q, \"20\"]\nuser = \"nobody\"\nmode = \"0666\"\ninterval = %q\n",
		name, exe, name, interval)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var pids []int64
	killOnCleanup(t, &pids)
	serve := startServe(t, path)
	pid := waitBeating(t, name, 0)
	pids = append(pids, pid)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(status), "\nUid:\t65534\t") {
		t.Errorf("worker %d does not run as nobody (65534):\n%s", pid, status)
	}
	serve.Terminate(t, killAfter+10*time.Second)
}

// TestRunHeartbeatNone: `shmmon run --heartbeat none` supervises a program without a
// heartbeat: one that exits every second is started again each time, never judged or
// killed, and ls shows it with kind none.
func TestRunHeartbeatNone(t *testing.T) {
	name := objectName(t)
	t.Cleanup(func() { shmobj.Remove(name) })
	run := start(t, "shmmon run --heartbeat none", nil, testkit.Shmmon(t), "run", "--name", name, "--heartbeat", "none",
		"--interval", "100ms", "--grace", "300ms", "--start-limit", "100", "--", "/bin/sh", "-c", "sleep 1")
	testkit.WaitFor(t, startTimeout, "the program running, kind none", func() bool {
		e, _ := lsJSON(t, name)
		return e.Kind == "none" && e.State == "running" && e.Pid != 0
	})
	time.Sleep(4500 * time.Millisecond) // 45 intervals, 15 graces: never beaten
	log := run.Stderr.Lines()
	if n := len(testkit.LinesWith(log, "msg=started", "worker="+name)); n < 4 {
		t.Errorf("the program that exits every second was started %d times in 4.5 s, want at least 4", n)
	}
	for _, l := range log {
		if strings.Contains(l, "killing hung worker") || strings.Contains(l, "state=stalled") || strings.Contains(l, "state=abnormal") {
			t.Errorf("a program without a heartbeat was judged: %s", l)
		}
	}
	run.Terminate(t, 10*time.Second)
}
