package control_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/worklog"
)

// logLine is a line of a worker's log file: an RFC 3339 time, out, err or log, the text.
var logLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d) (out|err|log) `)

// kills returns serve's log lines of a kill.
func kills(s *served) []string {
	return testkit.LinesWith(s.Stderr.Lines(), `msg="killing hung worker"`)
}

// TestLogFlood: a program that writes 4 MB/s to its stdout and stderr, beating in the same
// loop, is never killed as hung (its writes never block); its log rotates at log_max_size
// with at most log_keep old files, holds both streams, and ctl logs -n 5 prints five lines.
func TestLogFlood(t *testing.T) {
	const rate, run = 4 << 20, 6 * time.Second
	n := names(t, 1)
	dir := t.TempDir()
	path := filepath.Join(dir, "flood.log")
	s := startServe(t, head+fmt.Sprintf("\n[[worker]]\nname = %q\ncommand = [%q]\nenv = { %s = \"flood\", %s = \"%d\" }\n"+
		"log = %q\nlog_max_size = \"1MiB\"\nlog_keep = 3\n", n[0], exe(t), envMode, envRate, rate, path))
	pid := beating(t, n[0], 0)
	start := time.Now()
	time.Sleep(run)
	if ks := kills(s); len(ks) > 0 {
		t.Errorf("the flooding worker was killed as hung: %q", ks)
	}
	st := status(t, s)[n[0]]
	if st.Pid != pid || st.Starts != 1 || !alive(pid) {
		t.Errorf("the flooding worker: pid %d (was %d), %d starts; want it untouched", st.Pid, pid, st.Starts)
	}
	var total int64
	for i := 0; i <= 4; i++ {
		name := path
		if i > 0 {
			name = worklog.OldFile(path, i)
		}
		fi, err := os.Stat(name)
		if i == 4 {
			if err == nil {
				t.Errorf("%s exists: more than log_keep (3) old files", name)
			}
			continue
		}
		if err != nil {
			t.Fatalf("after %v at %d B/s: %v", run, rate, err)
		}
		if fi.Size() > 1<<20 {
			t.Errorf("%s is %d bytes, more than log_max_size (1 MiB)", name, fi.Size())
		}
		total += fi.Size()
	}
	data, err := os.ReadFile(worklog.OldFile(path, 1))
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{" out fff", " err fff"} {
		if !strings.Contains(string(data), tag) {
			t.Errorf("%s has no line tagged %q", worklog.OldFile(path, 1), tag)
		}
	}
	code, out, errOut := ctl(t, s.control, "logs", n[0], "-n", "5")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || len(lines) != 5 {
		t.Fatalf("ctl logs -n 5: exit %d, %d lines (%q)", code, len(lines), errOut)
	}
	for _, l := range lines {
		if !logLine.MatchString(l) {
			t.Errorf("ctl logs line %.80q: want a time and a tag", l)
		}
	}
	t.Logf("%v at %d B/s: files hold %d bytes (the last 4 MiB at most); %d bytes dropped; no kill", time.Since(start).Round(time.Millisecond),
		rate, total, st.LogDropped)

	// -f follows: lines come as they are written, until interrupted.
	cmd := exec.Command(testkit.Shmmon(t), "ctl", "--control", s.control, "logs", n[0], "-n", "0", "-f")
	f := testkit.Start(t, "ctl logs -f", cmd)
	testkit.WaitFor(t, 10*time.Second, "ctl logs -f to print 100 lines", func() bool { return len(f.Stdout.Lines()) >= 100 })
	f.Signal(t, syscall.SIGINT)
	if st := f.Wait(t, 10*time.Second); st.ExitCode() != 0 {
		t.Errorf("ctl logs -f after SIGINT: %v, want exit 0", st)
	}
}

// TestLogDiskFull: the log on a full filesystem drops and counts (status, /metrics, serve's
// log: event=log-error), the worker is not stalled, and serve keeps running.
func TestLogDiskFull(t *testing.T) {
	testkit.Require(t, os.Geteuid() == 0, "mounting a small tmpfs needs root")
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", dir).CombinedOutput(); err != nil {
		testkit.Require(t, false, fmt.Sprintf("mount -t tmpfs: %v: %s", err, out))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	n := names(t, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := startServe(t, head+fmt.Sprintf("\n[[worker]]\nname = %q\ncommand = [%q]\nenv = { %s = \"flood\", %s = \"%d\" }\nlog = %q\n",
		n[0], exe(t), envMode, envRate, 1<<20, filepath.Join(dir, "full.log")), "--listen", addr)
	pid := beating(t, n[0], 0)
	testkit.WaitLine(t, &s.Stderr, 20*time.Second, "event=log-error")
	var dropped int64
	testkit.WaitFor(t, 10*time.Second, "dropped bytes in ctl status", func() bool {
		dropped = status(t, s)[n[0]].LogDropped
		return dropped > 0
	})
	if l := testkit.LinesWith(s.Stderr.Lines(), "event=log-error"); !strings.Contains(l[0], "no space left on device") {
		t.Errorf("log-error line %q does not say why", l[0])
	}
	if e := status(t, s)[n[0]].LogError; !strings.Contains(e, "no space left on device") {
		t.Errorf("ctl status log_error %q, want why", e)
	}
	time.Sleep(2 * time.Second)
	if !s.Running() || len(kills(s)) > 0 || !alive(pid) || status(t, s)[n[0]].Pid != pid {
		t.Errorf("serve running %v, kills %q, worker %d alive %v: want serve running, the worker untouched",
			s.Running(), kills(s), pid, alive(pid))
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	series := regexp.MustCompile(`(?m)^shmmon_worker_log_dropped_bytes_total\{kind="shm",name="` + regexp.QuoteMeta(n[0]) + `"\} (\S+)$`)
	body, _ := io.ReadAll(resp.Body)
	m := series.FindSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no shmmon_worker_log_dropped_bytes_total of %s", n[0])
	}
	if v, _ := strconv.ParseFloat(string(m[1]), 64); v <= 0 {
		t.Errorf("shmmon_worker_log_dropped_bytes_total %s, want more than 0", m[1])
	}
	t.Logf("dropped %d bytes while the disk was full; serve and the worker ran on", dropped)
}

// TestLogAdopted: a program whose serve was SIGKILLed keeps writing and beating: its log
// process goes on reading its pipes, so it neither blocks nor dies of SIGPIPE, and nothing it
// wrote meanwhile is lost. A serve started again adopts it and finds its log process: the
// lines go on, and a restart's new program writes to the same file.
func TestLogAdopted(t *testing.T) {
	n := names(t, 1)
	path := filepath.Join(t.TempDir(), "count.log")
	s := startServe(t, head+workerConf(t, n[0], "count", fmt.Sprintf("log = %q", path)))
	pid := beating(t, n[0], 0)
	t.Cleanup(func() { syscall.Kill(int(pid), syscall.SIGKILL) })
	s.Signal(t, syscall.SIGKILL)
	s.Wait(t, 10*time.Second)
	before, _ := shmobj.Read(n[0])
	// Some 1500 lines of 200 bytes a second for 3 seconds: far more than a pipe holds (64 KiB).
	time.Sleep(3 * time.Second)
	after, _ := shmobj.Read(n[0])
	if !alive(pid) {
		t.Fatal("the program died after its serve was SIGKILLed")
	}
	if after.Seq < before.Seq+1000 {
		t.Errorf("the program beat %d times in 3 s without its serve, want it unblocked (thousands)", after.Seq-before.Seq)
	}
	again := s.start(t)
	testkit.WaitLine(t, &again.Stderr, 10*time.Second, "event=adopt")
	if st := status(t, s)[n[0]]; st.Pid != pid {
		t.Errorf("adopted pid %d, want %d", st.Pid, pid)
	}
	time.Sleep(500 * time.Millisecond)
	if code, out, errOut := ctl(t, s.control, "restart", n[0]); code != 0 {
		t.Fatalf("ctl restart: exit %d %q %q", code, out, errOut)
	}
	beating(t, n[0], pid)
	testkit.WaitFor(t, 10*time.Second, "the second program's first 100 lines", func() bool {
		data, _ := os.ReadFile(path)
		return strings.Count(string(data), " out count 0 ") == 2 && strings.Contains(string(data), " out count 100 ")
	})
	again.Signal(t, syscall.SIGTERM)
	again.Wait(t, 20*time.Second)
	// Every line of the first program, in order, from its start to its stop: none lost.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	next, restarts := 0, 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		_, text, ok := strings.Cut(l, " out count ")
		if !ok {
			t.Fatalf("line %.80q: want out count N", l)
		}
		num, _, _ := strings.Cut(text, " ")
		i, _ := strconv.Atoi(num)
		if i == 0 && next > 0 {
			restarts++
			if restarts > 1 {
				t.Fatalf("count began a third time at line %.80q", l)
			}
			t.Logf("the first program wrote %d lines; it beat (a line each) %d times while no serve ran", next, after.Seq-before.Seq)
			next = 0
		}
		if i != next {
			t.Fatalf("line %.80q: want count %d (lines lost)", l, next)
		}
		next++
	}
	if restarts != 1 {
		t.Errorf("%d restarts of the count in the file, want 1 (the second program's)", restarts)
	}
}

// TestLogGoroutineDump: a hung Go program killed with signal = "QUIT" prints its goroutines
// to stderr: the dump is in its log, where an operator looks first.
func TestLogGoroutineDump(t *testing.T) {
	n := names(t, 1)
	path := filepath.Join(t.TempDir(), "hang.log")
	s := startServe(t, head+fmt.Sprintf("\n[[worker]]\nname = %q\ncommand = [%q]\nenv = { %s = \"hang\", %s = \"1000\" }\nlog = %q\nsignal = \"QUIT\"\n",
		n[0], exe(t), envMode, envFor, path))
	pid := beating(t, n[0], 0)
	testkit.WaitLine(t, &s.Stderr, 20*time.Second, `msg="killing hung worker"`)
	beating(t, n[0], pid)
	data := waitFor(t, path, " err SIGQUIT: quit", " err goroutine ")
	if !strings.Contains(data, "workerMain") {
		t.Errorf("the dump in the log does not show the hung function workerMain:\n%.2000s", data)
	}
}

// waitFor waits until the file at path holds each of want, and returns it.
func waitFor(t *testing.T, path string, want ...string) string {
	t.Helper()
	var data []byte
	testkit.WaitFor(t, 10*time.Second, fmt.Sprintf("%s to hold %q", path, want), func() bool {
		data, _ = os.ReadFile(path)
		for _, w := range want {
			if !strings.Contains(string(data), w) {
				return false
			}
		}
		return true
	})
	return string(data)
}

// TestRunLog: shmmon run --log writes the program's output to the file, not to run's own; the
// log flags are checked as the config's keys are.
func TestRunLog(t *testing.T) {
	n := names(t, 1)
	path := filepath.Join(t.TempDir(), "run.log")
	cmd := exec.Command(testkit.Shmmon(t), "run", "--name", n[0], "--interval", "200ms", "--log", path, "--log-max-size", "64KiB",
		"--log-keep", "1", "--", exe(t))
	cmd.Env = append(os.Environ(), envMode+"=count")
	p := testkit.Start(t, "shmmon run", cmd)
	beating(t, n[0], 0)
	waitFor(t, path, " out count 400 ") // some 100 KB: rotated once at 64KiB
	p.Signal(t, syscall.SIGTERM)
	if st := p.Wait(t, 10*time.Second); st.ExitCode() != 0 {
		t.Errorf("run after SIGTERM: %v", st)
	}
	if strings.Contains(p.Stdout.String(), "count") {
		t.Error("the program's output went to run's stdout too")
	}
	if _, err := os.Stat(worklog.OldFile(path, 1)); err != nil {
		t.Errorf("no rotation at 64KiB: %v", err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--log", path, "--log-max-size", "1KiB"}, `invalid --log-max-size 1024: is too small (want at least 65536 (64KiB) bytes)`},
		{[]string{"--log", path, "--log-max-size", "lots"}, `invalid --log-max-size "lots": is not a size`},
		{[]string{"--log-keep", "2"}, "--log-max-size and --log-keep apply to --log"},
		{[]string{"--log", path, "--log-keep", "-1"}, "invalid --log-keep -1: is out of range (want 0 to 1000 old files)"},
	} {
		args := append(append([]string{"run", "--name", n[0]}, tt.args...), "--", "true")
		code, _, errOut := runCmd(t, exec.Command(testkit.Shmmon(t), args...))
		if code != 2 {
			t.Errorf("run %s: exit %d, want 2", strings.Join(tt.args, " "), code)
		}
		oneLine(t, "run "+strings.Join(tt.args, " "), errOut, tt.want)
	}
}
