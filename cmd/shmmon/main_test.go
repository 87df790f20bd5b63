package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/shmobj"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"shmmon"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// goneProcess returns the pid of a process that has exited and been reaped.
func goneProcess(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestBadInput(t *testing.T) {
	gone := fmt.Sprint(goneProcess(t))
	long := strings.Repeat("x", 256)
	// A name no other test uses, so the check below sees only what these commands did.
	nm := fmt.Sprintf("shmmon-badinput-%d", os.Getpid())
	tests := []struct {
		name string
		args []string
		want string // in the one-line error
	}{
		{"slash in name", []string{"watch", "--name", "a/b"}, `"a/b"`},
		{"empty name", []string{"watch", "--name", ""}, `""`},
		{"256-byte name", []string{"watch", "--name", long}, "256 bytes"},
		{"dot name", []string{"watch", "--name", ".."}, `".."`},
		{"no name", []string{"watch"}, "name"},
		{"size below 16", []string{"watch", "--name", nm, "--size", "15"}, "--size 15"},
		{"interval 0", []string{"watch", "--name", nm, "--interval", "0"}, "--interval 0s"},
		{"negative interval", []string{"watch", "--name", nm, "--interval", "-1s"}, "--interval -1s"},
		{"stalls 0", []string{"watch", "--name", nm, "--stalls", "0"}, "--stalls 0"},
		{"pid 0", []string{"watch", "--name", nm, "--pid", "0"}, "--pid 0"},
		{"pid 1", []string{"watch", "--name", nm, "--pid", "1"}, "--pid 1"},
		{"negative pid", []string{"watch", "--name", nm, "--pid", "-7"}, "--pid -7"},
		{"own pid", []string{"watch", "--name", nm, "--pid", fmt.Sprint(os.Getpid())}, "shmmon itself"},
		{"pid that does not exist", []string{"watch", "--name", nm, "--pid", gone}, "--pid " + gone + ": no such process"},
		{"non-numeric pid", []string{"watch", "--name", nm, "--pid", "abc"}, `"abc"`},
		{"non-numeric interval", []string{"watch", "--name", nm, "--interval", "soon"}, `"soon"`},
		{"non-numeric stalls", []string{"watch", "--name", nm, "--stalls", "3x"}, `"3x"`},
		{"non-numeric size", []string{"watch", "--name", nm, "--size", "big"}, `"big"`},
		{"bad signal", []string{"watch", "--name", nm, "--signal", "NOPE"}, `"NOPE"`},
		{"bad mode", []string{"watch", "--name", nm, "--mode", "0999"}, `"0999"`},
		{"kill-after 0", []string{"watch", "--name", nm, "--kill-after", "0"}, "--kill-after 0s"},
		{"negative grace", []string{"watch", "--name", nm, "--grace", "-1s"}, "--grace -1s"},
		{"unknown flag", []string{"watch", "--name", nm, "--bogus"}, "bogus"},
		{"unknown command", []string{"frobnicate"}, "frobnicate"},
		{"unknown help topic", []string{"help", "frobnicate"}, "frobnicate"},
		{"run without a command", []string{"run", "--name", nm}, "no command"},
		{"run bad restart", []string{"run", "--name", nm, "--restart", "sometimes", "--", "true"}, `"sometimes"`},
		{"run start-limit 0", []string{"run", "--name", nm, "--start-limit", "0", "--", "true"}, "--start-limit 0"},
		{"run negative every", []string{"run", "--name", nm, "--every", "-1s", "--", "true"}, "--every -1s"},
		{"run backoff over max", []string{"run", "--name", nm, "--backoff", "1m", "--", "true"}, "--backoff 1m0s"},
		{"run bad name", []string{"run", "--name", "a/b", "--", "true"}, `"a/b"`},
		{"run interval 0", []string{"run", "--name", nm, "--interval", "0", "--", "true"}, "--interval 0s"},
		{"inspect bad name", []string{"inspect", "--name", "a/b"}, `"a/b"`},
		{"app flag", []string{"--bogus"}, "shmmon: flag provided but not defined: -bogus"},
		{"bad log format", []string{"--log-format", "xml", "ls"}, `invalid --log-format "xml"`},
		{"bad log level", []string{"--log-level", "loud", "ls"}, `invalid --log-level "loud"`},
		{"checkproc bad key", []string{"checkproc", "--key", "zz"}, `invalid --key "zz"`},
		{"checkproc negative every", []string{"checkproc", "--key", "0x7e7e7e7e", "--every", "-1s"}, "--every -1s"},
		{"checkproc every below the floor", []string{"checkproc", "--key", "0x7e7e7e7e", "--every", "99ms"}, "invalid --every 99ms: want 0 (one pass) or at least 100ms"},
		{"checkproc mode without create", []string{"checkproc", "--key", "0x7e7e7e7e", "--mode", "0666"}, "want --create with them"},
		{"checkproc group without create", []string{"checkproc", "--key", "0x7e7e7e7e", "--group", "root"}, "want --create with them"},
		{"checkproc bad mode", []string{"checkproc", "--key", "0x7e7e7e7e", "--create", "--mode", "0999"}, `invalid --mode "0999"`},
		{"checkproc bad group", []string{"checkproc", "--key", "0x7e7e7e7e", "--create", "--group", "no-such-group-here"}, `invalid --group: "no-such-group-here": no such group`},
		{"proctab ls zero slots", []string{"proctab", "ls", "--slots", "0"}, "shmmon proctab ls: invalid --slots 0"},
		{"ls bad proctab key", []string{"ls", "--proctab-key", "-3"}, `invalid --proctab-key "-3"`},
		{"beat bad name", []string{"beat", "--name", ""}, `""`},
		{"serve bad listen", []string{"serve", "--config", "/nonexistent.toml", "--listen", "nonsense:xx"},
			`shmmon serve: invalid --listen: "nonsense:xx" is not a listen address (want PORT, :PORT or HOST:PORT`},
		{"serve listen port too big", []string{"serve", "--config", "/nonexistent.toml", "--listen", "65536"}, `"65536"`},
		{"serve without config", []string{"serve"}, "--config is required"},
		{"inspect without name", []string{"inspect"}, "--name is required"},
		{"beat without name", []string{"beat"}, "--name is required"},
		{"watch extra argument", []string{"watch", "--name", nm, "extra"}, `unexpected argument "extra"`},
		{"ls extra argument", []string{"ls", "extra"}, `unexpected argument "extra"`},
		{"serve extra argument", []string{"serve", "--config", "/nonexistent.toml", "extra"}, `unexpected argument "extra"`},
		{"version extra argument", []string{"version", "extra"}, `unexpected argument "extra"`},
		{"checkproc extra argument", []string{"checkproc", "extra"}, `unexpected argument "extra"`},
		{"size over the host's memory", []string{"watch", "--name", nm, "--size", "1000000000000000"}, "--size 1000000000000000"},
		{"interval whose grace overflows", []string{"watch", "--name", nm, "--interval", "300000h"}, "--interval 300000h0m0s"},
		{"run interval whose grace overflows", []string{"run", "--name", nm, "--interval", "300000h", "--", "true"}, "--interval 300000h0m0s"},
		{"run a program that does not exist", []string{"run", "--name", nm, "--", "/nonexistent/prog"}, `"/nonexistent/prog"`},
		{"run a program not in PATH", []string{"run", "--name", nm, "--", "no-such-program-of-shmmon"}, `"no-such-program-of-shmmon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			began := time.Now()
			code, stdout, stderr := runCLI(tt.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d; stderr: %s", code, exitUsage, stderr)
			}
			if took := time.Since(began); took > 2*time.Second {
				t.Errorf("took %v to refuse; want at once", took)
			}
			if stdout != "" {
				t.Errorf("printed on stdout, want only the error line on stderr:\n%s", stdout)
			}
			msg := strings.TrimSuffix(stderr, "\n")
			if msg == "" || strings.Contains(msg, "\n") {
				t.Errorf("want a one-line error, got %q", stderr)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not name %q", msg, tt.want)
			}
			if strings.Contains(msg, "panic") {
				t.Errorf("panic: %s", msg)
			}
		})
	}
	// Nothing was published by any of them.
	if _, err := os.Stat(shmobj.Path(nm)); err == nil {
		t.Errorf("%s was created by a rejected command", shmobj.Path(nm))
	}
}

func TestLsInspectBeat(t *testing.T) {
	name := fmt.Sprintf("shmmon-cli-test-%d", os.Getpid())
	seg, err := shmobj.Publish(name, shmobj.PublishOptions{WatchedPid: 4242, Threshold: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seg.Close(); shmobj.Remove(name) })
	seg.SetKind(shmobj.KindNotify)
	seg.SetStatusText("serving\t3 clients")

	for range 3 {
		if code, _, stderr := runCLI("beat", "--name", name); code != exitOK {
			t.Fatalf("beat: exit %d: %s", code, stderr)
		}
	}
	if seq, _ := seg.Seq(); seq != 3 {
		t.Errorf("seq after 3 beats = %d, want 3 (beat must not reset the worker half)", seq)
	}

	code, stdout, stderr := runCLI("ls", "--json")
	if code != exitOK {
		t.Fatalf("ls --json: exit %d: %s", code, stderr)
	}
	var views []map[string]any
	if err := json.Unmarshal([]byte(stdout), &views); err != nil {
		t.Fatalf("ls --json output is not JSON: %v\n%s", err, stdout)
	}
	var found map[string]any
	for _, v := range views {
		if v["name"] == name {
			found = v
		}
	}
	if found == nil {
		t.Fatalf("ls --json does not list %s:\n%s", name, stdout)
	}
	if found["seq"] != 3.0 || found["state"] != "waiting" || found["watched_pid"] != 4242.0 || found["monitor_alive"] != true ||
		found["kind"] != "notify" || found["status_text"] != "serving\t3 clients" {
		t.Errorf("ls --json entry = %v", found)
	}

	code, stdout, _ = runCLI("ls")
	if code != exitOK || !strings.Contains(stdout, name) || !strings.HasPrefix(stdout, "NAME") ||
		!strings.Contains(stdout, " notify ") || !strings.Contains(stdout, `"serving\t3 clients"`) {
		t.Errorf("ls: exit %d:\n%s", code, stdout)
	}

	code, stdout, _ = runCLI("inspect", "--name", name)
	if code != exitOK || !strings.Contains(stdout, "sequence:") || !strings.Contains(stdout, "4242") ||
		!strings.Contains(stdout, `"serving\t3 clients"`) || !strings.Contains(stdout, "notify") {
		t.Errorf("inspect: exit %d:\n%s", code, stdout)
	}

	missing := name + "-missing"
	if code, _, stderr := runCLI("inspect", "--name", missing); code != exitError || !strings.Contains(stderr, missing) {
		t.Errorf("inspect of a missing object: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runCLI("beat", "--name", missing); code != exitError || !strings.Contains(stderr, "monitor running") {
		t.Errorf("beat of a missing object: exit %d: %s", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runCLI("version")
	if code != exitOK || !strings.HasPrefix(stdout, "shmmon ") {
		t.Errorf("version: exit %d: %q", code, stdout)
	}
}

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
		msg  string
	}{
		{"finished", []string{"--restart", "never", "--", "true"}, exitOK, ""},
		{"failed", []string{"--restart", "never", "--", "false"}, exitError, ""},
		{"gave up", []string{"--start-limit", "2", "--backoff", "10ms", "--backoff-max", "10ms", "--", "false"}, exitGaveUp, "3 starts within 1m0s (limit 2): giving up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("shmmon-cli-run-%d-%s", os.Getpid(), strings.ReplaceAll(tt.name, " ", "-"))
			defer shmobj.Remove(name)
			code, _, stderr := runCLI(append([]string{"run", "--name", name, "--interval", "50ms"}, tt.args...)...)
			if code != tt.want {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.want, stderr)
			}
			if tt.msg != "" && !strings.Contains(stderr, tt.msg) {
				t.Errorf("stderr lacks %q:\n%s", tt.msg, stderr)
			}
			if _, err := os.Stat(shmobj.Path(name)); err == nil {
				t.Error("object left behind")
			}
		})
	}
}

func TestLogFormatJSON(t *testing.T) {
	name := fmt.Sprintf("shmmon-cli-log-%d", os.Getpid())
	defer shmobj.Remove(name)
	code, _, stderr := runCLI("--log-format", "json", "run", "--name", name, "--restart", "never", "--", "true")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) < 2 {
		t.Fatalf("want the start and the exit logged, got %q", stderr)
	}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("not a JSON line: %q: %v", l, err)
		}
		if rec["worker"] != name || rec["event"] == nil || rec["msg"] == nil {
			t.Errorf("line lacks worker/event/msg: %q", l)
		}
	}
	// --log-level warn drops the info lines of a clean run.
	code, _, stderr = runCLI("--log-level", "warn", "run", "--name", name, "--restart", "never", "--", "true")
	if code != exitOK || stderr != "" {
		t.Errorf("--log-level warn: exit %d, stderr %q; want nothing logged", code, stderr)
	}
}

func TestLsWatch(t *testing.T) {
	name := fmt.Sprintf("shmmon-cli-lswatch-%d", os.Getpid())
	seg, err := shmobj.Publish(name, shmobj.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seg.Close(); shmobj.Remove(name) })
	stop := testkit.Every(t, 10*time.Millisecond, func() { seg.Beat() }) // a worker beating about 100 times a second
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, []string{"shmmon", "ls", "--watch", "--interval", "200ms"}, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	frames := strings.Split(out.String(), "\033[H\033[2J")
	if len(frames) < 3 {
		t.Fatalf("%d refreshes in 700ms at 200ms, want at least 3:\n%s", len(frames)-1, out.String())
	}
	last := frames[len(frames)-1]
	var rate float64
	for _, l := range strings.Split(last, "\n") {
		if f := strings.Fields(l); len(f) > 5 && f[0] == name {
			rate, _ = strconv.ParseFloat(f[5], 64)
		}
	}
	// About 100 beats/s; a loaded machine beats less often, never more.
	if rate < 10 || rate > 150 {
		t.Errorf("beats/s of %s = %v, want about 100; last frame:\n%s", name, rate, last)
	}
	for _, bad := range []struct{ args []string }{
		{[]string{"ls", "--watch", "-n", "1ms"}},
		{[]string{"ls", "--watch", "--json"}},
		{[]string{"ls", "--interval", "2s"}},
	} {
		code, _, stderr := runCLI(bad.args...)
		if code != exitUsage || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, %q; want %d and one line", bad.args, code, stderr, exitUsage)
		}
	}
	if _, _, stderr := runCLI("ls", "--watch", "-n", "1ms"); !strings.Contains(stderr, "--interval 1ms") {
		t.Errorf("ls --watch -n 1ms: %q does not name the value", stderr)
	}
}

// TestServeTCPWatchdogPortBusy: a [tcp_watchdog] port that cannot be had is an error before
// any worker starts.
func TestServeTCPWatchdogPortBusy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	path := filepath.Join(t.TempDir(), "shmmon.toml")
	conf := fmt.Sprintf("[tcp_watchdog]\nlisten = %q\n", ln.Addr().String())
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI("serve", "--config", path)
	if code != exitError || !strings.Contains(stderr, "shmmon serve: tcp watchdog: listen tcp "+ln.Addr().String()) ||
		!strings.Contains(stderr, "address already in use") {
		t.Errorf("exit %d, stderr %q; want exit %d and the listen error", code, stderr, exitError)
	}
}

// TestServeListen serves an empty config with --listen: a bare port binds the loopback
// address; a port in use is an error at the start.
func TestServeListen(t *testing.T) {
	path := t.TempDir() + "/shmmon.toml"
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut testkit.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"shmmon", "serve", "--config", path, "--listen", "0"}, &out, &errOut)
	}()
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; time.Sleep(10 * time.Millisecond) {
		for _, l := range errOut.Lines() {
			if _, v, ok := strings.Cut(l, "addr="); ok && strings.Contains(l, "event=listen") {
				addr, _, _ = strings.Cut(v, " ")
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not report its address:\n%s", errOut.String())
		}
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("--listen 0 serves on %s, want the loopback address 127.0.0.1", addr)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz of an empty fleet: %d", resp.StatusCode)
	}

	// A second serve on the same port fails at once, before starting anything.
	code, _, stderr := runCLI("serve", "--config", path, "--listen", addr)
	if code != exitError || !strings.Contains(stderr, "shmmon serve: listen on "+addr) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("serve on a port in use: exit %d, %q; want %d and one line naming the address", code, stderr, exitError)
	}
	cancel()
	if code := testkit.Receive(t, done, 10*time.Second, "serve to stop"); code != exitOK {
		t.Errorf("serve exit %d after its context ended: %s", code, errOut.String())
	}
}
