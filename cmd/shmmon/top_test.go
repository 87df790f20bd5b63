package main

import (
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/shmobj"
)

// TestTopWithoutTerminal: top without a terminal says so and exits 2, as it does for a bad
// flag, naming it.
func TestTopWithoutTerminal(t *testing.T) {
	code, _, stderr := runCLI("top")
	if code != exitUsage || !strings.Contains(stderr, "not a terminal") || !strings.Contains(stderr, "shmmon ls --watch") ||
		strings.Count(stderr, "\n") != 1 {
		t.Errorf("exit %d, stderr %q; want exit %d and one line saying there is no terminal", code, stderr, exitUsage)
	}
	for _, tc := range []struct{ args, want string }{
		{"-n 10ms", "invalid --interval 10ms: want a period of at least 100ms"},
		{"--control rel.sock", `invalid --control: socket path "rel.sock" is not absolute`},
		{"--proctab-key zz", `invalid --proctab-key "zz"`},
		{"--proctab-slots 0", "invalid --proctab-slots 0"},
		{"extra", `unexpected argument "extra"`},
	} {
		code, _, stderr := runCLI(append([]string{"top"}, strings.Fields(tc.args)...)...)
		if code != exitUsage || !strings.HasPrefix(stderr, "shmmon top: "+tc.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("top %s: exit %d, %q; want exit %d and one line with %q", tc.args, code, stderr, exitUsage, tc.want)
		}
	}
}

// tmuxPane runs command in a detached tmux session of its own server, 80x24, until the test
// ends, and returns a function reading its screen (capture-pane).
// The screen with its escape sequences (capture-pane -e) is screen("-e").
func tmuxPane(t *testing.T, command string) (screen func(flags ...string) string, keys func(...string)) {
	t.Helper()
	tmux, err := exec.LookPath("tmux")
	testkit.Require(t, err == nil, "no tmux: make deps installs it")
	// The server's socket in the test's temp dir: removed with it (kill-server leaves it).
	sock := filepath.Join(t.TempDir(), "tmux.sock")
	run := func(args ...string) (string, error) {
		out, err := exec.Command(tmux, append([]string{"-S", sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := run("new-session", "-d", "-x", "80", "-y", "24", "-s", "top", command); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	t.Cleanup(func() { run("kill-server") })
	screen = func(flags ...string) string {
		out, err := run(append([]string{"capture-pane", "-p", "-t", "top"}, flags...)...)
		if err != nil {
			t.Fatalf("tmux capture-pane: %v: %s", err, out)
		}
		return out
	}
	keys = func(k ...string) {
		if out, err := run(append([]string{"send-keys", "-t", "top"}, k...)...); err != nil {
			t.Fatalf("tmux send-keys %v: %v: %s", k, err, out)
		}
	}
	return screen, keys
}

// waitScreen waits until the screen has a line for which match is true, and returns it.
func waitScreen(t *testing.T, screen func(...string) string, timeout time.Duration, what string, match func(line string) bool) string {
	t.Helper()
	var found, last string
	ok := testkit.Poll(timeout, func() bool {
		last = screen()
		for _, l := range strings.Split(last, "\n") {
			if match(l) {
				found = l
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("top never showed %s; its screen:\n%s", what, last)
	}
	return found
}

// TestTopInTmux runs `shmmon top` in a real terminal (tmux, 80x24, NO_COLOR) beside a serve
// supervising one worker: it shows the worker ok, then hung once SIGSTOP stops it (and its
// kill), restarts it on r after asking, and quits on q with exit 0.
func TestTopInTmux(t *testing.T) {
	name, steady := fmt.Sprintf("top%d", os.Getpid()), fmt.Sprintf("top%d-b", os.Getpid())
	t.Cleanup(func() { shmobj.Remove(name); shmobj.Remove(steady) })
	path := filepath.Join(t.TempDir(), "shmmon.toml")
	extra := "interval = \"100ms\"\nstalls = 5\nkill_after = \"2s\"\n"
	testkit.WriteConfig(t, path, "", []testkit.Worker{{Name: name, Command: beatLoop(t), Extra: extra},
		{Name: steady, Command: beatLoop(t), Extra: extra}}, "")
	serveInProcess(t, path)
	testkit.WaitBeating(t, 20*time.Second, name, 0)
	testkit.WaitBeating(t, 20*time.Second, steady, 0)

	screen, keys := tmuxPane(t, fmt.Sprintf("env NO_COLOR=1 %q top -n 200ms --filter %s --control %q; echo \"top exit $?\"; sleep 60",
		testkit.Shmmon(t), name, testkit.ControlPath))
	row := func(want ...string) func(string) bool {
		return func(l string) bool {
			f := strings.Fields(strings.TrimPrefix(l, ">"))
			if len(f) < 2 || f[0] != name {
				return false
			}
			for _, w := range want {
				if !strings.Contains(l, w) {
					return false
				}
			}
			return true
		}
	}
	l := waitScreen(t, screen, 20*time.Second, name+" ok and running", row(" ok ", " running "))
	if f := strings.Fields(strings.TrimPrefix(l, ">")); len(f) < 9 || f[len(f)-2] != "0" || f[len(f)-1] != "0" {
		t.Errorf("row %q: want 0 kills and 0 restarts at the end", l)
	}
	s := screen()
	if lines := strings.Split(strings.TrimRight(s, "\n"), "\n"); len(lines) > 24 || !strings.Contains(s, "admits you") ||
		!strings.Contains(s, "r restart  x stop") {
		t.Errorf("screen (want at most 24 lines, serve admitting the user, r and x offered):\n%s", s)
	}
	// NO_COLOR: not one colour (SGR 30-37, 38;..., 90-97; their backgrounds) on the screen.
	if m := regexp.MustCompile(`\x1b\[(?:[0-9]*;)*(?:3[0-8]|4[0-8]|9[0-7]|10[0-7])(?:;[0-9]*)*m`).FindString(screen("-e")); m != "" {
		t.Errorf("a colour with NO_COLOR: %q", m)
	}
	for _, l := range strings.Split(s, "\n") {
		if len([]rune(l)) > 80 {
			t.Errorf("line wider than 80 columns: %q", l)
		}
	}

	if os.Getenv(envScreenshots) != "" {
		time.Sleep(20 * time.Second) // a sparkline with some history, for the README's picture
	}
	var pid int
	snap, err := shmobj.Read(name)
	if err != nil {
		t.Fatal(err)
	}
	pid = int(snap.Record.WatchedPid)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	hung := waitScreen(t, screen, 20*time.Second, name+" hung", row(" abnormal "))
	// Worst first: the hung worker above the steady one.
	if s := screen(); !strings.Contains(s, steady) || strings.Index(s, steady) < strings.Index(s, hung) {
		t.Errorf("the hung worker is not above %s:\n%s", steady, s)
	}
	if d := os.Getenv(envScreenshots); d != "" {
		screenshotText(t, screen(), filepath.Join(d, "top.png"))
	}
	os.WriteFile(filepath.Join(t.TempDir(), "top.txt"), []byte(screen()), 0o644)
	// Killed (SIGKILL after kill_after: a stopped process does not act on SIGTERM), then restarted.
	waitScreen(t, screen, 20*time.Second, name+" killed once and running again", func(l string) bool {
		f := strings.Fields(strings.TrimPrefix(l, ">"))
		return row(" ok ", " running ")(l) && len(f) >= 9 && f[len(f)-2] == "1" && f[len(f)-1] == "1"
	})

	keys("r")
	waitScreen(t, screen, 10*time.Second, "the confirmation", func(l string) bool {
		return strings.Contains(l, "restart "+name+"? y to confirm")
	})
	keys("y")
	waitScreen(t, screen, 20*time.Second, "the restart done", func(l string) bool {
		return strings.Contains(l, name+": restarted")
	})
	waitScreen(t, screen, 20*time.Second, name+" restarted twice", func(l string) bool {
		f := strings.Fields(strings.TrimPrefix(l, ">"))
		return row(" running ")(l) && len(f) >= 9 && f[len(f)-1] == "2"
	})

	keys("q")
	waitScreen(t, screen, 10*time.Second, "top's exit", func(l string) bool { return strings.TrimSpace(l) == "top exit 0" })
}

// TestTopNotAdmitted: another user, whom serve's control socket does not admit, sees the
// workers (objects of mode 0644) read-only: top says why, offers no r or x, refuses r, and
// quits on q.
func TestTopNotAdmitted(t *testing.T) {
	name := fmt.Sprintf("topro%d", os.Getpid())
	t.Cleanup(func() { shmobj.Remove(name) })
	path := filepath.Join(t.TempDir(), "shmmon.toml")
	testkit.WriteConfig(t, path, "", []testkit.Worker{{Name: name, Command: beatLoop(t),
		Extra: "interval = \"100ms\"\nmode = \"0644\"\n"}}, "")
	serveInProcess(t, path)
	testkit.WaitBeating(t, 20*time.Second, name, 0)
	u := testkit.NewUser(t)
	screen, keys := tmuxPane(t, fmt.Sprintf("setpriv --reuid=%d --regid=%d --clear-groups env NO_COLOR=1 %q top -n 200ms --filter %s --control %q; "+
		"echo \"top exit $?\"; sleep 60", u.Uid, u.Gid, testkit.Shmmon(t), name, testkit.ControlPath))
	waitScreen(t, screen, 20*time.Second, name+" ok", func(l string) bool {
		f := strings.Fields(strings.TrimPrefix(l, ">"))
		return len(f) > 2 && f[0] == name && f[1] == "ok"
	})
	s := screen()
	if !strings.Contains(s, "not open to you: read-only") || strings.Contains(s, "r restart") {
		t.Errorf("want top to say the control socket is not open to the user, and no r or x:\n%s", s)
	}
	keys("r")
	waitScreen(t, screen, 10*time.Second, "r refused", func(l string) bool {
		return strings.Contains(l, "r and x need serve's control socket to admit you")
	})
	if strings.Contains(screen(), "y to confirm") {
		t.Errorf("a question for a user serve does not admit:\n%s", screen())
	}
	keys("q")
	waitScreen(t, screen, 10*time.Second, "top's exit", func(l string) bool { return strings.TrimSpace(l) == "top exit 0" })
}

// screenshotText renders a terminal's text as a PNG at path with headless Chromium: the
// README's picture of top.
func screenshotText(t *testing.T, text, path string) {
	t.Helper()
	browser, err := exec.LookPath("chromium")
	testkit.Require(t, err == nil, "no chromium: make deps installs it")
	page := filepath.Join(t.TempDir(), "screen.html")
	doc := `<!DOCTYPE html><meta charset="utf-8"><body style="margin:0;background:#1e1e1e">` +
		`<pre style="margin:0;padding:8px;font:15px/1.25 'DejaVu Sans Mono',monospace;color:#e0e0e0">` + html.EscapeString(text) + `</pre>`
	if err := os.WriteFile(page, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
		"--user-data-dir="+t.TempDir(), "--window-size=760,500", "--screenshot="+path, "file://"+page)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v: %s", err, out)
	}
}
