package compat_test

import (
	"fmt"
	"net"
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
	var pid int64
	testkit.WaitFor(t, startTimeout+killMargin, name+": a worker beating", func() bool {
		snap, err := shmobj.Read(name)
		pid = snap.Record.WatchedPid
		return err == nil && pid != 0 && pid != not && snap.Seq > 0 && snap.Record.State == shmobj.StateOK
	})
	return pid
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

// serveWorker is one [[worker]] of a test config.
type serveWorker struct {
	name    string
	command []string
	extra   string // more TOML lines
}

// writeConfig writes the config as an editor does: a new file renamed over the old one.
func writeConfig(t *testing.T, path string, ws []serveWorker, tail string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[defaults]\ninterval = %q\nstalls = %d\nkill_after = %q\n", interval, stalls, killAfter)
	for _, w := range ws {
		q := make([]string, len(w.command))
		for i, a := range w.command {
			q[i] = strconv.Quote(a)
		}
		fmt.Fprintf(&b, "\n[[worker]]\nname = %q\ncommand = [%s]\n%s", w.name, strings.Join(q, ", "), w.extra)
	}
	b.WriteString(tail)
	tmp := filepath.Join(filepath.Dir(path), ".shmmon.toml.tmp")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// serveWorkers returns n workers for a serve test, alternating the Go worker (the test
// binary, told its object by SHMMON_NAME) and the C++ Boost worker.
func serveWorkers(t *testing.T, base string, n int) []serveWorker {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var ws []serveWorker
	for i := range n {
		name := fmt.Sprintf("%s-%d", base, i)
		t.Cleanup(func() { shmobj.Remove(name) })
		cmd := []string{exe}
		if i%2 == 1 {
			cmd = []string{needBoost(t).worker, name, strconv.Itoa(int(beatPeriod / time.Millisecond))}
		}
		ws = append(ws, serveWorker{name: name, command: cmd})
	}
	return ws
}

// startServe starts `shmmon serve` on path; the Go workers it starts inherit the worker mode.
func startServe(t *testing.T, path string) *testkit.Process {
	return start(t, "shmmon serve", []string{envWorker + "=pkg", envPeriod + "=" + strconv.Itoa(int(beatPeriod/time.Millisecond))},
		testkit.Shmmon(t), "serve", "--config", path)
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
		before[w.name] = waitBeating(t, w.name, 0)
		pids = append(pids, before[w.name])
	}

	// Keep 0 untouched, remove 1, change 2 (one more stall allowed), add 3.
	changed := ws[2]
	changed.extra = fmt.Sprintf("stalls = %d\n", stalls+1)
	writeConfig(t, path, []serveWorker{ws[0], changed, ws[3]}, "")
	testkit.WaitLine(t, &serve.Stderr, startTimeout, "event=reload")
	if l := testkit.WaitLine(t, &serve.Stderr, startTimeout, "event=reload"); !strings.Contains(l, "started=1 stopped=1 restarted=1 unchanged=1") {
		t.Errorf("reload: %s", l)
	}
	newChanged := waitBeating(t, ws[2].name, before[ws[2].name])
	added := waitBeating(t, ws[3].name, 0)
	pids = append(pids, newChanged, added)
	testkit.WaitFor(t, startTimeout, "the removed worker's object to go", func() bool {
		_, err := os.Stat(shmobj.Path(ws[1].name))
		return os.IsNotExist(err)
	})
	if proc.Alive(int(before[ws[1].name])) {
		t.Errorf("removed worker %d still running", before[ws[1].name])
	}
	if proc.Alive(int(before[ws[2].name])) {
		t.Errorf("changed worker's old process %d still running", before[ws[2].name])
	}
	if pid := waitBeating(t, ws[0].name, 0); pid != before[ws[0].name] {
		t.Errorf("untouched worker restarted: pid %d, was %d", pid, before[ws[0].name])
	}
	if snap, _ := shmobj.Read(ws[2].name); snap.Record.Threshold != stalls+1 {
		t.Errorf("changed worker judged with threshold %d, want %d", snap.Record.Threshold, stalls+1)
	}

	// An invalid edit: an unknown key on a known line. Everything keeps running.
	writeConfig(t, path, []serveWorker{ws[0], changed, ws[3]}, "bogus_key = 1\n")
	data, _ := os.ReadFile(path)
	line := strings.Count(string(data), "\n") // the last line
	l := testkit.WaitLine(t, &serve.Stderr, startTimeout, "event=reload-failed")
	if want := fmt.Sprintf("shmmon.toml:%d: ", line); !strings.Contains(l, want) || !strings.Contains(l, "bogus_key") {
		t.Errorf("reload error %q does not name %q and the key", l, want)
	}
	time.Sleep(5 * interval)
	for name, pid := range map[string]int64{ws[0].name: before[ws[0].name], ws[2].name: newChanged, ws[3].name: added} {
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

	serve.Signal(t, syscall.SIGTERM)
	if st := serve.Wait(t, killAfter+10*time.Second); st.ExitCode() != 0 {
		t.Errorf("serve ended with %v after SIGTERM, want exit 0", st)
	}
	for _, w := range ws {
		if _, err := os.Stat(shmobj.Path(w.name)); err == nil {
			t.Errorf("object %s left after serve stopped", w.name)
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
		before[w.name] = waitBeating(t, w.name, 0)
		pids = append(pids, before[w.name])
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
		if pid := waitBeating(t, w.name, 0); pid != before[w.name] {
			t.Errorf("%s: pid %d after the restart, want the adopted %d", w.name, pid, before[w.name])
		}
		if n := countProcesses(t, w.command); n != 1 {
			t.Errorf("%s: %d processes run %q, want 1", w.name, n, w.command)
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
	changed.command = append(slices.Clone(ws[0].command), "changed")
	writeConfig(t, path, []serveWorker{changed, ws[1]}, "")
	third := startServe(t, path)
	testkit.WaitLine(t, &third.Stderr, startTimeout, "event=stop-previous")
	newPid := waitBeating(t, ws[0].name, before[ws[0].name])
	pids = append(pids, newPid)
	testkit.WaitFor(t, startTimeout, "the previous worker to stop", func() bool {
		return !proc.Alive(int(before[ws[0].name]))
	})
	if n := countProcesses(t, ws[0].command); n != 0 {
		t.Errorf("%d processes still run the old command %q", n, ws[0].command)
	}
	if n := countProcesses(t, changed.command); n != 1 {
		t.Errorf("%d processes run the new command %q, want 1", n, changed.command)
	}
	if pid := waitBeating(t, ws[1].name, 0); pid != before[ws[1].name] {
		t.Errorf("the unchanged worker was not adopted: pid %d, want %d", pid, before[ws[1].name])
	}

	third.Signal(t, syscall.SIGTERM)
	if st := third.Wait(t, killAfter+10*time.Second); st.ExitCode() != 0 {
		t.Errorf("serve ended with %v after SIGTERM, want exit 0", st)
	}
	for _, pid := range []int64{newPid, before[ws[1].name]} {
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

// TestServeNotify runs serve as systemd would, with NOTIFY_SOCKET and WATCHDOG_USEC: it
// sends READY=1 once its workers are started, WATCHDOG=1 at least every half watchdog
// period, and STOPPING=1 when it stops.
func TestServeNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var msgs testkit.Buffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msgs.Write(append(buf[:n:n], '\n'))
		}
	}()

	path := filepath.Join(t.TempDir(), "shmmon.toml")
	ws := serveWorkers(t, objectName(t), 1)
	var pids []int64
	killOnCleanup(t, &pids)
	writeConfig(t, path, ws, "")
	const watchdog = 400 * time.Millisecond
	serve := start(t, "shmmon serve", []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=" + strconv.Itoa(int(watchdog/time.Microsecond)),
		envWorker + "=pkg", envPeriod + "=20"}, testkit.Shmmon(t), "serve", "--config", path)
	testkit.WaitLine(t, &msgs, startTimeout, "READY=1")
	pids = append(pids, waitBeating(t, ws[0].name, 0))
	// Half the watchdog period is 200ms: in 2 s, at least a few pings even on a loaded machine.
	time.Sleep(2 * time.Second)
	if n := strings.Count(msgs.String(), "WATCHDOG=1"); n < 3 {
		t.Errorf("%d WATCHDOG=1 in 2s with WATCHDOG_USEC=%v, want several", n, watchdog)
	}
	serve.Signal(t, syscall.SIGTERM)
	if st := serve.Wait(t, killAfter+10*time.Second); st.ExitCode() != 0 {
		t.Errorf("serve ended with %v, want exit 0", st)
	}
	testkit.WaitLine(t, &msgs, startTimeout, "STOPPING=1")
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
	serve.Signal(t, syscall.SIGTERM)
	if st := serve.Wait(t, killAfter+10*time.Second); st.ExitCode() != 0 {
		t.Errorf("serve ended with %v, want exit 0", st)
	}
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
	dir, err := os.MkdirTemp("", "shmmon-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin, err := os.ReadFile(needBoost(t).worker)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "boost_worker")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
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
	serve.Signal(t, syscall.SIGTERM)
	if st := serve.Wait(t, killAfter+10*time.Second); st.ExitCode() != 0 {
		t.Errorf("serve ended with %v, want exit 0", st)
	}
}
