package tcpwd

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/shmmon/shmmon/internal/testkit"
)

// listen listens on a loopback address of network ("tcp4" or "tcp6") until the test ends.
func listen(t *testing.T, network string) net.Listener {
	t.Helper()
	host := "127.0.0.1"
	if network == "tcp6" {
		host = "[::1]"
	}
	ln, err := net.Listen(network, host+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// accept returns the next connection of ln, closed when the test ends.
func accept(t *testing.T, ln net.Listener) net.Conn {
	t.Helper()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// selfDial connects to ln from this process and returns the server's end.
func selfDial(t *testing.T, network string, ln net.Listener) net.Conn {
	t.Helper()
	c, err := net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return accept(t, ln)
}

// peerOf runs peerProcess on the server's end c.
func peerOf(c net.Conn, root int) (int, error) {
	return peerProcess(c.LocalAddr().(*net.TCPAddr), c.RemoteAddr().(*net.TCPAddr), root)
}

// TestPeerProcess finds the process at the other end of real loopback connections: this
// test's own, a child's, over IPv4, IPv6 and from an IPv6 socket to an IPv4 listener; and
// refuses a root whose tree does not hold the socket.
func TestPeerProcess(t *testing.T) {
	ln4, ln6 := listen(t, "tcp4"), listen(t, "tcp6")
	own4, own6 := selfDial(t, "tcp4", ln4), selfDial(t, "tcp6", ln6)

	child, childAddr := startHelper(t, nil, "client", ln4.Addr().String())
	fromChild := accept(t, ln4)
	if fromChild.RemoteAddr().String() != childAddr {
		t.Fatalf("accepted %v, want the child's %v", fromChild.RemoteAddr(), childAddr)
	}
	other, _ := startHelper(t, nil, "client", ln4.Addr().String())
	accept(t, ln4)

	// A dual-stack IPv6 socket connected to the IPv4 listener: its line is in tcp6, with
	// IPv4-mapped addresses.
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	sa := &unix.SockaddrInet6{Port: ln4.Addr().(*net.TCPAddr).Port}
	copy(sa.Addr[:], net.ParseIP("127.0.0.1").To16())
	if err := unix.Connect(fd, sa); err != nil {
		t.Fatal(err)
	}
	mapped := accept(t, ln4)

	self := os.Getpid()
	for _, tt := range []struct {
		what string
		c    net.Conn
		root int
		want int // 0: an error
	}{
		{"this test's IPv4 connection", own4, self, self},
		{"this test's IPv6 connection", own6, self, self},
		{"a dual-stack socket to IPv4", mapped, self, self},
		{"the child's connection, the child as root", fromChild, child.Pid(), child.Pid()},
		{"the child's connection, this test as root", fromChild, self, child.Pid()},
		{"the child's connection, another process as root", fromChild, other.Pid(), 0},
		{"this test's connection, the child as root", own4, child.Pid(), 0},
		{"a root of 1", own4, 1, 0},
	} {
		pid, err := peerOf(tt.c, tt.root)
		switch {
		case tt.want == 0 && err == nil:
			t.Errorf("%s: pid %d, want an error", tt.what, pid)
		case tt.want == 0 && !strings.HasPrefix(err.Error(), "tcpwd: "):
			t.Errorf("%s: error %q, want the package's prefix", tt.what, err)
		case tt.want != 0 && (err != nil || pid != tt.want):
			t.Errorf("%s: %d, %v; want %d", tt.what, pid, err, tt.want)
		}
	}

	// The peer has gone: no established socket.
	own := selfDial(t, "tcp4", ln4)
	peer := own.RemoteAddr().(*net.TCPAddr)
	if _, err := peerProcess(own.LocalAddr().(*net.TCPAddr), &net.TCPAddr{IP: peer.IP, Port: peer.Port + 1}, self); err == nil {
		t.Error("a peer address without a socket was found")
	}
}

// TestPeerSocketOfAnotherUser: a socket another user created and handed to a process of the
// tree (here this test) is not the tree's.
func TestPeerSocketOfAnotherUser(t *testing.T) {
	testkit.Require(t, os.Geteuid() == 0, "running a helper as another user needs root")
	ln := listen(t, "tcp4")
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := os.NewFile(uintptr(pair[0]), "pass-ours"), os.NewFile(uintptr(pair[1]), "pass-theirs")
	defer ours.Close()
	exe := testkit.PublicExecutable(t)
	p := testkit.Start(t, "helper pass", func() *exec.Cmd {
		cmd := exec.Command(exe, ln.Addr().String())
		cmd.Env = append(os.Environ(), helperEnv+"=pass", "GORACE=atexit_sleep_ms=0")
		cmd.ExtraFiles = []*os.File{theirs}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		return cmd
	}())
	theirs.Close()
	c := accept(t, ln)
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(ours.Fd()), buf, oob, 0)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control messages %v, %v", msgs, err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("descriptors %v, %v", fds, err)
	}
	t.Cleanup(func() { unix.Close(fds[0]) })
	p.Wait(t, wait) // only this test holds the socket now

	_, err = peerOf(c, os.Getpid())
	if err == nil || !strings.Contains(err.Error(), "uid "+strconv.Itoa(65534)) {
		t.Errorf("a socket of uid 65534 held by this test: %v, want an error naming its owner", err)
	}
}
