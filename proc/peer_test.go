package proc

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestPeerOf: both ends of a Unix connection see the other's process, user, group and
// supplementary groups as the kernel recorded them.
func TestPeerOf(t *testing.T) {
	for _, network := range []string{"unix", "unixpacket"} {
		t.Run(network, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sock")
			ln, err := net.ListenUnix(network, &net.UnixAddr{Name: path, Net: network})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			accepted := make(chan *net.UnixConn, 1)
			go func() {
				c, err := ln.AcceptUnix()
				if err != nil {
					t.Error(err)
				}
				accepted <- c
			}()
			c, err := net.DialUnix(network, nil, &net.UnixAddr{Name: path, Net: network})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s := <-accepted
			if s == nil {
				return
			}
			defer s.Close()
			groups, err := os.Getgroups()
			if err != nil {
				t.Fatal(err)
			}
			for _, end := range []*net.UnixConn{c, s} {
				p, err := PeerOf(end)
				if err != nil {
					t.Fatal(err)
				}
				have := make([]int, len(p.Groups))
				for i, g := range p.Groups {
					have[i] = int(g)
				}
				slices.Sort(have)
				slices.Sort(groups)
				if p.Pid != os.Getpid() || int(p.Uid) != os.Geteuid() || int(p.Gid) != os.Getegid() || !slices.Equal(have, groups) {
					t.Errorf("PeerOf = %+v, want pid %d uid %d gid %d groups %v", p, os.Getpid(), os.Geteuid(), os.Getegid(), groups)
				}
				if !p.InGroup(p.Gid) || p.InGroup(0xfffffff0) {
					t.Errorf("InGroup of %+v: wrong", p)
				}
			}
		})
	}
}
