package tcpwd

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"

	"github.com/prometheus/procfs"

	"github.com/shmmon/shmmon/proc"
)

// peerProcess returns a process of root's tree (see [proc.Tree]) that holds the socket of the
// peer of a TCP connection on this host, whose end here has the address ours: as `ss -p`
// does, it finds the peer's socket in /proc/net/tcp (or tcp6), the ESTABLISHED line whose
// local address is peer and remote address ours, and then a process of the tree whose
// /proc/PID/fd holds that socket's inode. The socket must also belong (the uid column) to
// root, which another user cannot create, or to a uid the holding process runs as: a socket
// another user made and handed over is not the tree's. It fails, saying why, otherwise.
func peerProcess(ours, peer *net.TCPAddr, root int) (int, error) {
	if ours == nil || peer == nil {
		return 0, errors.New("tcpwd: not a TCP connection")
	}
	inode, uid, err := peerSocket(ours, peer)
	if err != nil {
		return 0, err
	}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0, fmt.Errorf("tcpwd: %w", err)
	}
	target := "socket:[" + strconv.FormatUint(inode, 10) + "]"
	var refused error
	for _, pid := range proc.Tree(root) {
		p, err := fs.Proc(pid)
		if err != nil {
			continue
		}
		fds, err := p.FileDescriptorTargets()
		if err != nil || !slices.Contains(fds, target) {
			continue
		}
		st, err := p.NewStatus()
		if err != nil {
			continue
		}
		if uid != 0 && !slices.Contains(st.UIDs[:], uid) {
			refused = fmt.Errorf("tcpwd: peer %v: its socket belongs to uid %d, which pid %d of the worker's tree does not run as", peer, uid, pid)
			continue
		}
		return pid, nil
	}
	if refused != nil {
		return 0, refused
	}
	return 0, fmt.Errorf("tcpwd: peer %v: no process of the tree of pid %d holds its socket (inode %d)", peer, root, inode)
}

// tcpEstablished is the state column of an ESTABLISHED socket in /proc/net/tcp.
const tcpEstablished = "01"

// peerSocket returns the inode and the owner's uid of the peer's socket of a connection on
// this host (see [peerProcess]). An IPv4 peer's socket is in /proc/net/tcp, or in
// /proc/net/tcp6 with IPv4-mapped addresses when the peer connected from a dual-stack IPv6
// socket.
//
// It scans the files itself rather than through procfs's NetTCP, which is deprecated and
// parses every socket of the host into a record (two net.IP each) on every call: this needs
// one line, found by its address columns' text.
func peerSocket(ours, peer *net.TCPAddr) (inode, uid uint64, err error) {
	type table struct{ file, local, remote string }
	var tables []table
	if p4, o4 := peer.IP.To4(), ours.IP.To4(); p4 != nil && o4 != nil {
		tables = append(tables, table{"/proc/net/tcp", procAddr(p4, peer.Port), procAddr(o4, ours.Port)})
	}
	if p16, o16 := peer.IP.To16(), ours.IP.To16(); p16 != nil && o16 != nil {
		tables = append(tables, table{"/proc/net/tcp6", procAddr(p16, peer.Port), procAddr(o16, ours.Port)})
	}
	for _, tb := range tables {
		inode, uid, found, err := findSocket(tb.file, tb.local, tb.remote)
		if err != nil {
			return 0, 0, err
		}
		if found {
			return inode, uid, nil
		}
	}
	return 0, 0, fmt.Errorf("tcpwd: peer %v: no established socket from it to %v in /proc/net/tcp or tcp6", peer, ours)
}

// procAddr writes an address as /proc/net/tcp does: each 32-bit word of the IP as the
// kernel holds it (so in the machine's byte order) in 8 upper-case hex digits, then ':' and
// the port in 4.
func procAddr(ip net.IP, port int) string {
	var b []byte
	for i := 0; i+4 <= len(ip); i += 4 {
		b = fmt.Appendf(b, "%08X", binary.NativeEndian.Uint32(ip[i:i+4]))
	}
	return string(fmt.Appendf(b, ":%04X", port))
}

// findSocket looks in file (/proc/net/tcp or tcp6) for the ESTABLISHED socket whose local and
// remote addresses are local and remote (as [procAddr] writes them), and returns its inode and
// uid. Columns: sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
func findSocket(file, local, remote string) (inode, uid uint64, found bool, err error) {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, false, nil // no IPv6 on this host
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("tcpwd: %w", err)
	}
	defer f.Close()
	loc := []byte(" " + local + " " + remote + " " + tcpEstablished + " ")
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Bytes()
		// Only the line sought is split into fields.
		if !bytes.Contains(line, loc) {
			continue
		}
		fields := bytes.Fields(line)
		if len(fields) < 10 {
			break
		}
		if uid, err = strconv.ParseUint(string(fields[7]), 10, 32); err == nil {
			inode, err = strconv.ParseUint(string(fields[9]), 10, 64)
		}
		if err != nil || inode == 0 {
			return 0, 0, false, fmt.Errorf("tcpwd: %s: unreadable line %q", file, line)
		}
		return inode, uid, true, nil
	}
	if err := s.Err(); err != nil {
		return 0, 0, false, fmt.Errorf("tcpwd: %s: %w", file, err)
	}
	return 0, 0, false, nil
}
