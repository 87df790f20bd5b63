package pidfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmmon/shmmon/internal/filetype"
)

// maxLinks bounds the symbolic links followed on one path, as the kernel's own lookup does.
const maxLinks = 40

// read is [Read] for a caller whose effective uid is euid.
func read(path string, euid uint32) (File, error) {
	fail := func(owner int, why string, err error) (File, error) {
		return File{}, &Error{Path: path, Owner: owner, Why: why, Err: err}
	}
	if !filepath.IsAbs(path) {
		return fail(-1, "not an absolute path", ErrInvalid)
	}
	dir, base := filepath.Split(filepath.Clean(path))
	dirfd, err := openDir(dir, euid)
	if err != nil {
		var r *refusal
		if errors.As(err, &r) {
			return fail(-1, r.why, ErrUntrusted)
		}
		return fail(-1, err.Error(), err)
	}
	defer unix.Close(dirfd)

	// O_NONBLOCK: opening a FIFO for reading would wait for a writer. O_NOFOLLOW: the file
	// itself must not be a link, which could point anywhere.
	fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ELOOP):
		return fail(-1, "a symbolic link (the file itself must be the pidfile)", ErrUntrusted)
	case errors.Is(err, unix.ENXIO):
		return fail(-1, "a socket, not a regular file", ErrUntrusted)
	case err != nil:
		err = &os.PathError{Op: "open", Path: path, Err: err}
		return fail(-1, err.Error(), err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		err = &os.PathError{Op: "fstat", Path: path, Err: err}
		return fail(-1, err.Error(), err)
	}
	owner := int(st.Uid)
	if why := trustFile(st, euid); why != "" {
		return fail(owner, why, ErrUntrusted)
	}
	b := make([]byte, MaxSize+1)
	n, err := readFull(fd, b)
	if err != nil {
		err = &os.PathError{Op: "read", Path: path, Err: err}
		return fail(owner, err.Error(), err)
	}
	if n > MaxSize {
		return fail(owner, fmt.Sprintf("holds more than %d bytes; a pidfile holds one pid", MaxSize), ErrInvalid)
	}
	pid, err := parse(path, st.Uid, b[:n])
	if err != nil {
		return File{}, err
	}
	return File{Path: path, Pid: pid, Owner: st.Uid, ModTime: time.Unix(st.Mtim.Unix())}, nil
}

// readFull reads fd into b until b is full or the file ends, and returns how much it read.
func readFull(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Read(fd, b[n:])
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return n, err
		case m == 0:
			return n, nil
		}
		n += m
	}
	return n, nil
}

// refusal is a trust rule broken on the way to the file's directory.
type refusal struct{ why string }

func (r *refusal) Error() string { return r.why }

// openDir opens the directory dir (absolute) for lookups (O_PATH), walking from / one
// component at a time and checking every directory it passes and every symbolic link it
// follows (see the package doc). A rule broken is a *refusal; a lookup that fails, an
// *os.PathError. Opening each component from the descriptor of the one before, rather than
// checking paths and then opening the whole, leaves nobody a moment to swap one in between.
func openDir(dir string, euid uint32) (int, error) {
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: "/", Err: err}
	}
	at := "/"
	if err := checkDir(fd, at, euid, len(components(dir)) == 0); err != nil {
		unix.Close(fd)
		return -1, err
	}
	rest, links := components(dir), 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		next := filepath.Join(at, name)
		nfd, err := unix.Openat(fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			unix.Close(fd)
			return -1, &os.PathError{Op: "open", Path: next, Err: err}
		}
		var st unix.Stat_t
		if err := unix.Fstat(nfd, &st); err != nil {
			unix.Close(nfd)
			unix.Close(fd)
			return -1, &os.PathError{Op: "fstat", Path: next, Err: err}
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			// Its directory was checked, so only its owner could have made it (or, in a
			// sticky directory, the directory's owner).
			target, err := readlink(nfd)
			unix.Close(nfd)
			switch {
			case err != nil:
				unix.Close(fd)
				return -1, &os.PathError{Op: "readlink", Path: next, Err: err}
			case !trustedOwner(st.Uid, euid):
				unix.Close(fd)
				return -1, &refusal{fmt.Sprintf("the symbolic link %s on its path is owned by uid %d, not root or uid %d", next, st.Uid, euid)}
			case links >= maxLinks:
				unix.Close(fd)
				return -1, &os.PathError{Op: "open", Path: next, Err: unix.ELOOP}
			}
			links++
			if filepath.IsAbs(target) {
				unix.Close(fd)
				if fd, err = unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
					return -1, &os.PathError{Op: "open", Path: "/", Err: err}
				}
				at = "/"
			}
			rest = append(components(target), rest...)
			if err := checkDir(fd, at, euid, len(rest) == 0); err != nil {
				unix.Close(fd)
				return -1, err
			}
		case unix.S_IFDIR:
			unix.Close(fd)
			fd, at = nfd, next
			if err := checkDir(fd, at, euid, len(rest) == 0); err != nil {
				unix.Close(fd)
				return -1, err
			}
		default:
			unix.Close(nfd)
			unix.Close(fd)
			return -1, &os.PathError{Op: "open", Path: next, Err: unix.ENOTDIR}
		}
	}
	return fd, nil
}

// components returns the names in path, without empty ones and ".".
func components(path string) []string {
	var out []string
	for _, c := range strings.Split(path, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// readlink returns the target of the symbolic link open at fd (O_PATH|O_NOFOLLOW).
func readlink(fd int) (string, error) {
	for size := 256; ; size *= 2 {
		b := make([]byte, size)
		n, err := unix.Readlinkat(fd, "", b)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(b[:n]), nil
		}
	}
}

// checkDir checks the directory open at fd, whose path is at: last says whether the file is
// in it.
func checkDir(fd int, at string, euid uint32, last bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: at, Err: err}
	}
	if why := trustDir(st, euid, last); why != "" {
		return &refusal{fmt.Sprintf("the directory %s %s", at, why)}
	}
	return nil
}

// trustDir returns why the directory st may not hold or lead to a pidfile, or "": see the
// package doc. last says whether it is the file's own directory.
func trustDir(st unix.Stat_t, euid uint32, last bool) string {
	mode := st.Mode & 0o7777
	switch {
	case !trustedOwner(st.Uid, euid):
		return fmt.Sprintf("is owned by uid %d, not root or uid %d", st.Uid, euid)
	case mode&0o022 != 0 && (last || mode&unix.S_ISVTX == 0):
		return fmt.Sprintf("is writable by group or others (mode %04o)", mode)
	}
	return ""
}

// trustFile returns why the file st may not be a pidfile, or "": see the package doc.
func trustFile(st unix.Stat_t, euid uint32) string {
	mode := st.Mode & 0o7777
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return fmt.Sprintf("not a regular file (%s)", filetype.Name(filetype.Unix(st.Mode)))
	case !trustedOwner(st.Uid, euid):
		return fmt.Sprintf("owned by uid %d, not root or uid %d", st.Uid, euid)
	case mode&0o022 != 0:
		return fmt.Sprintf("writable by group or others (mode %04o)", mode)
	}
	return ""
}

// trustedOwner reports whether uid is root or euid.
func trustedOwner(uid, euid uint32) bool { return uid == 0 || uid == euid }
