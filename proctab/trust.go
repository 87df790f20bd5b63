package proctab

import (
	"fmt"
	"os"
	"time"

	"github.com/shmmon/shmmon/proc"
)

// perm is the System V ipc_perm of the table's segment: its owner, its creator, and its mode.
type perm struct {
	Uid, Gid, Cuid, Cgid uint32
	Mode                 os.FileMode
}

// mayWrite reports whether a process with credentials c may write the table, by the rule the
// kernel applies to System V objects (ipcperms): root always may; the owner or the creator
// as the owner bits say; else a member of the owner's or the creator's group as the group
// bits say; else as the others bits say.
func (p perm) mayWrite(c proc.Credentials) bool {
	switch {
	case c.Uid == 0:
		return true
	case c.Uid == p.Uid || c.Uid == p.Cuid:
		return p.Mode&0o200 != 0
	case c.InGroup(p.Gid) || c.InGroup(p.Cgid):
		return p.Mode&0o020 != 0
	}
	return p.Mode&0o002 != 0
}

func (p perm) String() string {
	return fmt.Sprintf("owner %d:%d, creator %d:%d, mode %#o", p.Uid, p.Gid, p.Cuid, p.Cgid, uint32(p.Mode))
}

// distrust returns why a timed-out record may not be trusted to name the process p (with
// credentials c), or "" when it may. Anyone who may write the table may write any record, so
// a record alone proves nothing: it names a process only when that process is a client of
// the table, which it shows by having the table attached (nobody can make another process
// attach a segment), and when the process's own user could have written the record.
func (t *Table) distrust(p *proc.Process, c proc.Credentials, segment perm) string {
	if !segment.mayWrite(c) {
		return fmt.Sprintf("its user (uid %d, gid %d, groups %v) may not write the table (%v)", c.Uid, c.Gid, c.Groups, segment)
	}
	attached, err := p.SysVAttached(t.opts.Key, t.shmid)
	switch {
	case err != nil:
		return fmt.Sprintf("cannot tell whether it has the table attached: %v", err)
	case !attached:
		return fmt.Sprintf("it does not have the table attached (no segment %#x, id %d, in its memory map)", t.opts.Key, t.shmid)
	}
	return ""
}

// problem returns what makes r a bad record at now, or "" when nothing does: a timeout under
// 1 s (clients write whole seconds, at least 1; a negative one would be timed out forever),
// or a heartbeat in the future (beyond the second that atime's resolution allows).
func (r Record) problem(now time.Time) string {
	switch {
	case r.Timeout < time.Second:
		return fmt.Sprintf("timeout %ds: want at least 1s", int64(r.Timeout/time.Second))
	case r.Atime.Unix() > now.Unix()+1:
		return fmt.Sprintf("heartbeat %v in the future", r.Atime.Sub(now).Round(time.Second))
	}
	return ""
}
