package proc

import "slices"

// Peer is who is at the other end of a Unix socket (see [PeerOf]).
type Peer struct {
	Pid    int      // its process when it connected (or listened); it may have exited since
	Uid    uint32   // its effective uid then
	Gid    uint32   // its effective gid then
	Groups []uint32 // its supplementary groups then
}

// InGroup reports whether gid is the peer's gid or one of its supplementary groups, as the
// kernel's group check does.
func (p Peer) InGroup(gid uint32) bool { return p.Gid == gid || slices.Contains(p.Groups, gid) }
