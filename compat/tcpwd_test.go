package compat_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/tcpwd"
)

// tcpwdClient returns the path of the C client of the TCP watchdog.
func tcpwdClient(t *testing.T) string {
	return filepath.Join(filepath.Dir(needBoost(t).worker), "tcpwd_client")
}

// TestTCPWatchdogLayout compares Go's packet layout with the C client's sizeof and offsets.
func TestTCPWatchdogLayout(t *testing.T) {
	out, err := runOutput(tcpwdClient(t), "--layout")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("sizeof %d head %d cmd %d wdt %d target %d source %d msg %d", tcpwd.PacketSize,
		tcpwd.OffHead, tcpwd.OffCmd, tcpwd.OffWdt, tcpwd.OffTarget, tcpwd.OffSource, tcpwd.OffMsg)
	if strings.TrimSpace(out) != want {
		t.Errorf("C layout %q, Go layout %q", strings.TrimSpace(out), want)
	}
}

// tcpwdName returns an object name that fits a packet (9 bytes): the test binary's pid and a
// tag. The object is removed when the test ends.
func tcpwdName(t *testing.T, tag string) string {
	t.Helper()
	name := "tw" + strconv.FormatInt(int64(os.Getpid()), 36) + tag
	if err := tcpwd.ValidateName(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shmobj.Remove(name) })
	return name
}

// hexOf returns what follows "hex " in a line of the C client.
func hexOf(t *testing.T, line string) string {
	t.Helper()
	_, h, ok := strings.Cut(line, " hex ")
	if !ok || len(h) != 2*tcpwd.PacketSize {
		t.Fatalf("no packet in %q", line)
	}
	return h
}

// TestServeTCPWatchdog: serve supervises two C clients of the TCP watchdog. A feeds; B feeds
// and forwards a message to A, which receives it byte for byte. Then A stops feeding while
// staying connected: serve kills it and starts it again, and the new A feeds and receives;
// B is left alone.
func TestServeTCPWatchdog(t *testing.T) {
	client := tcpwdClient(t)
	a, b := tcpwdName(t, "a"), tcpwdName(t, "b")
	server := testkit.FreeAddr(t)
	_, port, _ := net.SplitHostPort(server)
	period := strconv.Itoa(int(beatPeriod.Milliseconds()))
	ws := []testkit.Worker{
		// A is told its name by SHMMON_NAME, B by --name.
		{Name: a, Command: []string{client, "--server", server, "--feed-every", period}},
		{Name: b, Command: []string{client, "--server", server, "--name", b, "--feed-every", period,
			"--send-to", a, "--msg", "hello from " + b, "--send-every", "100"}},
	}
	var pids []int64
	killOnCleanup(t, &pids)
	path := filepath.Join(t.TempDir(), "shmmon.toml")
	// A port alone: serve listens on loopback.
	writeConfig(t, path, ws, fmt.Sprintf("\n[tcp_watchdog]\nlisten = %q\n", port))
	serve := startServe(t, path)
	testkit.WaitLine(t, &serve.Stderr, startTimeout, "listen="+server)

	pidA := waitBeating(t, a, 0)
	pidB := waitBeating(t, b, 0)
	pids = append(pids, pidA, pidB)
	for _, name := range []string{a, b} {
		if snap, err := shmobj.Read(name); err != nil || snap.Record.Kind != shmobj.KindSocket {
			t.Errorf("%s: kind %v, %v; want socket", name, snap.Record.Kind, err)
		}
	}

	// B's message reaches A unchanged, garbage after the NULs included.
	sent := hexOf(t, testkit.WaitLine(t, &serve.Stdout, startTimeout, "tcpwd_client "+b+" sent to "+a))
	got := hexOf(t, testkit.WaitLine(t, &serve.Stdout, startTimeout, "tcpwd_client "+a+" recv from "+b+" msg hello from "+b+" hex"))
	if got != sent {
		t.Errorf("A received\n%s\nB sent\n%s", got, sent)
	}

	// A hangs: connected, receiving, not feeding.
	if err := syscall.Kill(int(pidA), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	testkit.WaitLine(t, &serve.Stdout, startTimeout, "tcpwd_client "+a+" hang")
	testkit.WaitLine(t, &serve.Stderr, startTimeout+killMargin, "worker="+a+" pid="+strconv.Itoa(int(pidA))+" event=kill")
	newA := waitBeating(t, a, pidA)
	pids = append(pids, newA)
	testkit.WaitFor(t, startTimeout, "the hung A to end", func() bool { return !proc.Alive(int(pidA)) })

	// The new A receives B's messages.
	ready := testkit.WaitLine(t, &serve.Stdout, startTimeout, fmt.Sprintf("tcpwd_client %s pid %d ready", a, newA))
	testkit.WaitFor(t, startTimeout, "a message to the new A", func() bool {
		s := serve.Stdout.String()
		i := strings.Index(s, ready)
		return strings.Contains(s[i:], "tcpwd_client "+a+" recv from "+b)
	})

	// B was never touched.
	if pid := waitBeating(t, b, 0); pid != pidB {
		t.Errorf("B's pid %d, want %d: B was restarted", pid, pidB)
	}
	log := serve.Stderr.String()
	if strings.Contains(log, "worker="+b+" pid="+strconv.Itoa(int(pidB))+" event=kill") || strings.Contains(log, "tcp-malformed") {
		t.Errorf("B killed, or a packet taken as malformed:\n%s", log)
	}

	serve.Terminate(t, killAfter+startTimeout)
}
