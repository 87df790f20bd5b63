package badactor

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/tcpwd"
)

// Path 5 of the issue: another local user takes over a name of the TCP watchdog.
func init() {
	modes["tcpwd-attack"] = mode{"ADDR NAME IDLE-NAME", 3, 3, tcpwdAttackMain}
	register(5, Scenario{Name: "TCP watchdog takeover", Run: tcpwdTakeover})
}

// The timing of the takeover scenario: the worker is judged every tcpwdInterval, hung after
// tcpwdStalls missed ones; the attacker registers every tcpwdEvery, tcpwdAttempts times (over
// several hang verdicts' worth of time).
const (
	tcpwdInterval = 300 * time.Millisecond
	tcpwdStalls   = 3
	tcpwdEvery    = 300 * time.Millisecond
	tcpwdAttempts = 10
	tcpwdForged   = "forged-by-attacker"
)

// tcpwdTakeover runs serve (as the caller, root) with a [tcp_watchdog] on loopback and two
// supervised workers: the project's C client, which feeds its name and forwards a message to
// itself every 100ms, and an idle one (sleep) that never connects. The attacker, a throwaway
// user, forwards a packet to the client's name with that name as its forged source, registers
// the idle worker's name (free: only the check of the peer's process can refuse it), then
// connects every tcpwdEvery and registers the client's name as its receiver and with the
// watchdog. Each kill of the client is a false kill. The attacker must also be refused every
// registration, receive nothing forwarded, and its forged packet must not reach the client:
// Outcome has no count for those, so they fail t.
func tcpwdTakeover(t testing.TB, trials int) Outcome {
	a := newAttack(t, trials)
	client := tcpwdClient(t)
	var accepted, received, forged int
	for trial := range trials {
		acc, r, f, kills, hang := a.tcpwdTrial(client, trial)
		accepted += acc
		received += r
		forged += f
		a.o.FalseKills += kills
		if hang {
			a.o.Hangs++
		}
	}
	o := a.o
	o.Detail = fmt.Sprintf("%d registrations accepted of %d, %d forwarded packets received by the attacker, "+
		"%d forged packets delivered, %d kills of the real client", accepted, trials*(tcpwdAttempts+1), received, forged, o.FalseKills)
	if accepted+received+forged != 0 {
		t.Errorf("TCP watchdog takeover: %s; want every registration refused and nothing delivered", o.Detail)
	}
	return o
}

// tcpwdTrial runs one trial and returns what the attacker got (registrations accepted,
// packets received, forged packets delivered to the worker), the worker's kills, and whether
// serve hung past SIGTERM.
func (a *attack) tcpwdTrial(client string, trial int) (accepted, received, forged, kills int, hang bool) {
	t := a.t
	name := "b" + strconv.FormatInt(int64(os.Getpid()), 36) + strconv.FormatInt(int64(trial), 36)
	idle := name + "i"
	for _, n := range []string{name, idle} {
		if err := tcpwd.ValidateName(n); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { shmobj.Remove(n) })
	}
	addr := testkit.FreeAddr(t)
	cfg := fmt.Sprintf("[[worker]]\nname = %q\ncommand = [%q, \"--server\", %q, \"--feed-every\", \"50\", "+
		"\"--send-to\", %q, \"--msg\", \"to-self\", \"--send-every\", \"100\"]\n"+
		"interval = %q\nstalls = %d\nkill_after = \"1s\"\n\n"+
		"[[worker]]\nname = %q\ncommand = [\"sleep\", \"60\"]\ngrace = \"60s\"\nkill_after = \"1s\"\n\n"+
		"[tcp_watchdog]\nlisten = %q\n",
		name, client, addr, name, tcpwdInterval.String(), tcpwdStalls, idle, addr)
	path := filepath.Join(t.TempDir(), "shmmon.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	serve := testkit.Start(t, "shmmon serve", exec.Command(a.shmmon, serveArgs(t, "--config", path)...))
	// The client runs, feeds and receives what it sends itself.
	recvLine := "tcpwd_client " + name + " recv from " + name + " msg "
	testkit.WaitLine(t, &serve.Stdout, 10*time.Second, recvLine+"to-self")
	testkit.WaitFor(t, 10*time.Second, "the client's feeds in "+name, func() bool {
		snap, err := shmobj.Read(name)
		return err == nil && snap.Seq > 0 && snap.Record.Kind == shmobj.KindSocket
	})

	attacker := testkit.Start(t, "attacker", As(t, a.u, "tcpwd-attack", addr, name, idle))
	attacker.Wait(t, tcpwdAttempts*tcpwdEvery+10*time.Second)
	line := testkit.WaitLine(t, &attacker.Stdout, time.Second, "tcpwd-attack ")
	if _, err := fmt.Sscanf(line, "tcpwd-attack accepted %d refused %d received %d", &accepted, new(int), &received); err != nil {
		t.Fatalf("attacker's summary %q: %v", line, err)
	}
	// A feed taken over ends in a kill tcpwdStalls intervals later: give the last one time.
	time.Sleep(tcpwdStalls*tcpwdInterval + 500*time.Millisecond)
	kills = len(testkit.LinesWith(serve.Stderr.Lines(), "worker="+name+" ", "event=kill "))
	forged = len(testkit.LinesWith(serve.Stdout.Lines(), recvLine+tcpwdForged))
	hang = !StopPromptly(t, serve)
	return accepted, received, forged, kills, hang
}

// tcpwdClient builds the project's C client of the TCP watchdog (compat/cpp/tcpwd_client.c,
// plain C and libc) into a directory of the test, and returns its path. Without a C compiler
// the test is skipped, or fails under CI=true.
func tcpwdClient(t testing.TB) string {
	t.Helper()
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	_, err := exec.LookPath(cc)
	testkit.Require(t, err == nil, "no C compiler ("+cc+") to build compat/cpp/tcpwd_client.c (apt-get install gcc)")
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "tcpwd_client")
	cmd := exec.Command(cc, "-O2", "-std=c11", "-o", out, filepath.Join(root, "compat", "cpp", "tcpwd_client.c"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the TCP watchdog client: %v\n%s", err, b)
	}
	return out
}

// moduleRoot returns the directory of go.mod above the working directory (a test runs in
// its package's directory).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("badactor: no go.mod above the working directory")
		}
		dir = parent
	}
}

// tcpwdAttackMain is the attacker of the takeover: args are the server's address, the name
// of the client and the name of the idle worker. It sends one forward to the client's name
// with that name as its forged source, registers the idle worker's name, then every
// tcpwdEvery opens a connection that registers the client's name as its receiver and with
// the watchdog. It counts the registrations the server refused (it closed the connection)
// and the packets forwarded to it, and prints "tcpwd-attack accepted A refused R received K".
func tcpwdAttackMain(args []string) error {
	addr, name, idle := args[0], args[1], args[2]
	packet := func(p tcpwd.Packet) []byte {
		b, err := p.MarshalBinary()
		if err != nil {
			panic(err)
		}
		return b
	}
	forged, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer forged.Close()
	forged.Write(packet(tcpwd.Packet{Head: "head", Cmd: tcpwd.CmdForward, Target: name, Source: name, Msg: tcpwdForged}))
	time.Sleep(200 * time.Millisecond)

	var (
		mu                sync.Mutex
		refused, received int
		wg                sync.WaitGroup
		conns             []net.Conn
	)
	register := func(name string) []byte {
		return append(packet(tcpwd.Packet{Head: "head", Cmd: tcpwd.CmdReceive, Source: name}),
			packet(tcpwd.Packet{Head: "head", Cmd: tcpwd.CmdWatchdog, Wdt: tcpwd.WdtRegister, Source: name})...)
	}
	// The idle worker's name first, then the client's every tcpwdEvery.
	for i := range tcpwdAttempts + 1 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		conns = append(conns, c)
		if i == 0 {
			c.Write(register(idle))
		} else {
			c.Write(register(name))
		}
		wg.Go(func() {
			buf := make([]byte, tcpwd.PacketSize)
			for {
				_, err := io.ReadFull(c, buf)
				mu.Lock()
				switch {
				case err == nil:
					received++
				case !errors.Is(err, net.ErrClosed): // the server closed it: refused
					refused++
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
		if i > 0 {
			time.Sleep(tcpwdEvery)
		}
	}
	// Hold the last registrations a while: a receiver taken over gets the worker's messages.
	time.Sleep(500 * time.Millisecond)
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	fmt.Printf("tcpwd-attack accepted %d refused %d received %d\n", tcpwdAttempts+1-refused, refused, received)
	return nil
}
