package control_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/view"
	"github.com/shmmon/shmmon/worker"
)

// status returns serve's workers by name, as ctl status --json prints them.
func status(t *testing.T, s *served) map[string]view.Worker {
	t.Helper()
	code, out, errOut := ctl(t, s.control, "status", "--json")
	if code != 0 {
		t.Fatalf("ctl status --json: exit %d: %s", code, errOut)
	}
	var ws []view.Worker
	if err := json.Unmarshal([]byte(out), &ws); err != nil {
		t.Fatalf("ctl status --json: %v:\n%s", err, out)
	}
	m := map[string]view.Worker{}
	for _, w := range ws {
		if w.Serving == nil {
			t.Fatalf("ctl status --json: %s has no serve's part", w.Name)
		}
		m[w.Name] = w
	}
	return m
}

// TestCtl drives a serve of two supervised workers (a, b) and a watched one (w): status lists
// them; restart changes a's pid and not b's; stop holds a across reloads until start; a
// signal reaches b's program; a watched worker is stopped and started, never restarted; an
// unknown worker or signal is one line and exit 2; and every action is in serve's log.
func TestCtl(t *testing.T) {
	n := names(t, 3)
	a, b, w := n[0], n[1], n[2]
	watchedCmd := exec.Command(exe(t))
	watchedCmd.Env = append(os.Environ(), envMode+"=beat", worker.EnvName+"="+w)
	watchedProc := testkit.Start(t, "watched worker", watchedCmd)
	conf := head + workerConf(t, a, "beat") + workerConf(t, b, "beat") +
		fmt.Sprintf("\n[[worker]]\nname = %q\npid = %d\n", w, watchedProc.Pid())
	s := startServe(t, conf)
	pa, pb := beating(t, a, 0), beating(t, b, 0)
	beating(t, w, 0)

	code, out, errOut := ctl(t, s.control, "status")
	if code != 0 || !strings.HasPrefix(out, "NAME") {
		t.Fatalf("ctl status: exit %d, %q %q", code, out, errOut)
	}
	for _, name := range n {
		if !strings.Contains(out, name+" ") {
			t.Errorf("ctl status does not list %s:\n%s", name, out)
		}
	}
	st := status(t, s)
	if len(st) != 3 || st[a].Supervision != "running" || st[a].Pid != pa || !st[a].Supervised || st[w].Supervised {
		t.Errorf("ctl status --json: %+v", st)
	}

	// restart a: a new pid for a, the same for b.
	code, out, errOut = ctl(t, s.control, "restart", a)
	if code != 0 {
		t.Fatalf("ctl restart %s: exit %d: %s", a, code, errOut)
	}
	na := beating(t, a, pa)
	oneLine(t, "ctl restart", out, a+": restarted (pid ", fmt.Sprintf("was %d)", pa))
	if alive(pa) {
		t.Errorf("a's old program %d still runs", pa)
	}
	if pid := beating(t, b, 0); pid != pb {
		t.Errorf("b's pid %d, was %d: a restart of a touched b", pid, pb)
	}
	if st := status(t, s)[a]; st.Starts != 2 || st.Restarts != 1 || st.Kills != 0 {
		t.Errorf("a after a restart: starts %d, restarts %d, kills %d; want 2, 1, 0", st.Starts, st.Restarts, st.Kills)
	}
	testkit.WaitLine(t, &s.Stderr, 5*time.Second, "event=control action=restart uid=0 peer_pid=")

	// stop a: its program ends, and neither a reload nor SIGHUP starts it again.
	code, out, _ = ctl(t, s.control, "stop", a)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("%s: stopped (pid %d)", a, na)) {
		t.Fatalf("ctl stop: exit %d, %q", code, out)
	}
	if alive(na) {
		t.Errorf("a's program %d runs after ctl stop", na)
	}
	if st := status(t, s)[a]; st.Supervision != "stopped" {
		t.Errorf("a after ctl stop: %q, want stopped", st.Supervision)
	}
	code, out, _ = ctl(t, s.control, "reload")
	oneLine(t, "ctl reload", out, "reloaded: started 0, stopped 0, restarted 0, unchanged 3")
	s.Signal(t, syscall.SIGHUP)
	testkit.WaitLine(t, &s.Stderr, 5*time.Second, "why=SIGHUP")
	time.Sleep(time.Second)
	if st := status(t, s)[a]; st.Supervision != "stopped" || code != 0 {
		t.Errorf("a after reloads: %q (reload exit %d), want stopped", st.Supervision, code)
	}
	if code, out, _ := ctl(t, s.control, "status", a); !strings.Contains(out, "stopped (ctl)") || code != 0 {
		t.Errorf("ctl status %s: %q", a, out)
	}
	// A file serve refuses: ctl reload says why, exit 1; the running config stays.
	if err := os.WriteFile(s.config, []byte(conf+"bogus_key = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = ctl(t, s.control, "reload")
	if code != 1 || out != "" || !strings.Contains(errOut, s.config+":") || !strings.Contains(errOut, "bogus_key") {
		t.Errorf("ctl reload of a bad file: exit %d, %q %q; want 1 and the file's error", code, out, errOut)
	}
	if err := os.WriteFile(s.config, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := ctl(t, s.control, "reload"); code != 0 || status(t, s)[a].Supervision != "stopped" {
		t.Errorf("ctl reload of the file again: exit %d, a %q", code, status(t, s)[a].Supervision)
	}

	// start a: running again.
	if code, out, _ = ctl(t, s.control, "start", a); code != 0 || !strings.Contains(out, a+": started (pid ") {
		t.Errorf("ctl start: exit %d, %q", code, out)
	}
	beating(t, a, na)

	// signal b: SIGTERM ends its program, which is restarted.
	if code, out, _ = ctl(t, s.control, "signal", "TERM", b); code != 0 ||
		!strings.Contains(out, fmt.Sprintf("sent SIGTERM to the process group of pid %d", pb)) {
		t.Errorf("ctl signal TERM: exit %d, %q", code, out)
	}
	beating(t, b, pb)

	// The watched worker: stop leaves its process alone; restart is a usage error; start
	// watches it again.
	if code, out, _ = ctl(t, s.control, "stop", w); code != 0 || !strings.Contains(out, "no longer watched") {
		t.Errorf("ctl stop of a watched worker: exit %d, %q", code, out)
	}
	if st := status(t, s)[w]; st.Supervision != "stopped" || !watchedProc.Running() {
		t.Errorf("watched worker after ctl stop: %q, process running %v", st.Supervision, watchedProc.Running())
	}
	code, _, errOut = ctl(t, s.control, "restart", w)
	if code != 2 {
		t.Errorf("ctl restart of a watched worker: exit %d, want 2", code)
	}
	oneLine(t, "ctl restart of a watched worker", errOut, w, "watched")
	if code, out, _ = ctl(t, s.control, "start", w); code != 0 || !strings.Contains(out, "watching again") {
		t.Errorf("ctl start of a watched worker: exit %d, %q", code, out)
	}
	testkit.WaitFor(t, 10*time.Second, "the watched worker watched again", func() bool {
		snap, err := shmobj.Read(w)
		return err == nil && snap.Record.State == shmobj.StateOK && snap.Record.WatchedPid == int64(watchedProc.Pid())
	})

	// Bad requests: one line, exit 2, nothing done.
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"restart", a, "nope"}, []string{`unknown worker "nope"`}},
		{[]string{"signal", "BOGUS", a}, []string{`invalid signal "BOGUS"`}},
		{[]string{"logs", a}, []string{a, "has no log file"}},
		{[]string{"stop"}, []string{"no worker"}},
	} {
		code, out, errOut := ctl(t, s.control, tt.args...)
		if code != 2 || out != "" {
			t.Errorf("ctl %s: exit %d, stdout %q; want 2 and nothing", strings.Join(tt.args, " "), code, out)
		}
		oneLine(t, "ctl "+strings.Join(tt.args, " "), errOut, tt.want...)
	}
	if st := status(t, s)[a]; st.Starts != 3 {
		t.Errorf("a started %d times, want 3: a bad request did something", st.Starts)
	}
	for _, action := range []string{"stop", "start", "signal", "reload"} {
		if len(testkit.LinesWith(s.Stderr.Lines(), "event=control", "action="+action, "uid=0", "peer_pid=")) == 0 {
			t.Errorf("serve logged no event=control line of %s", action)
		}
	}
}

// TestControlSocket: a second serve at a live socket is refused at its start; one that finds
// the socket of a serve that died replaces it; the socket is 0600 and its directory 0755.
func TestControlSocket(t *testing.T) {
	n := names(t, 1)
	s := startServe(t, head+workerConf(t, n[0], "beat"))
	beating(t, n[0], 0)
	fi, err := os.Stat(s.control)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("control socket: %v %v, want a socket 0600", fi.Mode(), err)
	}
	second := testkit.Start(t, "second serve", exec.Command(testkit.Shmmon(t), "serve", "--config", s.config, "--control", s.control))
	if st := second.Wait(t, 20*time.Second); st.ExitCode() != 1 {
		t.Errorf("a second serve at the live socket: %v, want exit 1", st)
	}
	oneLine(t, "second serve", second.Stderr.String(), "another serve answers at the control socket", s.control)
	if code, _, _ := ctl(t, s.control, "status"); code != 0 {
		t.Error("the first serve no longer answers")
	}

	// SIGKILLed: its socket stays, stale; a serve started again replaces it and adopts.
	pid := beating(t, n[0], 0)
	s.Signal(t, syscall.SIGKILL)
	s.Wait(t, 10*time.Second)
	t.Cleanup(func() { syscall.Kill(int(pid), syscall.SIGKILL) })
	if code, _, errOut := ctl(t, s.control, "status"); code != 1 || !strings.Contains(errOut, "connection refused") {
		t.Errorf("ctl to a dead serve: exit %d, %q; want 1 and connection refused", code, errOut)
	}
	again := s.start(t)
	testkit.WaitLine(t, &again.Stderr, 10*time.Second, "event=adopt")
	if st := status(t, s)[n[0]]; st.Pid != pid || st.Supervision != "running" {
		t.Errorf("after the restart of serve: pid %d (%s), want %d running", st.Pid, st.Supervision, pid)
	}
	dir := testkit.PublicDir(t)
	nested := dir + "/a/b/control.sock"
	cmd := exec.Command(testkit.Shmmon(t), "serve", "--config", s.config, "--control", nested)
	tag := fmt.Sprintf("%d-%s-third", os.Getpid(), t.Name())
	cmd.Env = append(os.Environ(), envTag+"="+tag)
	third := testkit.Start(t, "third serve", cmd)
	t.Cleanup(func() { killTagged(t, tag) })
	testkit.WaitFor(t, 10*time.Second, "the nested socket", func() bool { _, err := os.Stat(nested); return err == nil })
	for _, d := range []string{dir + "/a", dir + "/a/b"} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v %v, want a directory 0755", d, fi.Mode(), err)
		}
	}
	third.Signal(t, syscall.SIGKILL)
}

// TestCtlPeers: only root, serve's user and members of control_group get an answer. A
// throwaway user cannot connect to the socket (0600), and, should its permissions let it,
// is refused by the peer check with one line; a member of control_group is admitted.
func TestCtlPeers(t *testing.T) {
	outsider := testkit.NewUser(t)
	member := testkit.NewUser(t)
	ops := testkit.NewGroup(t)
	member.Join(t, ops)
	n := names(t, 1)
	s := startServe(t, head+workerConf(t, n[0], "beat"))
	beating(t, n[0], 0)
	shmmon := testkit.Shmmon(t)
	as := func(u *testkit.User, path string) (int, string, string) {
		return runCmd(t, u.Command(shmmon, "ctl", "--control", path, "status"))
	}

	code, _, errOut := as(outsider, s.control)
	if code != 1 {
		t.Errorf("%s: ctl status exit %d, want 1", outsider, code)
	}
	oneLine(t, "an outsider's ctl", errOut, "permission denied")

	// The permissions loosened (a mistake): the peer check still refuses, with one line.
	if err := os.Chmod(s.control, 0o666); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := as(outsider, s.control)
	if code != 1 || out != "" {
		t.Errorf("%s through a 0666 socket: exit %d, %q; want 1 and nothing", outsider, code, out)
	}
	oneLine(t, "the peer check", errOut, "refused", fmt.Sprintf("uid %d", outsider.Uid))
	testkit.WaitLine(t, &s.Stderr, 5*time.Second, fmt.Sprintf("event=control-refused uid=%d", outsider.Uid))

	// control_group: a member is admitted, through a 0660 socket of the group.
	s.Signal(t, syscall.SIGTERM)
	s.Wait(t, 20*time.Second)
	grouped := startServe(t, fmt.Sprintf("[serve]\ncontrol_group = %q\n\n", ops.Name)+head+workerConf(t, n[0], "beat"))
	fi, err := os.Stat(grouped.control)
	if err != nil || fi.Mode().Perm() != 0o660 || fi.Sys().(*syscall.Stat_t).Gid != ops.Gid {
		t.Errorf("control socket with control_group: %v gid %d, want 0660 and gid %d", fi.Mode(), fi.Sys().(*syscall.Stat_t).Gid, ops.Gid)
	}
	code, out, errOut = as(member, grouped.control)
	if code != 0 || !strings.Contains(out, n[0]) {
		t.Errorf("%s, a member of control_group: exit %d, %q %q", member, code, out, errOut)
	}
	if code, _, errOut := as(outsider, grouped.control); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Errorf("%s, not a member: exit %d, %q", outsider, code, errOut)
	}
}
