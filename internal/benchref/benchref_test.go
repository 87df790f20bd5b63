package benchref

import (
	"io"
	"net"
	"path/filepath"
	"syscall"
	"testing"
)

// BenchmarkNotifyDatagram is one "WATCHDOG=1" datagram per op, from an open unix datagram
// socket to a receiver drained by a goroutine.
func BenchmarkNotifyDatagram(b *testing.B) {
	addr := &net.UnixAddr{Name: filepath.Join(b.TempDir(), "notify"), Net: "unixgram"}
	rx, err := net.ListenUnixgram("unixgram", addr)
	if err != nil {
		b.Fatal(err)
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		buf := make([]byte, 64)
		for {
			if _, err := rx.Read(buf); err != nil {
				return // closed
			}
		}
	}()
	defer func() { rx.Close(); <-drained }()
	// An unbound, unconnected sender and sendto(2), as sd_notify does.
	tx, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer syscall.Close(tx)
	to := &syscall.SockaddrUnix{Name: addr.Name}
	msg := []byte("WATCHDOG=1")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := syscall.Sendto(tx, msg, 0, to); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTCPPacket is one 552-byte packet per op on an open loopback TCP connection whose
// other end a goroutine reads packet by packet.
func BenchmarkTCPPacket(b *testing.B) {
	const size = 552
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	read := make(chan struct{})
	go func() {
		defer close(read)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, size)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return // the sender closed
			}
		}
	}()
	tx, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer func() { tx.Close(); <-read }()
	pkt := make([]byte, size)
	copy(pkt, "SHMMON-TCP-BEAT")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tx.Write(pkt); err != nil {
			b.Fatal(err)
		}
	}
}
