package compat_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proctab"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/worker"
)

// The parameters of every scenario. Workers beat five times per check interval, so a loaded
// machine (2 cores, other test packages, -race) does not produce false stalls.
const (
	interval   = 100 * time.Millisecond
	stalls     = 3
	killAfter  = 500 * time.Millisecond
	beatPeriod = 20 * time.Millisecond

	// healthyFor is how long a pairing must stay healthy: at least 20 intervals.
	healthyFor = 25 * interval
	// healthyChecks is how many checks in a row a C++ checker must pass.
	healthyChecks = 20
	// startTimeout bounds waiting for a process to start, publish, or see the first beat.
	startTimeout = 10 * time.Second
	// killMargin bounds the time from SIGSTOP to the end of `shmmon watch --pid`: the
	// threshold plus one interval, the kill escalation, and 3 s for a loaded machine.
	killMargin = (stalls+1)*interval + killAfter + 3*time.Second
)

// Environment of the test binary's worker mode (see TestMain).
const (
	envWorker = "SHMMON_TEST_WORKER" // "open" (worker.Open), "pkg" (package-level worker.Beat) or "proctab"
	envPeriod = "SHMMON_TEST_PERIOD" // beat period in ms
	// envProctabKey is the System V key of the table of the "proctab" worker mode.
	envProctabKey   = "SHMMON_TEST_PROCTAB_KEY"
	envProctabSlots = "SHMMON_TEST_PROCTAB_SLOTS"
)

var (
	// beatMs is beatPeriod in milliseconds, as the workers' arguments and SHMMON_TEST_PERIOD
	// give it.
	beatMs = strconv.Itoa(int(beatPeriod / time.Millisecond))
	// checkFlags are the check rules of the scenarios as `shmmon watch` and `run` take them.
	checkFlags = []string{"--interval", interval.String(), "--stalls", strconv.Itoa(stalls), "--kill-after", killAfter.String()}
)

// goWorkerEnv is the environment that makes the test binary a Go worker in mode (see
// workerMain) beating every beatPeriod.
func goWorkerEnv(mode string) []string {
	return []string{envWorker + "=" + mode, envPeriod + "=" + beatMs}
}

// TestMain lets the test binary be the Go worker of the scenarios: with SHMMON_TEST_WORKER set
// it beats until it is killed instead of running the tests.
func TestMain(m *testing.M) {
	if mode := os.Getenv(envWorker); mode != "" {
		if strings.HasPrefix(mode, "sdnotify-") {
			os.Exit(sdNotifyMain(mode))
		}
		os.Exit(workerMain(mode))
	}
	code := m.Run()
	testkit.Cleanup()
	os.Exit(code)
}

// workerMain beats every SHMMON_TEST_PERIOD ms, through worker.Open(SHMMON_NAME) in mode
// "open" or the package-level worker.Beat in mode "pkg", and prints "ready" once it started.
// It never returns on success: the test kills it.
func workerMain(mode string) int {
	ms, err := strconv.Atoi(os.Getenv(envPeriod))
	if err != nil || ms <= 0 {
		fmt.Fprintf(os.Stderr, "compat worker: bad %s=%q: want milliseconds > 0\n", envPeriod, os.Getenv(envPeriod))
		return 2
	}
	var beat func()
	switch mode {
	case "proctab":
		// A Go client of the System V process table SHMMON_TEST_PROCTAB_KEY (with
		// SHMMON_TEST_PROCTAB_SLOTS records), named SHMMON_NAME, timeout 2 s.
		key, _ := strconv.ParseInt(os.Getenv(envProctabKey), 0, 32)
		slots, _ := strconv.Atoi(os.Getenv(envProctabSlots))
		tab, err := proctab.Open(proctab.Options{Key: int(key), SemKey: int(key), Slots: slots})
		if err != nil {
			fmt.Fprintf(os.Stderr, "compat worker: %v\n", err)
			return 1
		}
		slot, err := tab.Register(os.Getenv(worker.EnvName), 2*time.Second)
		if err != nil {
			fmt.Fprintf(os.Stderr, "compat worker: %v\n", err)
			return 1
		}
		beat = slot.Update
	case "open":
		w, err := worker.Open(os.Getenv(worker.EnvName))
		if err != nil {
			fmt.Fprintf(os.Stderr, "compat worker: %v\n", err)
			return 1
		}
		beat = w.Beat
	case "pkg":
		beat = worker.Beat
	default:
		fmt.Fprintf(os.Stderr, "compat worker: bad %s=%q: want open or pkg\n", envWorker, mode)
		return 2
	}
	fmt.Println("ready")
	tick := time.NewTicker(time.Duration(ms) * time.Millisecond)
	for range tick.C {
		beat()
	}
	return 0
}

// build holds the C and C++ peers of the scenarios, built once per test binary.
var build struct {
	once         sync.Once
	boostWorker  string
	boostChecker string
	sdNotify     string // the C notify client (libsystemd)
	boostMissing string // why the C++ peers cannot be built here; "" when they can
	boostErr     error
}

func buildAll() {
	root, err := filepath.Abs("..")
	if err != nil {
		build.boostErr = err
		return
	}
	const header = "/usr/include/boost/interprocess/shared_memory_object.hpp"
	if _, err := exec.LookPath("g++"); err != nil {
		build.boostMissing = "g++ is not installed (apt-get install g++ libboost-dev, or make deps)"
		return
	}
	if _, err := os.Stat(header); err != nil {
		build.boostMissing = "the Boost headers are not installed (" + header +
			" missing; apt-get install libboost-dev, or make deps)"
		return
	}
	const sdHeader = "/usr/include/systemd/sd-daemon.h"
	if _, err := os.Stat(sdHeader); err != nil {
		build.boostMissing = "libsystemd-dev is not installed (" + sdHeader +
			" missing; apt-get install libsystemd-dev, or make deps)"
		return
	}
	if out, err := exec.Command("make", "-C", root, "compat").CombinedOutput(); err != nil {
		build.boostErr = fmt.Errorf("make compat: %v\n%s", err, out)
		return
	}
	build.boostWorker = filepath.Join(root, "compat", "bin", "boost_worker")
	build.boostChecker = filepath.Join(root, "compat", "bin", "boost_checker")
	build.sdNotify = filepath.Join(root, "compat", "bin", "sdnotify_client")
}

// boost are the paths of the C++ peers.
type boost struct{ worker, checker string }

// needBoost returns the C++ peers, built by `make compat`. Without g++, Boost or
// libsystemd-dev (all the peers are built together) the test is skipped on a developer's
// machine and fails under CI=true (CI installs them).
func needBoost(t *testing.T) boost {
	t.Helper()
	build.once.Do(buildAll)
	testkit.Require(t, build.boostMissing == "", "compat: "+build.boostMissing)
	if build.boostErr != nil {
		t.Fatal(build.boostErr)
	}
	return boost{worker: build.boostWorker, checker: build.boostChecker}
}

// objectName returns the object name of the test, unique per test binary and test, and
// removes the object when the test ends (after its processes are killed: cleanups run last
// in, first out, and this one is registered before any process is started).
func objectName(t *testing.T) string {
	t.Helper()
	name := testkit.Name(t, "shmmon-compat")
	if err := shmobj.ValidateName(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := shmobj.Remove(name); err != nil {
			t.Errorf("removing %s: %v", name, err)
		}
	})
	return name
}

// start starts path with args and env added to the test's environment (see [testkit.Start]).
func start(t *testing.T, label string, env []string, path string, args ...string) *testkit.Process {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	return testkit.Start(t, label, cmd)
}

// startGoWorker starts the test binary as a Go worker of name ("open" or "pkg" mode) and
// waits for its "ready".
func startGoWorker(t *testing.T, name, mode string) *testkit.Process {
	t.Helper()
	p := start(t, "go worker", append(goWorkerEnv(mode), worker.EnvName+"="+name), testkit.Executable(t))
	testkit.WaitLine(t, &p.Stdout, startTimeout, "ready")
	return p
}

// startBoostWorker starts the C++ worker of name.
func startBoostWorker(t *testing.T, name string) *testkit.Process {
	t.Helper()
	return start(t, "boost_worker", nil, needBoost(t).worker, name, beatMs)
}

// startWatch starts `shmmon watch` on name with the test parameters and extra flags, and waits
// until it has published the object.
func startWatch(t *testing.T, name string, extra ...string) *testkit.Process {
	t.Helper()
	args := append(append([]string{"watch", "--name", name}, checkFlags...), extra...)
	p := start(t, "shmmon watch", nil, testkit.Shmmon(t), args...)
	testkit.WaitLine(t, &p.Stderr, startTimeout, "msg=watching")
	return p
}

// startChecker starts the C++ checker on name (4096 bytes, checks forever) and waits for its
// "ready".
func startChecker(t *testing.T, name string) *testkit.Process {
	t.Helper()
	p := start(t, "boost_checker", nil, needBoost(t).checker, name, "4096", strconv.Itoa(int(interval/time.Millisecond)))
	testkit.WaitLine(t, &p.Stdout, startTimeout, fmt.Sprintf("boost_checker %s ready size 4096", name))
	return p
}

// check is one line of boost_checker: "check K result R seq S".
type check struct {
	K      int64
	Result int
	Seq    uint64
}

func checks(p *testkit.Process) []check {
	var cs []check
	for _, l := range p.Stdout.Lines() {
		var c check
		if n, _ := fmt.Sscanf(l, "check %d result %d seq %d", &c.K, &c.Result, &c.Seq); n == 3 {
			cs = append(cs, c)
		}
	}
	return cs
}

// firstBeat returns the index of the first check that saw a beat (seq > 0), or -1.
func firstBeat(cs []check) int {
	for i, c := range cs {
		if c.Seq > 0 {
			return i
		}
	}
	return -1
}

// workerKind is one kind of worker process.
type workerKind struct {
	name  string
	start func(t *testing.T, name string) *testkit.Process
	// zeroReads: the worker clears its half before it stores the sequence, so a check may
	// read 0 in between (a Boost worker; the original checker takes it as a pass).
	zeroReads bool
}

var workers = []workerKind{
	{name: "boost_worker", start: startBoostWorker, zeroReads: true},
	{name: "go_worker", start: func(t *testing.T, name string) *testkit.Process { return startGoWorker(t, name, "open") }},
	{name: "c_worker", start: cClient.startWorker},
	{name: "py_worker", start: pyClient.startWorker},
}

// TestHang runs every pairing of monitor (Go `shmmon watch --pid`, C++ boost_checker) and
// worker (C++ boost_worker, Go worker) through a healthy phase and then a hang (SIGSTOP).
// boost_checker + boost_worker is the reference.
func TestHang(t *testing.T) {
	monitors := []struct {
		name string
		run  func(t *testing.T, w workerKind)
	}{
		{"watch", hangUnderWatch},
		{"boost_checker", hangUnderChecker},
	}
	for _, m := range monitors {
		for _, w := range workers {
			t.Run(m.name+"+"+w.name, func(t *testing.T) { m.run(t, w) })
		}
	}
}

// hangUnderWatch: `shmmon watch --pid` keeps a healthy worker in state ok, then kills it
// after it is stopped and exits 3.
func hangUnderWatch(t *testing.T, wk workerKind) {
	name := objectName(t)
	w := wk.start(t, name)
	watch := startWatch(t, name, "--pid", strconv.Itoa(w.Pid()))
	testkit.WaitLine(t, &watch.Stderr, startTimeout, "state=ok")

	time.Sleep(healthyFor)
	assertHealthyWatch(t, watch.Stderr.Lines())
	if !watch.Running() || !w.Running() {
		t.Fatalf("healthy phase: watch running %v, worker running %v; want both", watch.Running(), w.Running())
	}

	stopped := time.Now()
	w.Signal(t, syscall.SIGSTOP)
	st := watch.Wait(t, killMargin)
	took := time.Since(stopped)
	if st.ExitCode() != 3 {
		t.Errorf("watch ended with %v %s after SIGSTOP of the worker; want exit status 3", st, took.Round(time.Millisecond))
	}
	t.Logf("watch killed the stopped %s and exited %d in %v (margin %v)", wk.name, st.ExitCode(), took.Round(time.Millisecond), killMargin)

	ws := w.Wait(t, 5*time.Second)
	if status, ok := ws.Sys().(syscall.WaitStatus); !ok || !status.Signaled() {
		t.Errorf("worker ended with %v; want killed by a signal", ws)
	}
	log := watch.Stderr.Lines()
	if len(testkit.LinesWith(log, "state=abnormal", "verdict=-2")) == 0 {
		t.Error("watch log has no state=abnormal verdict=-2 line")
	}
	for _, ev := range []string{"event=signal", "event=kill", "event=exited"} {
		if len(testkit.LinesWith(log, `msg="kill step"`, ev)) == 0 {
			t.Errorf("watch log has no kill step with %s", ev)
		}
	}
	if len(testkit.LinesWith(log, "state=killed")) == 0 {
		t.Error("watch log has no state=killed line")
	}
}

// assertHealthyWatch checks that no line after the first state=ok reports a stall.
func assertHealthyWatch(t *testing.T, log []string) {
	t.Helper()
	seenOK := false
	for _, l := range log {
		if !seenOK {
			seenOK = strings.Contains(l, "state=ok")
			continue
		}
		if strings.Contains(l, "state=stalled") || strings.Contains(l, "verdict=-1") || strings.Contains(l, "abnormal") {
			t.Errorf("healthy worker: watch logged a stall: %s", l)
		}
	}
	if !seenOK {
		t.Error("watch log has no state=ok line")
	}
}

// hangUnderChecker: the C++ checker passes a healthy worker's checks, and returns -2 within
// 10 checks once the worker is stopped.
func hangUnderChecker(t *testing.T, wk workerKind) {
	name := objectName(t)
	c := startChecker(t, name)
	w := wk.start(t, name)

	var cs []check
	testkit.WaitFor(t, startTimeout+healthyChecks*interval, fmt.Sprintf("%d checks after the first beat", healthyChecks), func() bool {
		cs = checks(c)
		i := firstBeat(cs)
		return i >= 0 && len(cs) > i+healthyChecks
	})
	cs = checks(c) // every check before the stop
	assertHealthyChecks(t, cs[firstBeat(cs):], wk.zeroReads)
	if !w.Running() {
		t.Fatal("worker exited during the healthy phase")
	}

	last := cs[len(cs)-1].K
	w.Signal(t, syscall.SIGSTOP)
	var abnormal check
	testkit.WaitFor(t, 10*interval+5*time.Second, "a check with result -2", func() bool {
		for _, c := range checks(c) {
			if c.K > last && c.Result == -2 {
				abnormal = c
				return true
			}
		}
		return false
	})
	if abnormal.K > last+10 {
		t.Errorf("first -2 at check %d, %d checks after the SIGSTOP; want within 10", abnormal.K, abnormal.K-last)
	}
	t.Logf("boost_checker: -2 at check %d, %d checks after the SIGSTOP of %s", abnormal.K, abnormal.K-last, wk.name)
}

// assertHealthyChecks checks that cs (starting at the first beat) are consecutive checks that
// all passed with increasing sequences. With zeroReads a 0 read between a Boost worker's clear
// and store is allowed (it passes).
func assertHealthyChecks(t *testing.T, cs []check, zeroReads bool) {
	t.Helper()
	var prev uint64
	for i, c := range cs {
		if i > 0 && c.K != cs[i-1].K+1 {
			t.Errorf("check %d follows check %d", c.K, cs[i-1].K)
		}
		if c.Result != 0 {
			t.Errorf("healthy worker: check %d result %d seq %d; want 0", c.K, c.Result, c.Seq)
		}
		if c.Seq == 0 && zeroReads {
			continue
		}
		if c.Seq <= prev {
			t.Errorf("healthy worker: check %d seq %d after seq %d; want increasing", c.K, c.Seq, prev)
		}
		prev = c.Seq
	}
}

// TestWatchWorkerExits: a watched C++ worker that ends by itself (SIGTERM) ends
// `shmmon watch --pid` with status 0 and a state=exited line.
func TestWatchWorkerExits(t *testing.T) {
	name := objectName(t)
	w := startBoostWorker(t, name)
	watch := startWatch(t, name, "--pid", strconv.Itoa(w.Pid()))
	testkit.WaitLine(t, &watch.Stderr, startTimeout, "state=ok")

	w.Terminate(t, 5*time.Second)
	if st := watch.Wait(t, 2*interval+5*time.Second); st.ExitCode() != 0 {
		t.Errorf("watch ended with %v after its worker exited; want exit status 0", st)
	}
	if len(testkit.LinesWith(watch.Stderr.Lines(), "state=exited")) == 0 {
		t.Error("watch log has no state=exited line")
	}
	if strings.Contains(watch.Stderr.String(), "abnormal") {
		t.Error("watch log of a worker that exited by itself contains \"abnormal\"")
	}
}

// TestWatchBoostWorkerRestart: a C++ worker killed and restarted under `shmmon watch` starts
// its counter over at 1; the watch takes that as a restart, never as a hang.
func TestWatchBoostWorkerRestart(t *testing.T) {
	name := objectName(t)
	watch := startWatch(t, name)
	w := startBoostWorker(t, name)
	testkit.WaitLine(t, &watch.Stderr, startTimeout, "state=ok")
	time.Sleep(healthyFor)
	assertHealthyWatch(t, watch.Stderr.Lines())

	before := readSeq(t, name)
	w.Signal(t, syscall.SIGKILL)
	w.Wait(t, 5*time.Second)
	startBoostWorker(t, name)
	time.Sleep(2 * time.Second)

	after := readSeq(t, name)
	if after == 0 || after >= before {
		t.Errorf("sequence %d before the restart, %d two seconds after; want 0 < after < before", before, after)
	}
	testkit.WaitFor(t, 5*time.Second, fmt.Sprintf("the sequence to grow past %d", after), func() bool {
		return readSeq(t, name) > after
	})
	if !watch.Running() {
		t.Error("watch exited")
	}
	if l := testkit.LinesWith(watch.Stderr.Lines(), "abnormal"); len(l) > 0 {
		t.Errorf("a restarted worker was judged abnormal: %s", l[0])
	}
}

// lsEntry is one entry of `shmmon ls --json`.
type lsEntry struct {
	Name       string `json:"name"`
	Kind       string `json:"kind"`
	State      string `json:"state"`
	Pid        int64  `json:"pid"`
	WorkerPid  int64  `json:"worker_pid"`
	Seq        uint64 `json:"seq"`
	StatusText string `json:"status_text"`
}

// lsJSON returns the entry of name in `shmmon ls --json`, and whether there is one.
func lsJSON(t *testing.T, name string) (lsEntry, bool) {
	t.Helper()
	out, err := exec.Command(testkit.Shmmon(t), "ls", "--json").Output()
	if err != nil {
		t.Fatalf("shmmon ls --json: %v", err)
	}
	var list []lsEntry
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("shmmon ls --json: %v\n%s", err, out)
	}
	for _, e := range list {
		if e.Name == name {
			return e, true
		}
	}
	return lsEntry{}, false
}

// readSeq reads the object's sequence from its file.
func readSeq(t *testing.T, name string) uint64 {
	t.Helper()
	snap, err := shmobj.Read(name)
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	return snap.Seq
}

// TestCheckerRestartWorkerFollows: a C++ checker restarted on the same name removes and
// re-creates the object (another inode, no retired flag); the Go, C and Python workers follow
// it to the new one.
func TestCheckerRestartWorkerFollows(t *testing.T) {
	for _, wk := range workers {
		if wk.zeroReads {
			continue // the Boost worker reopens on every beat: nothing to follow
		}
		t.Run(wk.name, func(t *testing.T) { checkerRestartFollows(t, wk) })
	}
}

func checkerRestartFollows(t *testing.T, wk workerKind) {
	name := objectName(t)
	old := startChecker(t, name)
	w := wk.start(t, name)
	testkit.WaitFor(t, startTimeout, "the first checker to see a beat", func() bool { return firstBeat(checks(old)) >= 0 })

	old.Terminate(t, 5*time.Second)
	c := startChecker(t, name)
	restarted := time.Now()
	testkit.WaitFor(t, 5*time.Second, "the new checker to see a beat", func() bool { return firstBeat(checks(c)) >= 0 })
	t.Logf("the %s's beats reached the new object %v after the checker restarted", wk.name, time.Since(restarted).Round(time.Millisecond))
	testkit.WaitFor(t, startTimeout, "10 more checks", func() bool { return len(checks(c)) > firstBeat(checks(c))+10 })

	cs := checks(c)
	for _, ch := range cs {
		if ch.Result == -2 {
			t.Errorf("new checker judged the %s abnormal: check %d result -2 seq %d", wk.name, ch.K, ch.Seq)
		}
	}
	assertHealthyChecks(t, cs[firstBeat(cs):], false)
	if !w.Running() {
		t.Errorf("%s exited", wk.name)
	}
}

// TestWorkerBeforeMonitor: a worker beating the object SHMMON_NAME names with its one-call
// form (Go's package-level worker.Beat, C's shmmon_beat, Python's shmmon.beat) started before
// any monitor keeps running without an object, and beats the object once `shmmon watch`
// publishes it.
func TestWorkerBeforeMonitor(t *testing.T) {
	kinds := []struct {
		name  string
		start func(t *testing.T, name string) *testkit.Process
	}{
		{"go_worker", func(t *testing.T, name string) *testkit.Process { return startGoWorker(t, name, "pkg") }},
		{"c_worker", startOneCall(cClient)},
		{"py_worker", startOneCall(pyClient)},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) { workerBeforeMonitor(t, k.name, k.start) })
	}
}

// startOneCall starts the client beating with its one-call form, told the object by
// SHMMON_NAME, and waits for its "ready".
func startOneCall(k clientKind) func(t *testing.T, name string) *testkit.Process {
	return func(t *testing.T, name string) *testkit.Process {
		p := k.start(t, []string{worker.EnvName + "=" + name}, "--period", strconv.Itoa(int(beatPeriod/time.Millisecond)))
		testkit.WaitLine(t, &p.Stdout, startTimeout, "ready")
		return p
	}
}

func workerBeforeMonitor(t *testing.T, kind string, startWorker func(t *testing.T, name string) *testkit.Process) {
	name := objectName(t)
	w := startWorker(t, name)
	time.Sleep(1500 * time.Millisecond)
	if !w.Running() {
		t.Fatalf("%s without an object exited", kind)
	}
	if _, err := os.Stat(shmobj.Path(name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat %s with no monitor: %v; want it not to exist (workers open, never create)", shmobj.Path(name), err)
	}

	watch := startWatch(t, name)
	testkit.WaitLine(t, &watch.Stderr, 5*time.Second, "state=ok")

	if o, found := lsJSON(t, name); !found {
		t.Errorf("shmmon ls --json does not list %s", name)
	} else if o.State != "ok" || o.Seq == 0 || o.WorkerPid != int64(w.Pid()) {
		t.Errorf("shmmon ls: %s state %q seq %d worker pid %d; want state \"ok\", seq > 0, worker pid %d",
			name, o.State, o.Seq, o.WorkerPid, w.Pid())
	}
	if strings.Contains(watch.Stderr.String(), "abnormal") {
		t.Errorf("watch log contains \"abnormal\" for a worker that started first")
	}
}

// TestWatchObjectLost: `shmmon watch` survives its object being truncated or removed by a third
// party, re-publishes it, and the Go worker's beats reach the new object.
func TestWatchObjectLost(t *testing.T) {
	name := objectName(t)
	watch := startWatch(t, name)
	w := startGoWorker(t, name, "open")
	testkit.WaitLine(t, &watch.Stderr, startTimeout, "state=ok")

	steps := []struct {
		name  string
		event string
		do    func() error
	}{
		{"truncated", "event=object-truncated", func() error {
			o, err := shmobj.Open(name, shmobj.OpenOnly, 0)
			if err != nil {
				return err
			}
			defer o.Close()
			return o.Truncate(0)
		}},
		{"removed", "event=object-removed", func() error {
			_, err := shmobj.Remove(name)
			return err
		}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if len(testkit.LinesWith(watch.Stderr.Lines(), s.event)) > 0 {
				t.Fatalf("watch logged %s before the object was %s", s.event, s.name)
			}
			if err := s.do(); err != nil {
				t.Fatal(err)
			}
			lost := time.Now()
			testkit.WaitLine(t, &watch.Stderr, 5*time.Second, s.event)
			testkit.WaitFor(t, 5*time.Second, "the object to be re-published with 4096 bytes", func() bool {
				fi, err := os.Stat(shmobj.Path(name))
				return err == nil && fi.Size() == shmobj.DefaultSize
			})
			var first uint64
			testkit.WaitFor(t, 5*time.Second, "the Go worker's beats in the new object", func() bool {
				snap, err := shmobj.Read(name)
				first = snap.Seq
				return err == nil && snap.Seq > 0
			})
			testkit.WaitFor(t, 5*time.Second, fmt.Sprintf("the sequence to grow past %d", first), func() bool {
				return readSeq(t, name) > first
			})
			t.Logf("object %s: beats in the new object after %v", s.name, time.Since(lost).Round(time.Millisecond))
			if !watch.Running() || !w.Running() {
				t.Fatalf("watch running %v, Go worker running %v; want both", watch.Running(), w.Running())
			}
		})
	}

	watch.Terminate(t, 5*time.Second)
	if _, err := os.Stat(shmobj.Path(name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat %s after watch stopped: %v; want it removed", shmobj.Path(name), err)
	}
	all := watch.Stdout.String() + watch.Stderr.String()
	if strings.Contains(all, "panic") {
		t.Error("watch output contains \"panic\"")
	}
	if strings.Contains(all, "abnormal") {
		t.Error("watch log contains \"abnormal\" for a worker that kept beating")
	}
	if !w.Running() {
		t.Error("Go worker exited")
	}
}

// TestSecondMonitorRefused: a second shmmon on an object a live shmmon watches would replace
// it from under the first, and the two would fight; it is refused. Once the first is gone,
// the object is stale and the second may take it.
func TestSecondMonitorRefused(t *testing.T) {
	name := objectName(t)
	first := startWatch(t, name)
	for _, args := range [][]string{
		{"watch", "--name", name},
		{"run", "--name", name, "--", "true"},
	} {
		second := start(t, "second shmmon", nil, testkit.Shmmon(t), args...)
		st := second.Wait(t, startTimeout)
		if st.ExitCode() != 1 || !strings.Contains(second.Stderr.String(), fmt.Sprintf("pid %d watches", first.Pid())) {
			t.Errorf("%v: %v, stderr %q; want exit 1 naming the running monitor", args[0], st, second.Stderr.String())
		}
	}
	if !first.Running() || strings.Contains(first.Stderr.String(), "re-published") {
		t.Error("the first monitor was disturbed")
	}
	first.Signal(t, syscall.SIGKILL) // dies without removing its object
	first.Wait(t, startTimeout)
	third := startWatch(t, name)
	if !third.Running() {
		t.Error("a monitor could not take over the object of a dead one")
	}
}

// TestMonitorAndWorkerPausedTogether stops a watch and its worker for several intervals, as a
// machine that sleeps does, and continues them: nothing is judged until the worker has had a
// full interval to beat again, so even with --stalls 1 the healthy worker is not killed.
func TestMonitorAndWorkerPausedTogether(t *testing.T) {
	const iv = 300 * time.Millisecond
	name := objectName(t)
	w := startGoWorker(t, name, "open")
	watch := start(t, "shmmon watch", nil, testkit.Shmmon(t), "watch", "--name", name, "--pid", strconv.Itoa(w.Pid()),
		"--interval", iv.String(), "--stalls", "1", "--kill-after", killAfter.String())
	testkit.WaitLine(t, &watch.Stderr, startTimeout, "state=ok")

	for round := range 4 {
		watch.Signal(t, syscall.SIGSTOP)
		w.Signal(t, syscall.SIGSTOP)
		time.Sleep(6 * iv)
		// The monitor resumes first, the worker half an interval later: the ticker keeps its
		// phase, so a check may come before the worker is back; it must not be judged.
		watch.Signal(t, syscall.SIGCONT)
		time.Sleep(iv / 2)
		w.Signal(t, syscall.SIGCONT)
		time.Sleep(4 * iv)
		if !watch.Running() || !w.Running() || strings.Contains(watch.Stderr.String(), "abnormal") {
			t.Fatalf("round %d: a healthy worker paused with its monitor was judged hung:\n%s", round+1, watch.Stderr.String())
		}
	}
	// The guard does not hide a real hang afterwards.
	w.Signal(t, syscall.SIGSTOP)
	if st := watch.Wait(t, killMargin); st.ExitCode() != 3 {
		t.Errorf("watch ended with %v after the worker hung, want exit 3", st)
	}
}
