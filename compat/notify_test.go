package compat_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/shmobj"
)

// sdNotifyMain is the test binary as a Go program written for systemd's watchdog, using
// go-systemd's daemon package and nothing of shmmon's. Mode "sdnotify-beat": READY=1 and
// STATUS=, then WATCHDOG=1 every half of SdWatchdogEnabled's interval; "sdnotify-ready":
// READY=1, never a beat. A failed SdNotify is reported and otherwise ignored, as services
// do. Exit 3 when SdWatchdogEnabled says the watchdog is not enabled for this process
// (NOTIFY_SOCKET, WATCHDOG_USEC or WATCHDOG_PID missing or wrong).
func sdNotifyMain(mode string) int {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		fmt.Fprintf(os.Stderr, "go notify client: SdWatchdogEnabled = %v, %v\n", d, err)
		return 3
	}
	msg := fmt.Sprintf("READY=1\nSTATUS=go client %d up", os.Getpid())
	if mode == "sdnotify-ready" {
		msg = daemon.SdNotifyReady
	}
	for {
		if ok, err := daemon.SdNotify(false, msg); !ok || err != nil {
			fmt.Fprintf(os.Stderr, "go notify client: SdNotify = %v, %v\n", ok, err)
		}
		if mode == "sdnotify-ready" {
			time.Sleep(5 * time.Minute) // a leftover goes away by itself
			return 0
		}
		msg = daemon.SdNotifyWatchdog
		time.Sleep(d / 2)
	}
}

// notifyClients are the programs written for systemd's watchdog: argv and extra environment
// of a client in mode "beat" or "ready".
var notifyClients = []struct {
	name    string
	command func(t *testing.T, mode string) ([]string, []string)
}{
	{"c_libsystemd", func(t *testing.T, mode string) ([]string, []string) {
		needBoost(t) // the C client is built with the C++ peers
		return []string{build.sdNotify, mode}, nil
	}},
	{"go_systemd", func(t *testing.T, mode string) ([]string, []string) {
		return []string{testkit.Executable(t)}, []string{envWorker + "=sdnotify-" + mode}
	}},
}

// TestRunNotify runs programs written for systemd's watchdog — a C one calling libsystemd's
// sd_notify(), a Go one using go-systemd — under `shmmon run`, unchanged: they find the
// watchdog enabled, their WATCHDOG=1 beats and STATUS= show in the object; hung (SIGSTOP),
// they are killed and restarted although a stranger keeps sending WATCHDOG=1 to their
// socket; one that sends READY=1 and never beats is killed long before the grace ends.
func TestRunNotify(t *testing.T) {
	for _, cl := range notifyClients {
		t.Run(cl.name, func(t *testing.T) {
			t.Run("hang", func(t *testing.T) {
				name := objectName(t)
				argv, env := cl.command(t, "beat")
				run := startRun(t, name, env, argv)
				var seen []int64
				killOnCleanup(t, &seen)

				first := waitBeating(t, name, 0)
				seen = append(seen, first)
				up := fmt.Sprintf("client %d up", first)
				testkit.WaitFor(t, startTimeout, "the status text", func() bool {
					snap, _ := shmobj.Read(name)
					return strings.HasSuffix(snap.StatusText, up)
				})
				if snap, _ := shmobj.Read(name); snap.Record.Kind != shmobj.KindNotify {
					t.Errorf("kind %v, want notify", snap.Record.Kind)
				}
				checkLs(t, name, up)

				// Hung, while a stranger (this test) sends beats to its socket: they must
				// not count.
				addr := envOf(t, int(first), "NOTIFY_SOCKET")
				syscall.Kill(int(first), syscall.SIGSTOP)
				stop := forge(t, addr)
				second := waitBeating(t, name, first)
				seen = append(seen, second)
				stop()
				snap, _ := shmobj.Read(name)
				if snap.Record.Kills != 1 || snap.Record.Restarts != 1 || strings.Contains(snap.StatusText, "forged") {
					t.Errorf("kills %d restarts %d status %q, want 1, 1 and not forged", snap.Record.Kills, snap.Record.Restarts, snap.StatusText)
				}
				if n := strings.Count(run.Stderr.String(), `msg="killing hung worker"`); n != 1 {
					t.Errorf("%d hang kills logged, want 1", n)
				}

				run.Terminate(t, killAfter+5*time.Second)
			})
			t.Run("ready", func(t *testing.T) {
				name := objectName(t)
				argv, env := cl.command(t, "ready")
				const grace = time.Minute
				begin := time.Now()
				run := startRun(t, name, env, argv, "--grace", grace.String(), "--restart", "never")
				// Hung, killed, not restarted: exit 3, judged from READY=1, not from the end of
				// the grace.
				st := run.Wait(t, grace-10*time.Second)
				if st.ExitCode() != 3 {
					t.Errorf("shmmon run ended with %v, want exit 3 (hung)", st)
				}
				if !strings.Contains(run.Stderr.String(), "event=ready") {
					t.Error("READY=1 not logged")
				}
				t.Logf("killed %v after the start, grace %v", time.Since(begin).Round(time.Millisecond), grace)
			})
		})
	}
}

// checkLs checks that `shmmon ls --json` and `shmmon inspect` show name as a notify worker
// whose status ends with up.
func checkLs(t *testing.T, name, up string) {
	t.Helper()
	if v, found := lsJSON(t, name); !found {
		t.Errorf("ls --json does not list %s", name)
	} else if v.Kind != "notify" || !strings.HasSuffix(v.StatusText, up) {
		t.Errorf("ls --json: kind %q status %q, want notify and ...%q", v.Kind, v.StatusText, up)
	}
	out, err := exec.Command(testkit.Shmmon(t), "inspect", "--name", name).Output()
	if err != nil || !strings.Contains(string(out), "notify") || !strings.Contains(string(out), up) {
		t.Errorf("shmmon inspect: %v\n%s", err, out)
	}
}

// envOf returns the value of key in the environment the process pid was started with.
func envOf(t *testing.T, pid int, key string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	for kv := range strings.SplitSeq(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	t.Fatalf("pid %d has no %s", pid, key)
	return ""
}

// forge sends WATCHDOG=1 and a status to addr from this process every 10ms until the
// returned stop is called.
func forge(t *testing.T, addr string) (stop func()) {
	t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() }) // after stop: cleanups run last in, first out
	forged := []byte("WATCHDOG=1\nSTATUS=forged")
	c.Write(forged)
	return testkit.Every(t, 10*time.Millisecond, func() { c.Write(forged) })
}

// TestServeAdoptsNotifyWorker SIGKILLs serve and starts it again: the new serve binds the
// notify socket address of the one it replaced (it is derived from the object's name), so
// the notify worker it adopts goes on beating through its NOTIFY_SOCKET and is not taken
// for hung.
func TestServeAdoptsNotifyWorker(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shmmon.toml")
	name := objectName(t)
	needBoost(t) // the C client is built with the C++ peers
	writeConfig(t, path, []testkit.Worker{{Name: name, Command: []string{build.sdNotify, "beat"}}}, "")
	var pids []int64
	killOnCleanup(t, &pids)

	first := startServe(t, path)
	pid := waitBeating(t, name, 0)
	pids = append(pids, pid)
	first.Signal(t, syscall.SIGKILL)
	first.Wait(t, 10*time.Second)

	second := startServe(t, path)
	testkit.WaitLine(t, &second.Stderr, startTimeout, "event=adopt")
	before, _ := shmobj.Read(name)
	time.Sleep(20 * interval) // its beats lost, it would be killed within 4 intervals
	after, _ := shmobj.Read(name)
	if after.Record.WatchedPid != pid || after.Seq <= before.Seq || after.Record.Kind != shmobj.KindNotify {
		t.Errorf("after the restart: watched %d (want %d), seq %d -> %d, kind %v; want the adopted worker beating",
			after.Record.WatchedPid, pid, before.Seq, after.Seq, after.Record.Kind)
	}
	if log := second.Stderr.String(); strings.Contains(log, "killing hung worker") || strings.Contains(log, "notify address taken") {
		t.Errorf("the restarted serve did not take over the notify socket:\n%s", log)
	}
	second.Terminate(t, killAfter+10*time.Second)
}
