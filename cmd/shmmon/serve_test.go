package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/internal/testkit"
)

// TestServeConfigNotRead: a config that is not a regular file, or too large, ends serve at
// once with one line and exit 2 (a FIFO, which nobody writes, would otherwise hold its start).
func TestServeConfigNotRead(t *testing.T) {
	tests := []struct {
		name  string
		setup func(path string) error
		want  string
	}{
		{"a FIFO", func(path string) error { return syscall.Mkfifo(path, 0o600) }, "is a named pipe, not a regular file"},
		{"larger than 16 MiB", func(path string) error {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				return err
			}
			return os.Truncate(path, config.MaxSize+1)
		}, fmt.Sprintf("is %d bytes; a config may have at most %d (16 MiB)", config.MaxSize+1, config.MaxSize)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "shmmon.toml")
			if err := tt.setup(path); err != nil {
				t.Fatal(err)
			}
			type result struct {
				code   int
				stderr string
			}
			done := make(chan result, 1)
			go func() { code, _, stderr := runCLI("serve", "--config", path); done <- result{code, stderr} }()
			r := testkit.Receive(t, done, 10*time.Second, "serve to end")
			want := "shmmon serve: config: " + path + " " + tt.want + "\n"
			if r.code != exitUsage || r.stderr != want {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", r.code, r.stderr, exitUsage, want)
			}
		})
	}
}

// serveInProcess runs serve on path until the test ends, and returns its log.
func serveInProcess(t *testing.T, path string) *testkit.Buffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut testkit.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"shmmon", "serve", "--config", path}, &out, &errOut) }()
	t.Cleanup(func() {
		cancel()
		if code := testkit.Receive(t, done, 10*time.Second, "serve to stop"); code != exitOK {
			t.Errorf("serve exit %d:\n%s", code, errOut.String())
		}
	})
	waitLog(t, &errOut, "event=serve", 1)
	return &errOut
}

// waitLog waits for n lines of log containing want and returns the last.
func waitLog(t *testing.T, log *testkit.Buffer, want string, n int) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var found []string
		for _, l := range log.Lines() {
			if strings.Contains(l, want) {
				found = append(found, l)
			}
		}
		if len(found) >= n {
			return found[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %d lines with %q:\n%s", n, want, log.String())
		}
	}
}

// watchedConfig returns a config of watched workers, one per name, whose pidfiles name
// nothing: serve waits for them, and never touches a process.
func watchedConfig(t *testing.T, names ...string) []byte {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "[[worker]]\nname = %q\npidfile = %q\n", n+fmt.Sprint(os.Getpid()), filepath.Join(t.TempDir(), "none.pid"))
	}
	return []byte(b.String())
}

// TestServeReloadEmpty: a config truncated to zero bytes is a save in progress: the running
// config stays (nothing stops) until the file is written.
func TestServeReloadEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shmmon.toml")
	one := watchedConfig(t, "empty-a")
	if err := os.WriteFile(path, one, 0o600); err != nil {
		t.Fatal(err)
	}
	log := serveInProcess(t, path)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	waitLog(t, log, "event=reload-deferred", 1)
	if strings.Contains(log.String(), "event=config-remove") || strings.Contains(log.String(), "event=reload ") {
		t.Fatalf("an empty file was applied:\n%s", log)
	}
	// The save completes: the same worker and one more.
	if err := os.WriteFile(path, append(one, watchedConfig(t, "empty-b")...), 0o600); err != nil {
		t.Fatal(err)
	}
	if l := waitLog(t, log, "event=reload ", 1); !strings.Contains(l, "started=1 stopped=0 restarted=0 unchanged=1") {
		t.Errorf("reload after the save: %s", l)
	}
}

// TestServeReloadConfigMap: a config mounted as Kubernetes mounts a ConfigMap
// (shmmon.toml -> ..data/shmmon.toml, ..data -> ..TIMESTAMP) is reloaded when ..data is
// swapped for a link to a new version.
func TestServeReloadConfigMap(t *testing.T) {
	dir := t.TempDir()
	version := func(stamp string, conf []byte) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, stamp), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, stamp, "shmmon.toml"), conf, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(stamp, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	one := watchedConfig(t, "cm-a")
	version("..2026_01_01_00_00_00.1", one)
	path := filepath.Join(dir, "shmmon.toml")
	if err := os.Symlink("..data/shmmon.toml", path); err != nil {
		t.Fatal(err)
	}
	log := serveInProcess(t, path)
	version("..2026_01_02_00_00_00.2", append(one, watchedConfig(t, "cm-b")...))
	if l := waitLog(t, log, "event=reload ", 1); !strings.Contains(l, "started=1 stopped=0 restarted=0 unchanged=1") {
		t.Errorf("reload after the swap: %s", l)
	}
}

// depsConfig returns a config of supervised workers (sleep, heartbeat "none": ready once
// started), one per entry "NAME[ KEYS]" (KEYS' names are those given plus this process's
// pid), with a control socket of the test's own.
func depsConfig(t *testing.T, workers ...string) []byte {
	sfx := fmt.Sprint(os.Getpid())
	b := strings.Builder{}
	fmt.Fprintf(&b, "[serve]\ncontrol = %q\n", filepath.Join(t.TempDir(), "ctl.sock"))
	for _, w := range workers {
		name, keys, _ := strings.Cut(w, " ")
		fmt.Fprintf(&b, "[[worker]]\nname = \"%s%s\"\ncommand = [\"sleep\", \"60\"]\nheartbeat = \"none\"\nkill_after = \"1s\"\n", name, sfx)
		for _, k := range strings.Fields(keys) {
			dep, list, _ := strings.Cut(k, "=")
			var names []string
			for _, n := range strings.Split(list, ",") {
				names = append(names, fmt.Sprintf("%q", n+sfx))
			}
			fmt.Fprintf(&b, "%s = [%s]\n", dep, strings.Join(names, ", "))
		}
	}
	return []byte(b.String())
}

// TestServeDependencyErrors: a cycle, or a name that is no worker of the file, ends serve at
// start with exit 2 and one problem naming it; on a reload, the running config stays.
func TestServeDependencyErrors(t *testing.T) {
	sfx := fmt.Sprint(os.Getpid())
	for _, tt := range []struct {
		name string
		conf []byte
		want string
	}{
		{"cycle", depsConfig(t, "dep-a after=dep-b", "dep-b binds_to=dep-a"),
			fmt.Sprintf(`binds_to: a cycle: dep-a%s -> dep-b%s -> dep-a%s (want`, sfx, sfx, sfx)},
		{"unknown", depsConfig(t, "dep-a after=dep-nope"), fmt.Sprintf(`after: "dep-nope%s" is not a worker of this file`, sfx)},
		{"self", depsConfig(t, "dep-a after=dep-a"), fmt.Sprintf(`after: "dep-a%s" is this worker itself`, sfx)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "shmmon.toml")
			if err := os.WriteFile(path, tt.conf, 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runCLI("serve", "--config", path)
			// "shmmon serve: invalid config:", then one line per problem.
			if code != exitUsage || !strings.Contains(stderr, "\n"+path+":") || !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 2 {
				t.Errorf("exit %d, stderr %q; want exit %d and one problem, FILE:LINE: KEY, with %q", code, stderr, exitUsage, tt.want)
			}
		})
	}

	path := filepath.Join(t.TempDir(), "shmmon.toml")
	good := depsConfig(t, "dep-a", "dep-b after=dep-a")
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	log := serveInProcess(t, path)
	waitLog(t, log, "event=dependencies-ready", 1)
	if err := os.WriteFile(path, depsConfig(t, "dep-a binds_to=dep-b", "dep-b after=dep-a"), 0o600); err != nil {
		t.Fatal(err)
	}
	if l := waitLog(t, log, "event=reload-failed", 1); !strings.Contains(l, fmt.Sprintf("a cycle: dep-a%s -> dep-b%s -> dep-a%s", sfx, sfx, sfx)) {
		t.Errorf("reload of a cycle: %s", l)
	}
	if n := strings.Count(log.String(), "event=start "); n != 2 || strings.Contains(log.String(), "event=config-remove") {
		t.Errorf("%d starts (want 2, the reload changed nothing), or a worker removed:\n%s", n, log)
	}
}

// TestServeWaiting: a worker waiting for a dependency (here a watched worker whose pidfile
// names nothing yet) shows waiting, with the name, in shmmon ls and shmmon ctl status; its
// program is not started.
func TestServeWaiting(t *testing.T) {
	sfx := fmt.Sprint(os.Getpid())
	dir := t.TempDir()
	sock := filepath.Join(dir, "ctl.sock")
	dep, waiter := "wait-dep"+sfx, "wait-w"+sfx
	t.Cleanup(func() { os.Remove("/dev/shm/" + dep); os.Remove("/dev/shm/" + waiter) })
	conf := fmt.Sprintf("[serve]\ncontrol = %q\n[[worker]]\nname = %q\npidfile = %q\n"+
		"[[worker]]\nname = %q\ncommand = [\"sleep\", \"60\"]\nheartbeat = \"none\"\nkill_after = \"1s\"\nafter = [%q]\n",
		sock, dep, filepath.Join(dir, "none.pid"), waiter, dep)
	path := filepath.Join(dir, "shmmon.toml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	log := serveInProcess(t, path)
	var ls string
	testkit.WaitFor(t, 10*time.Second, "ls to show the waiting worker", func() bool {
		_, ls, _ = runCLI("ls")
		for _, l := range strings.Split(ls, "\n") {
			if strings.HasPrefix(l, waiter+" ") && strings.Contains(l, " waiting ") && strings.Contains(l, `"waiting for `+dep+`"`) {
				return true
			}
		}
		return false
	})
	code, out, errOut := runCLI("ctl", "--control", sock, "status", waiter)
	if code != exitOK || !strings.Contains(out, "waiting for "+dep) {
		t.Errorf("ctl status: exit %d, %q %q; want the worker waiting for %s", code, out, errOut, dep)
	}
	code, out, _ = runCLI("ctl", "--control", sock, "status", "--json", waiter)
	if code != exitOK || !strings.Contains(out, `"supervision": "waiting"`) || !strings.Contains(out, `"waiting_for": [`) {
		t.Errorf("ctl status --json: exit %d, %s", code, out)
	}
	if strings.Contains(log.String(), "event=start ") {
		t.Errorf("the waiting worker was started:\n%s", log)
	}
}
