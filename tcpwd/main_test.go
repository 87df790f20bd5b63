package tcpwd

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmmon/shmmon/internal/testkit"
)

// helperEnv names the helper mode the test binary runs in instead of its tests.
const helperEnv = "TCPWD_TEST_HELPER"

// TestMain lets the test binary be a client of the server in a process of its own (see
// helper).
func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode, os.Args[1:]))
	}
	code := m.Run()
	testkit.Cleanup()
	os.Exit(code)
}

// helper runs one helper mode and returns its exit code. Every mode ends within a minute, so
// one left behind by a crashed test goes away.
//
//   - "client ADDR [NAME]": connect to ADDR and print "connected LOCAL-ADDRESS"; with NAME,
//     wait for a line on stdin, then register NAME (receiver and watchdog) and feed it every
//     20ms.
//   - "pass ADDR": connect to ADDR, send the connection's descriptor over descriptor 3 (a
//     Unix socket) and exit.
func helper(mode string, args []string) int {
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", mode, err)
		return 2
	}
	if len(args) < 1 {
		return fail(fmt.Errorf("want ADDR, got %q", args))
	}
	c, err := net.Dial("tcp", args[0])
	if err != nil {
		return fail(err)
	}
	switch mode {
	case "client":
		fmt.Println("connected", c.LocalAddr())
		if len(args) > 1 {
			if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
				return fail(err)
			}
			name := args[1]
			packets := []Packet{{Cmd: CmdReceive, Source: name}, {Cmd: CmdWatchdog, Wdt: WdtRegister, Source: name}}
			for range 3000 {
				packets = append(packets, Packet{Cmd: CmdWatchdog, Wdt: WdtFeed, Source: name})
			}
			go io.Copy(io.Discard, c)
			for i, p := range packets {
				b, _ := p.MarshalBinary()
				if _, err := c.Write(b); err != nil {
					return fail(err)
				}
				if i > 0 {
					time.Sleep(20 * time.Millisecond)
				}
			}
			return 0
		}
		time.Sleep(time.Minute)
		return 0
	case "pass":
		f, err := c.(*net.TCPConn).File()
		if err != nil {
			return fail(err)
		}
		if err := unix.Sendmsg(3, []byte{0}, unix.UnixRights(int(f.Fd())), nil, 0); err != nil {
			return fail(err)
		}
		return 0
	}
	return fail(fmt.Errorf("unknown mode"))
}

// startHelper starts the test binary in helper mode with args (as this user, unless cmd is
// changed by prepare) and returns it with the local address of its connection; it is killed
// when the test ends.
func startHelper(t *testing.T, prepare func(*exec.Cmd), mode string, args ...string) (*testkit.Process, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "GORACE=atexit_sleep_ms=0")
	if prepare != nil {
		prepare(cmd)
	}
	p := testkit.Start(t, "helper "+mode, cmd)
	if mode != "client" {
		return p, ""
	}
	line := testkit.WaitLine(t, &p.Stdout, wait, "connected ")
	return p, strings.TrimPrefix(line, "connected ")
}
