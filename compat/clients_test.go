package compat_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/worker"
)

// The clients of other languages: clients/c/shmmon.h, run as compat/bin/c_worker (built by
// `make compat`), and the Python package clients/python, run as compat/python/py_worker.py
// with PYTHONPATH=clients/python. The pairings with every monitor are in the tables of
// compat_test.go and run_test.go; this file has what is particular to the two clients.

var clients struct {
	once      sync.Once
	root      string
	cWorker   string
	cMissing  string // why the C worker cannot be built here; "" when it can
	cErr      error
	python    string
	pyMissing string // why there is no Python to run; "" when there is
}

func findClients() {
	root, err := filepath.Abs("..")
	if err != nil {
		clients.cErr = err
		return
	}
	clients.root = root
	if _, err := exec.LookPath("gcc"); err != nil {
		clients.cMissing = "gcc is not installed (apt-get install gcc, or make deps)"
	} else if out, err := exec.Command("make", "-C", root, "compat/bin/c_worker").CombinedOutput(); err != nil {
		clients.cErr = fmt.Errorf("make compat/bin/c_worker: %v\n%s", err, out)
	} else {
		clients.cWorker = filepath.Join(root, "compat", "bin", "c_worker")
	}
	// The python3 on PATH first (a pyenv's, say), else Debian's: make deps installs that one
	// when no python3 works.
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		path, err := exec.LookPath(p)
		if err == nil && exec.Command(path, "-c", "import sys, mmap, threading; sys.exit(sys.version_info < (3, 8))").Run() == nil {
			clients.python = path
			break
		}
	}
	if clients.python == "" {
		clients.pyMissing = "no python3 (3.8 or later) works here (apt-get install python3, or make deps)"
	}
}

// needC returns the path of the C worker. Without gcc the test is skipped on a developer's
// machine and fails under CI=true.
func needC(t *testing.T) string {
	t.Helper()
	clients.once.Do(findClients)
	testkit.Require(t, clients.cMissing == "", "compat: "+clients.cMissing)
	if clients.cErr != nil {
		t.Fatal(clients.cErr)
	}
	return clients.cWorker
}

// needPython returns the path of a working python3, as needC does for the C worker.
func needPython(t *testing.T) string {
	t.Helper()
	clients.once.Do(findClients)
	testkit.Require(t, clients.pyMissing == "", "compat: "+clients.pyMissing)
	return clients.python
}

// clientKind is one of the two clients' worker programs; both take the same flags (see
// compat/cpp/c_worker.c).
type clientKind struct {
	name string
	// command returns the argv that runs the program with args, and the environment it needs.
	command func(t *testing.T, args ...string) ([]string, []string)
	// layout lists the keys its --layout must print.
	layout []string
}

var (
	cClient = clientKind{
		name: "c_worker",
		command: func(t *testing.T, args ...string) ([]string, []string) {
			return append([]string{needC(t)}, args...), nil
		},
		layout: []string{"sequence", "pid", "record", "magic", "version", "length", "monitor_pid", "watched_pid",
			"last_seq", "last_progress", "last_check", "interval", "stalls", "threshold", "state", "retired",
			"kills", "restarts", "kind", "min_size", "max_name", "follow_ms"},
	}
	pyClient = clientKind{
		name: "py_worker",
		command: func(t *testing.T, args ...string) ([]string, []string) {
			py := needPython(t)
			script := filepath.Join(clients.root, "compat", "python", "py_worker.py")
			// No bytecode files: the tests leave the source tree as they found it.
			return append([]string{py, script}, args...),
				[]string{"PYTHONPATH=" + filepath.Join(clients.root, "clients", "python"), "PYTHONDONTWRITEBYTECODE=1"}
		},
		layout: []string{"sequence", "pid", "record", "retired", "min_size", "max_name", "follow_ms"},
	}
	clientKinds = []clientKind{cClient, pyClient}
)

// start starts the program with args and env added.
func (k clientKind) start(t *testing.T, env []string, args ...string) *testkit.Process {
	t.Helper()
	argv, extra := k.command(t, args...)
	return start(t, k.name, append(extra, env...), argv[0], argv[1:]...)
}

// startWorker starts the program beating name (through shmmon_open / shmmon.Worker) every
// beatPeriod and waits for its "ready".
func (k clientKind) startWorker(t *testing.T, name string) *testkit.Process {
	t.Helper()
	p := k.start(t, nil, "--name", name, "--period", strconv.Itoa(int(beatPeriod/time.Millisecond)))
	testkit.WaitLine(t, &p.Stdout, startTimeout, "ready")
	return p
}

// publish publishes the object name as a monitor does, closed when the test ends.
func publish(t *testing.T, name string, opts shmobj.PublishOptions) *shmobj.Segment {
	t.Helper()
	seg, err := shmobj.Publish(name, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seg.Close() })
	return seg
}

func seqOf(seg *shmobj.Segment) uint64 {
	s, _ := seg.Seq()
	return s
}

// TestClientLayout compares the byte layout the C header and the Python package use with
// package shmobj's constants.
func TestClientLayout(t *testing.T) {
	want := map[string]int64{
		"sequence": shmobj.OffSequence, "pid": shmobj.OffWorkerPid, "record": shmobj.RecordLen,
		"magic": shmobj.RecMagic, "version": shmobj.RecVersion, "length": shmobj.RecLength,
		"monitor_pid": shmobj.RecMonitorPid, "watched_pid": shmobj.RecWatchedPid, "last_seq": shmobj.RecLastSeq,
		"last_progress": shmobj.RecLastProgress, "last_check": shmobj.RecLastCheck, "interval": shmobj.RecInterval,
		"stalls": shmobj.RecStalls, "threshold": shmobj.RecThreshold, "state": shmobj.RecState,
		"retired": shmobj.RecRetired, "kills": shmobj.RecKills, "restarts": shmobj.RecRestarts, "kind": shmobj.RecKind,
		"min_size": shmobj.MinSize, "max_name": shmobj.MaxNameLen, "follow_ms": worker.FollowPeriod.Milliseconds(),
	}
	for _, k := range clientKinds {
		t.Run(k.name, func(t *testing.T) {
			argv, env := k.command(t, "--layout")
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Env = append(os.Environ(), env...)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s --layout: %v", k.name, err)
			}
			f := strings.Fields(string(out))
			if len(f)%2 != 0 {
				t.Fatalf("%s --layout printed %q: want KEY VALUE pairs", k.name, out)
			}
			got := map[string]int64{}
			for i := 0; i < len(f); i += 2 {
				v, err := strconv.ParseInt(f[i+1], 10, 64)
				if err != nil {
					t.Fatalf("%s --layout: %s %q is no number", k.name, f[i], f[i+1])
				}
				got[f[i]] = v
			}
			for _, key := range k.layout {
				g, ok := got[key]
				switch w, known := want[key]; {
				case !known:
					t.Errorf("test bug: no Go value for %q", key)
				case !ok:
					t.Errorf("%s does not print %s", k.name, key)
				case g != w:
					t.Errorf("%s: %s is %d, Go's is %d", k.name, key, g, w)
				}
			}
			if len(got) != len(k.layout) {
				t.Errorf("%s prints %d values, want %d: %q", k.name, len(got), len(k.layout), out)
			}
		})
	}
}

// TestClientHeaderBuilds compiles a program of two translation units that both call
// shmmon_beat, as C99, C11, C17 and C++11, C++17, C++20, and with a C++ unit linked to a C
// unit, with every warning an error; each run beats one published object. The units share
// the one default worker, so every beat lands: a second worker would clear the first's beats
// when it opened the object.
func TestClientHeaderBuilds(t *testing.T) {
	needC(t)
	_, gxxErr := exec.LookPath("g++")
	testkit.Require(t, gxxErr == nil, "compat: g++ is not installed (apt-get install g++, or make deps)")
	dir := t.TempDir()
	const decl = "#ifdef __cplusplus\nextern \"C\"\n#endif\nvoid other_beats(int n);\n"
	src := map[string]string{
		"main.c": "#include \"shmmon.h\"\n#include <stdlib.h>\n" + decl +
			"int main(int argc, char **argv) {\n    int i, n = argc > 1 ? atoi(argv[1]) : 0;\n" +
			"    for (i = 0; i < n; i++) shmmon_beat();\n    other_beats(n);\n    return 0;\n}\n",
		"other.c": "#include \"shmmon.h\"\n" + decl +
			"void other_beats(int n) {\n    int i;\n    for (i = 0; i < n; i++) shmmon_beat();\n}\n",
	}
	for f, s := range src {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	warn := []string{"-O2", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Wsign-conversion", "-Wshadow", "-Werror",
		"-I", filepath.Join(clients.root, "clients", "c")}
	posix := "-D_POSIX_C_SOURCE=200809L"
	builds := []struct {
		name       string
		main, rest []string // compiler and flags of main.c and of other.c
	}{
		{"c99", []string{"gcc", "-std=c99", posix}, []string{"gcc", "-std=c99", posix}},
		{"gnu99", []string{"gcc", "-std=gnu99"}, []string{"gcc", "-std=gnu99"}},
		{"c11", []string{"gcc", "-std=c11", posix}, []string{"gcc", "-std=c11", posix}},
		{"c17", []string{"gcc", "-std=c17", posix}, []string{"gcc", "-std=c17", posix}},
		{"c++11", []string{"g++", "-x", "c++", "-std=c++11"}, []string{"g++", "-x", "c++", "-std=c++11"}},
		{"c++17", []string{"g++", "-x", "c++", "-std=c++17"}, []string{"g++", "-x", "c++", "-std=c++17"}},
		{"c++20", []string{"g++", "-x", "c++", "-std=c++20"}, []string{"g++", "-x", "c++", "-std=c++20"}},
		{"c++17+c11", []string{"g++", "-x", "c++", "-std=c++17"}, []string{"gcc", "-std=c11", posix}},
	}
	for _, b := range builds {
		t.Run(b.name, func(t *testing.T) {
			exe := filepath.Join(dir, b.name)
			compile := func(cc []string, src, obj string) {
				t.Helper()
				args := append(append(append([]string{}, cc[1:]...), warn...), "-c", "-o", obj, filepath.Join(dir, src))
				if out, err := exec.Command(cc[0], args...).CombinedOutput(); err != nil {
					t.Fatalf("%s %s: %v\n%s", cc[0], strings.Join(args, " "), err, out)
				}
			}
			compile(b.main, "main.c", exe+"-main.o")
			compile(b.rest, "other.c", exe+"-other.o")
			if out, err := exec.Command(b.main[0], "-o", exe, exe+"-main.o", exe+"-other.o").CombinedOutput(); err != nil {
				t.Fatalf("link: %v\n%s", err, out)
			}
			name := objectName(t)
			seg := publish(t, name, shmobj.PublishOptions{})
			cmd := exec.Command(exe, "1000")
			cmd.Env = append(os.Environ(), worker.EnvName+"="+name)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", exe, err, out)
			}
			snap, err := seg.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if snap.Seq != 2000 || snap.WorkerPid != int64(cmd.Process.Pid) {
				t.Errorf("seq %d, worker pid %d; want 2000 (1000 beats from each unit) and pid %d", snap.Seq, snap.WorkerPid, cmd.Process.Pid)
			}
		})
	}
	// A strict ISO mode without POSIX gets one line saying what to add.
	t.Run("c99-without-posix", func(t *testing.T) {
		out, err := exec.Command("gcc", append([]string{"-std=c99"}, append(warn, "-c", "-o", filepath.Join(dir, "x.o"), filepath.Join(dir, "other.c"))...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "-D_POSIX_C_SOURCE=200809L") {
			t.Errorf("gcc -std=c99 without POSIX: %v\n%s\nwant a failure naming -D_POSIX_C_SOURCE=200809L", err, out)
		}
	})
}

// needStrace returns the path of strace, which traces the clients' system calls.
func needStrace(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("strace")
	testkit.Require(t, err == nil, "compat: strace is not installed (apt-get install strace, or make deps)")
	return path
}

// trace runs the client under strace -f with args, and returns the trace's lines.
func trace(t *testing.T, k clientKind, straceArgs []string, args ...string) []string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "trace")
	argv, env := k.command(t, args...)
	cmd := exec.Command(needStrace(t), append(append(append([]string{"-f", "-o", out}, straceArgs...), "--"), argv...)...)
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("strace %s: %v\n%s", strings.Join(argv, " "), err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	for s := bufio.NewScanner(f); s.Scan(); {
		lines = append(lines, s.Text())
	}
	return lines
}

// TestClientBeatNoSystemCall traces a burst of beats, past the first once-per-second check:
// not one system call between the two marks around it, and every beat landed.
func TestClientBeatNoSystemCall(t *testing.T) {
	for _, k := range clientKinds {
		t.Run(k.name, func(t *testing.T) {
			// A burst well under the follow period: that once-a-second check makes calls.
			n := map[string]int{"c_worker": 1000000, "py_worker": 100000}[k.name]
			name := objectName(t)
			seg := publish(t, name, shmobj.PublishOptions{})
			lines := trace(t, k, nil, "--name", name, "--burst", strconv.Itoa(n))
			begin, end := -1, -1
			for i, l := range lines {
				switch {
				case strings.Contains(l, `write(2, "burst begin\n"`):
					begin = i
				case strings.Contains(l, `write(2, "burst end\n"`):
					end = i
				}
			}
			if begin < 0 || end < begin {
				t.Fatalf("no burst marks in the trace (begin line %d, end line %d):\n%s", begin, end, strings.Join(lines, "\n"))
			}
			if calls := lines[begin+1 : end]; len(calls) > 0 {
				t.Errorf("%d system calls during %d beats, want none:\n%s", len(calls), n, strings.Join(calls, "\n"))
			}
			if s := seqOf(seg); s != uint64(n+2) {
				t.Errorf("sequence %d after %d beats", s, n+2)
			}
		})
	}
}

// TestClientRetriesOncePerSecond: a client started before its object tries to open it about
// once per second (traced), and beats it once it is published.
func TestClientRetriesOncePerSecond(t *testing.T) {
	for _, k := range clientKinds {
		t.Run(k.name, func(t *testing.T) {
			name := objectName(t)
			const run = 3500 * time.Millisecond
			published := make(chan *shmobj.Segment, 1)
			go func() {
				time.Sleep(run / 2)
				seg, err := shmobj.Publish(name, shmobj.PublishOptions{})
				if err != nil {
					t.Error(err)
				}
				published <- seg
			}()
			lines := trace(t, k, []string{"-e", "trace=%file"}, "--name", name, "--period", "10", "--for", strconv.Itoa(int(run/time.Millisecond)))
			seg := <-published
			if seg == nil {
				return
			}
			defer seg.Close()
			var opens []string
			for _, l := range lines {
				if strings.Contains(l, "open") && strings.Contains(l, `/`+name+`"`) {
					opens = append(opens, l)
				}
			}
			// One open at the start, then one per second: 4 in 3.5 s, on a loaded machine 3 to 5.
			if len(opens) < 3 || len(opens) > 5 {
				t.Errorf("%d opens of the object in %v, want about one per second:\n%s", len(opens), run, strings.Join(opens, "\n"))
			}
			if s := seqOf(seg); s == 0 {
				t.Errorf("no beat in the object published %v after the start", run/2)
			}
			t.Logf("%d opens in %v; %d beats in the object published half-way", len(opens), run, seqOf(seg))
		})
	}
}

// TestClientFollowsRetired: an object its monitor marks retired, though still under its name
// and the same file, is reopened within about a second (the reopen starts the sequence over).
func TestClientFollowsRetired(t *testing.T) {
	for _, k := range clientKinds {
		t.Run(k.name, func(t *testing.T) {
			name := objectName(t)
			seg := publish(t, name, shmobj.PublishOptions{})
			p := k.startWorker(t, name)
			testkit.WaitFor(t, startTimeout, "20 beats", func() bool { return seqOf(seg) >= 20 })
			if err := seg.MarkRetired(); err != nil {
				t.Fatal(err)
			}
			retired := time.Now()
			high := seqOf(seg)
			testkit.WaitFor(t, 3*time.Second, "the worker to reopen the retired object (its sequence starts over)", func() bool {
				s := seqOf(seg)
				if s >= high {
					high = s
					return false
				}
				return true
			})
			t.Logf("reopened %v after the object was marked retired", time.Since(retired).Round(time.Millisecond))
			snap, _ := seg.Snapshot()
			if snap.WorkerPid != int64(p.Pid()) {
				t.Errorf("worker pid %d after the reopen, want %d", snap.WorkerPid, p.Pid())
			}
		})
	}
}

// TestClientBadName: a bad object name is refused with exit 2 and a line naming it; a bad
// SHMMON_NAME makes the one-call beat a no-op, never a crash.
func TestClientBadName(t *testing.T) {
	for _, k := range clientKinds {
		t.Run(k.name, func(t *testing.T) {
			for _, bad := range []string{"a/b", ".", "..", strings.Repeat("x", 256)} {
				p := k.start(t, nil, "--name", bad)
				st := p.Wait(t, startTimeout)
				shown := bad
				if len(shown) > 40 {
					shown = shown[:40]
				}
				if st.ExitCode() != 2 || !strings.Contains(p.Stderr.String(), shown) {
					t.Errorf("--name %.20q: %v, stderr %q; want exit 2 naming it", bad, st, p.Stderr.String())
				}
			}
			p := k.start(t, []string{worker.EnvName + "=a/b"}, "--for", "100")
			if st := p.Wait(t, startTimeout); st.ExitCode() != 0 {
				t.Errorf("SHMMON_NAME=a/b: %v, stderr %q; want beats that do nothing and exit 0", st, p.Stderr.String())
			}
		})
	}
}

// TestClientTruncatedUnderRun: the documented SIGBUS case. An object truncated by a third
// party faults the client's next beat (SIGBUS); `shmmon run` re-publishes the object and
// restarts the program, which beats again.
func TestClientTruncatedUnderRun(t *testing.T) {
	for _, k := range clientKinds {
		t.Run(k.name, func(t *testing.T) {
			name := objectName(t)
			argv, env := k.command(t)
			args := append([]string{"run", "--name", name, "--interval", interval.String(),
				"--stalls", strconv.Itoa(stalls), "--kill-after", killAfter.String(), "--"}, argv...)
			run := start(t, "shmmon run", env, testkit.Shmmon(t), args...)
			var seen []int64
			killOnCleanup(t, &seen)
			first := waitBeating(t, name, 0)
			seen = append(seen, first)

			o, err := shmobj.Open(name, shmobj.OpenOnly, 0)
			if err != nil {
				t.Fatal(err)
			}
			err = o.Truncate(0)
			o.Close()
			if err != nil {
				t.Fatal(err)
			}
			second := waitBeating(t, name, first)
			seen = append(seen, second)
			if l := testkit.WaitLine(t, &run.Stderr, startTimeout, `msg="worker ended"`); !strings.Contains(l, fmt.Sprintf("pid=%d", first)) ||
				!strings.Contains(l, `status="signal bus error"`) {
				t.Errorf("the first worker's end: %s; want pid %d killed by SIGBUS", l, first)
			}
			run.Signal(t, syscall.SIGTERM)
			if st := run.Wait(t, killAfter+5*time.Second); st.ExitCode() != 0 {
				t.Errorf("shmmon run ended with %v after SIGTERM, want exit 0", st)
			}
		})
	}
}

// TestWatchRestartFollows: `shmmon watch` dies (SIGKILL) and a new one takes over the name
// with a smaller object, published over the stale one; every kind of worker follows it without
// a restart. The old object keeps its size: shmmon never shrinks an object in place, which is
// what the C and Python clients' SIGBUS policy relies on.
func TestWatchRestartFollows(t *testing.T) {
	for _, wk := range workers {
		t.Run(wk.name, func(t *testing.T) {
			name := objectName(t)
			w := wk.start(t, name)
			first := startWatch(t, name, "--size", "16384")
			testkit.WaitLine(t, &first.Stderr, startTimeout, "state=ok")
			old, err := os.Open(shmobj.Path(name)) // the old object, as a worker's mapping holds it
			if err != nil {
				t.Fatal(err)
			}
			defer old.Close()
			first.Signal(t, syscall.SIGKILL) // leaves its object behind
			first.Wait(t, startTimeout)

			second := startWatch(t, name, "--size", "4096")
			replaced := time.Now()
			testkit.WaitLine(t, &second.Stderr, startTimeout, "state=ok")
			t.Logf("%s followed the new object: state ok %v after the new watch published it", wk.name, time.Since(replaced).Round(time.Millisecond))
			was, err := old.Stat()
			if err != nil {
				t.Fatal(err)
			}
			now, err := os.Stat(shmobj.Path(name))
			if err != nil {
				t.Fatal(err)
			}
			if os.SameFile(was, now) || now.Size() != 4096 {
				t.Errorf("the new watch did not publish a new 4096-byte object (same file %v, size %d)", os.SameFile(was, now), now.Size())
			}
			if was.Size() != 16384 {
				t.Errorf("the old object shrank in place to %d bytes, want it left at 16384", was.Size())
			}
			s := readSeq(t, name)
			testkit.WaitFor(t, startTimeout, fmt.Sprintf("the sequence to grow past %d", s), func() bool { return readSeq(t, name) > s })
			if !w.Running() {
				t.Errorf("%s exited: %s", wk.name, w.Stderr.Tail(500))
			}
			if l := testkit.LinesWith(second.Stderr.Lines(), "abnormal"); len(l) > 0 {
				t.Errorf("the following worker was judged abnormal: %s", l[0])
			}
		})
	}
}

// TestServeClientThreads runs the C and the Python client under serve, each with 8 threads
// beating at once, while the test reads the sequence as fast as it can: it never goes back (no
// torn store), and once the program is done it is exactly the number of beats (none lost).
func TestServeClientThreads(t *testing.T) {
	runs := []struct {
		k             clientKind
		threads, each int
	}{
		{cClient, 8, 50000},
		{pyClient, 8, 20000},
	}
	path := filepath.Join(t.TempDir(), "shmmon.toml")
	base := objectName(t)
	var ws []testkit.Worker
	var env []string
	for _, r := range runs {
		name := base + "-" + r.k.name
		t.Cleanup(func() { shmobj.Remove(name) })
		argv, e := r.k.command(t, "--threads", strconv.Itoa(r.threads), "--beats", strconv.Itoa(r.each))
		env = append(env, e...)
		// Not restarted: serve removes the object once the program is done, and the test's own
		// mapping keeps the last count.
		ws = append(ws, testkit.Worker{Name: name, Command: argv, Extra: "restart = \"never\"\n"})
	}
	var pids []int64
	killOnCleanup(t, &pids)
	writeConfig(t, path, ws, "")
	serve := start(t, "shmmon serve", env, testkit.Shmmon(t), "serve", "--config", path)

	// One reader per object, on a mapping of its own, from its publication on.
	type reader struct {
		seg         *shmobj.Segment
		reads, back atomic.Int64
		from, to    atomic.Uint64 // the first step back
	}
	readers := make([]*reader, len(ws))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, w := range ws {
		r := &reader{}
		testkit.WaitFor(t, startTimeout, w.Name+" published", func() bool {
			seg, err := shmobj.Attach(w.Name)
			r.seg = seg
			return err == nil
		})
		t.Cleanup(func() { r.seg.Close() })
		readers[i] = r
		wg.Go(func() {
			var last uint64
			for {
				select {
				case <-stop:
					return
				default:
				}
				for range 1000 {
					s, _ := r.seg.Seq()
					if s < last && r.back.Add(1) == 1 {
						r.from.Store(last)
						r.to.Store(s)
					}
					last = s
				}
				r.reads.Add(1000)
			}
		})
	}
	for i, r := range runs {
		want := r.threads * r.each
		testkit.WaitLine(t, &serve.Stdout, startTimeout+time.Duration(want/1000)*time.Second, fmt.Sprintf("beats %d", want))
		testkit.WaitFor(t, startTimeout, ws[i].Name+" to end", func() bool {
			return len(testkit.LinesWith(serve.Stderr.Lines(), `msg="worker ended"`, "worker="+ws[i].Name+" ", `status="exit 0"`)) > 0
		})
	}
	close(stop)
	wg.Wait()
	for i, r := range runs {
		want := uint64(r.threads * r.each)
		rd := readers[i]
		snap, err := rd.seg.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		started := testkit.LinesWith(serve.Stderr.Lines(), "msg=started", "worker="+ws[i].Name+" ")
		if len(started) != 1 || !strings.Contains(started[0], fmt.Sprintf(" pid=%d ", snap.WorkerPid)) {
			t.Fatalf("%s: the object's worker pid is %d; serve started %q", r.k.name, snap.WorkerPid, started)
		}
		if snap.Seq != want {
			t.Errorf("%s: sequence %d after %d threads beat %d times each, want exactly %d", r.k.name, snap.Seq, r.threads, r.each, want)
		}
		if rd.back.Load() > 0 {
			t.Errorf("%s: the sequence went back %d times in %d reads, first from %d to %d", r.k.name, rd.back.Load(), rd.reads.Load(), rd.from.Load(), rd.to.Load())
		}
		t.Logf("%s: %d beats from %d threads; %d reads from its publication to the end of both programs, %d going back", r.k.name, want, r.threads, rd.reads.Load(), rd.back.Load())
	}
	for _, w := range ws {
		if len(testkit.LinesWith(serve.Stderr.Lines(), "worker="+w.Name+" ", "state=ok")) == 0 {
			t.Errorf("serve never judged %s ok", w.Name)
		}
	}
	log := serve.Stderr.String()
	if strings.Contains(log, "killing hung worker") || strings.Contains(log, "state=stalled") {
		t.Errorf("serve judged a beating client stalled or hung:\n%s", log)
	}
	serve.Signal(t, syscall.SIGTERM)
	if st := serve.Wait(t, killAfter+10*time.Second); st.ExitCode() != 0 {
		t.Errorf("serve ended with %v after SIGTERM, want exit 0", st)
	}
}

// TestClientPythonInstall installs the package with pip into a fresh virtual environment with
// no package index (no network), and beats an object with it from outside the source tree.
func TestClientPythonInstall(t *testing.T) {
	py := needPython(t)
	testkit.Require(t, exec.Command(py, "-c", "import venv, ensurepip; ensurepip.version()").Run() == nil,
		"compat: "+py+" cannot make virtual environments (apt-get install python3-venv, or make deps)")
	dir := t.TempDir()
	env := []string{"PYTHONDONTWRITEBYTECODE=1", "PIP_DISABLE_PIP_VERSION_CHECK=1"}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "PYTHONPATH=") {
			env = append(env, e)
		}
	}
	runIn := func(cwd string, extra []string, argv ...string) string {
		t.Helper()
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir, cmd.Env = cwd, append(env, extra...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
		return string(out)
	}
	venv := filepath.Join(dir, "venv")
	runIn(dir, nil, py, "-m", "venv", venv)
	runIn(dir, nil, filepath.Join(venv, "bin", "pip"), "install", "--no-index", "--no-cache-dir", filepath.Join(clients.root, "clients", "python"))

	name := objectName(t)
	seg := publish(t, name, shmobj.PublishOptions{})
	out := runIn(dir, []string{worker.EnvName + "=" + name}, filepath.Join(venv, "bin", "python"), "-c",
		"import shmmon; print(shmmon.__file__); shmmon.beat(); shmmon.beat()")
	if !strings.HasPrefix(strings.TrimSpace(out), venv) {
		t.Errorf("imported shmmon from %q, want the virtual environment %s", strings.TrimSpace(out), venv)
	}
	if s := seqOf(seg); s != 2 {
		t.Errorf("sequence %d after two beats of the installed package", s)
	}
	if _, err := os.Stat(filepath.Join(clients.root, "clients", "python", "build")); err == nil {
		t.Error("pip left a build directory in the source tree")
	}
}
