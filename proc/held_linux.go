package proc

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// The facts below are read from /proc/PID while the handle holds the process: a read that
// raced with the process's exit (after which the pid may name another process) is an error
// matching [os.ErrProcessDone], so a fact returned without error is the held process's.

// Credentials returns the identity the kernel checks the process's access with, from
// /proc/PID/status. Outcomes:
//
//   - The credentials, nil.
//   - The process exited (before or during the read): an error matching [os.ErrProcessDone].
//   - /proc cannot be read or parsed: the wrapped error.
//
// procfs's ProcStatus has the uids and gids but not the supplementary groups, which the
// kernel's group check uses too; so the three lines are parsed here.
func (p *Process) Credentials() (Credentials, error) {
	const op = "credentials of"
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/status")
	if err := p.heldRead(op, err); err != nil {
		return Credentials{}, err
	}
	c, err := parseCredentials(b)
	if err != nil {
		return Credentials{}, fmt.Errorf("proc: %s pid %d: /proc/%d/status: %w", op, p.pid, p.pid, err)
	}
	return c, nil
}

// parseCredentials reads the Uid, Gid and Groups lines of a /proc/PID/status: Uid and Gid
// list the real, effective, saved and filesystem ids.
func parseCredentials(status []byte) (Credentials, error) {
	var c Credentials
	var seen int
	for line := range bytes.Lines(status) {
		name, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok || !slices.Contains([]string{"Uid", "Gid", "Groups"}, string(name)) {
			continue
		}
		fields := bytes.Fields(rest)
		ids := make([]uint32, 0, len(fields))
		for _, f := range fields {
			n, err := strconv.ParseUint(string(f), 10, 32)
			if err != nil {
				return Credentials{}, fmt.Errorf("%s: %q is not an id", name, f)
			}
			ids = append(ids, uint32(n))
		}
		switch string(name) {
		case "Uid", "Gid":
			if len(ids) != 4 {
				return Credentials{}, fmt.Errorf("%s: %d ids, want 4 (real, effective, saved, filesystem)", name, len(ids))
			}
			if name[0] == 'U' {
				c.RealUid, c.Uid = ids[0], ids[1]
			} else {
				c.RealGid, c.Egid, c.Gid = ids[0], ids[1], ids[3]
			}
			seen++
		case "Groups":
			c.Groups = ids
			seen++
		}
	}
	if seen != 3 {
		return Credentials{}, errors.New("want the Uid, Gid and Groups lines")
	}
	return c, nil
}

// SysVAttached reports whether the process has the System V shared-memory segment of key
// and id shmid attached: its /proc/PID/maps shows it as the file "/SYSV" + the key in 8 hex
// digits (" (deleted)": the kernel's file of a segment has no name), with the segment id as
// its inode. A process attaches a segment only by itself (shmat; a child inherits its
// parent's attachments, an exec drops them). Outcomes:
//
//   - Whether it is attached, nil.
//   - The process exited (before or during the read): an error matching [os.ErrProcessDone].
//   - The map cannot be read (another user's process, for a caller that is not root): the
//     wrapped error.
func (p *Process) SysVAttached(key, shmid int) (bool, error) {
	name := fmt.Sprintf("/SYSV%08x", uint32(key))
	return p.mapped("memory map of", func(m *procfs.ProcMap) bool {
		return m.Inode == uint64(shmid) && (m.Pathname == name || m.Pathname == name+" (deleted)")
	})
}

// MapsFile reports whether the process has the file of device dev and inode ino mapped into
// its memory (a shared-memory object: the st_dev and st_ino of its file), from
// /proc/PID/maps. The file is matched by its numbers, not by the path the maps show, which
// follows renames and may end in " (deleted)". Reading another user's maps needs root.
// Outcomes:
//
//   - Whether a mapping of the file is there, nil.
//   - The process exited (before or during the read): an error matching [os.ErrProcessDone].
//   - The maps cannot be read (e.g. matching fs.ErrPermission): the wrapped error.
func (p *Process) MapsFile(dev, ino uint64) (bool, error) {
	return p.mapped("memory map of", func(m *procfs.ProcMap) bool { return m.Dev == dev && m.Inode == ino })
}

// mapped reports whether a line of the process's /proc/PID/maps matches.
func (p *Process) mapped(op string, match func(*procfs.ProcMap) bool) (bool, error) {
	var maps []*procfs.ProcMap
	pr, err := procfs.NewProc(p.pid)
	if err == nil {
		maps, err = pr.ProcMaps()
	}
	if err := p.heldRead(op, err); err != nil {
		return false, err
	}
	return slices.ContainsFunc(maps, match), nil
}

// heldRead turns the outcome of a read of /proc/PID into the error of a fact about the held
// process: the read failed because the process is gone, or it succeeded but the process
// exited meanwhile (so the pid may have named another process by then), or err itself.
func (p *Process) heldRead(op string, err error) error {
	exited, cerr := p.exitedNow(op)
	switch {
	case cerr != nil:
		return cerr
	case exited || errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH):
		return p.doneError(op)
	case err != nil:
		return fmt.Errorf("proc: %s pid %d: %w", op, p.pid, err)
	}
	return nil
}
