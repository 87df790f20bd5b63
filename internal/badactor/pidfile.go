package badactor

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/shmobj"
)

// The attacks on serve's pidfiles (path 3 of the security issue) and on the special files it
// opens (path 6): a pidfile another user may write that names a root process, and FIFOs
// planted as a pidfile or swapped in for the config.
func init() {
	modes["write-file"] = mode{"PATH TEXT", 2, 2, writeFileMain}
	modes["mkfifo"] = mode{"PATH", 1, 1, mkfifoMain}
	modes["swap-fifo"] = mode{"PATH", 1, 1, swapFifoMain}
	register(3, Scenario{Name: "foreign pidfile", Run: foreignPidfile})
	register(6, Scenario{Name: "FIFO pidfile", Run: fifoPidfile})
	register(6, Scenario{Name: "FIFO config", Run: fifoConfig})
}

// pidfileDefaults are the [defaults] of the scenarios' serve: a worker that never beats is
// judged hung within a few hundred milliseconds, so a pidfile that is trusted gets its process
// killed well within a trial.
const pidfileDefaults = "[defaults]\ninterval = \"50ms\"\nstalls = 2\ngrace = \"100ms\"\nkill_after = \"200ms\"\n"

// pidfileWatch is how long a trial lets serve run with its workers: 20 intervals, many past
// the grace and the stalls.
const pidfileWatch = time.Second

// foreignPidfile runs serve (root) with watched workers whose pidfiles another user could have
// written, each naming a root victim that never beats its object: a pidfile the attacker owns
// in a directory it owns; a root-owned pidfile in a directory every user may write; a pidfile
// owned by the attacker (a daemon's own, say) in a root directory. None may be trusted, so no
// victim may be signalled, and each refusal must be logged.
func foreignPidfile(t testing.TB, trials int) Outcome {
	a := newAttack(t, trials)
	for trial := range trials {
		base := testkit.PublicDir(t)
		openDir, rootDir := filepath.Join(base, "open"), filepath.Join(base, "root")
		a.mkdir(openDir, 0o777)
		a.mkdir(rootDir, 0o755)
		cases := []struct {
			what, path string
			plant      func(path, pid string)
			v          *Victim
		}{
			{what: "the attacker's pidfile in its own directory", path: filepath.Join(a.userDir(base, "attacker"), "w.pid"),
				plant: func(path, pid string) { a.as("", "write-file", path, pid) }},
			{what: "root's pidfile in a directory others may write", path: filepath.Join(openDir, "w.pid"),
				plant: func(path, pid string) { a.writeFile(path, pid, 0o644) }},
			{what: "the attacker's pidfile in a root directory", path: filepath.Join(rootDir, "w.pid"),
				plant: func(path, pid string) {
					a.writeFile(path, pid, 0o644)
					if err := os.Chown(path, int(a.u.Uid), int(a.u.Gid)); err != nil {
						t.Fatal(err)
					}
				}},
		}
		conf := pidfileDefaults
		for i := range cases {
			c := &cases[i]
			c.v = StartVictim(t)
			c.plant(c.path, fmt.Sprint(c.v.Pid()))
			conf += fmt.Sprintf("\n[[worker]]\nname = %q\npidfile = %q\n", a.object(fmt.Sprintf("pidfile-%d-%d", trial, i)), c.path)
		}
		serve := a.serve(filepath.Join(t.TempDir(), "shmmon.toml"), conf)
		if !a.logged(serve, 10*time.Second, "event=serve", 1) {
			t.Fatalf("serve did not start:\n%s", serve.Stderr.String())
		}
		time.Sleep(pidfileWatch)
		for _, c := range cases {
			if hit, what := c.v.Hit(); hit {
				a.signalled(fmt.Sprintf("%s: %s", c.what, what))
			}
			if len(testkit.LinesWith(serve.Stderr.Lines(), "event=pidfile-refused", c.path)) == 0 {
				t.Errorf("%s (%s): no event=pidfile-refused line naming it", c.what, c.path)
				a.see(c.what + ": refusal not logged")
			}
			c.v.p.Kill() // the trial is over: do not keep its victims running
		}
		a.stop(serve)
	}
	return a.outcome("every pidfile refused and logged, no victim signalled")
}

// fifoPidfile plants a FIFO as a watched worker's pidfile (in the attacker's directory):
// serve must start anyway (opening a FIFO for reading waits for a writer), log the refusal
// and end promptly on SIGTERM.
func fifoPidfile(t testing.TB, trials int) Outcome {
	a := newAttack(t, trials)
	for trial := range trials {
		pidfile := filepath.Join(a.userDir(testkit.PublicDir(t), "attacker"), "w.pid")
		a.as("", "mkfifo", pidfile)
		conf := fmt.Sprintf("%s\n[[worker]]\nname = %q\npidfile = %q\n", pidfileDefaults, a.object(fmt.Sprintf("fifo-pidfile-%d", trial)), pidfile)
		serve := a.serve(filepath.Join(t.TempDir(), "shmmon.toml"), conf)
		switch {
		case !a.logged(serve, HangBound, "event=serve", 1):
			a.hang("serve blocked at its start")
		case !a.logged(serve, HangBound, "event=pidfile-refused", 1):
			t.Errorf("no event=pidfile-refused line for the FIFO %s", pidfile)
			a.see("refusal not logged")
		}
		a.stop(serve)
	}
	return a.outcome("serve started, refused the FIFO and ended on SIGTERM")
}

// fifoConfig lets the attacker swap a FIFO in for serve's config (kept, wrongly, in a
// directory the attacker may write): the reload the change causes, and the one of a SIGHUP,
// must fail without blocking, and SIGTERM must still end serve promptly.
func fifoConfig(t testing.TB, trials int) Outcome {
	a := newAttack(t, trials)
	for range trials {
		path := filepath.Join(a.userDir(testkit.PublicDir(t), "config"), "shmmon.toml")
		serve := a.serve(path, "# root's config: no workers yet\n")
		if !a.logged(serve, 10*time.Second, "event=serve", 1) {
			t.Fatalf("serve did not start:\n%s", serve.Stderr.String())
		}
		a.as("", "swap-fifo", path)
		// The change is one reload; a SIGHUP once it is done, another.
		ok := a.logged(serve, HangBound, "event=reload-failed", 1)
		if ok {
			serve.Cmd.Process.Signal(syscall.SIGHUP)
			ok = a.logged(serve, HangBound, "event=reload-failed", 2)
		}
		if !ok {
			a.hang("the reload loop blocked on the FIFO")
		}
		a.stop(serve)
	}
	return a.outcome("both reloads failed at once, serve ended on SIGTERM")
}

// stop ends serve with SIGTERM, counting a hang when it outlives HangBound.
func (a *attack) stop(serve *testkit.Process) {
	a.t.Helper()
	if !StopPromptly(a.t, serve) {
		a.hang("serve outlived SIGTERM")
	}
}

// object returns a name for an object of the scenario, removed when the test ends (serve
// removes it on SIGTERM; not after SIGKILL).
func (a *attack) object(what string) string {
	name := testkit.Name(a.t, "sec-"+what)
	a.t.Cleanup(func() { shmobj.Remove(name) })
	return name
}

// userDir makes the directory dir/name owned by the attacker (mode 0755).
func (a *attack) userDir(dir, name string) string {
	a.t.Helper()
	path := filepath.Join(dir, name)
	a.mkdir(path, 0o755)
	if err := os.Chown(path, int(a.u.Uid), int(a.u.Gid)); err != nil {
		a.t.Fatal(err)
	}
	return path
}

// mkdir makes the directory path with exactly mode (whatever the umask).
func (a *attack) mkdir(path string, mode os.FileMode) {
	a.t.Helper()
	if err := os.Mkdir(path, mode); err != nil {
		a.t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		a.t.Fatal(err)
	}
}

// writeFileMain (the attacker) writes args[1] to the file args[0], mode 0644.
func writeFileMain(args []string) error { return os.WriteFile(args[0], []byte(args[1]), 0o644) }

// mkfifoMain (the attacker) makes a FIFO at args[0].
func mkfifoMain(args []string) error { return syscall.Mkfifo(args[0], 0o644) }

// swapFifoMain (the attacker) replaces the file args[0] with a FIFO, atomically: a FIFO made
// beside it and renamed over it, as an editor saves a file.
func swapFifoMain(args []string) error {
	tmp := filepath.Join(filepath.Dir(args[0]), ".swap-fifo")
	if err := syscall.Mkfifo(tmp, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, args[0])
}
