package shmobj

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// Read reads the object name from its file, without mapping it (so an object truncated
// meanwhile cannot fault the reader), and decodes it. Values are read with plain reads, each
// 8-byte field as the kernel copies it; that is enough for display. The error matches
// [fs.ErrNotExist] for a missing object, wraps [ErrNotRegular] for a file that is not an
// object, and [ErrTooSmall] for one under [MinSize].
func Read(name string) (Snapshot, error) {
	snap, _, err := Inspect(name)
	return snap, err
}

// Inspect is [Read], and also returns what the file system says about the object: its owner,
// permissions and identity, from the same open file that was read. The open never blocks and
// never follows a link, only a regular file is read, and no more than the worker pid and the
// record (with the status text) is read, whatever the object's size.
func Inspect(name string) (Snapshot, Info, error) {
	if err := ValidateName(name); err != nil {
		return Snapshot{}, Info{}, err
	}
	fd, err := sysOpenRead(Path(name))
	if err != nil {
		return Snapshot{}, Info{}, fmt.Errorf("shmobj: read %q: %w", name, err)
	}
	defer sysClose(fd)
	fi, err := sysFstat(fd)
	if err == nil {
		err = fi.regular(name)
	}
	if err != nil {
		return Snapshot{}, Info{}, fmt.Errorf("shmobj: read %q: %w", name, err)
	}
	size := fi.Size
	if size < MinSize {
		return Snapshot{}, fi, fmt.Errorf("%w: %q has %d bytes, want at least %d", ErrTooSmall, name, size, MinSize)
	}
	head := make([]byte, min(size/2, OffWorkerPid+8))
	if err := readAt(fd, head, 0); err != nil {
		return Snapshot{}, fi, fmt.Errorf("shmobj: read %q: %w", name, err)
	}
	var rec []byte // the record, and the status text when there is room for it
	if half := size / 2; half >= RecordLen {
		rec = make([]byte, RecordLen)
		if half >= OffStatusText+MaxStatusText {
			rec = make([]byte, OffStatusText+MaxStatusText)
		}
		if err := readAt(fd, rec, half); err != nil {
			return Snapshot{}, fi, fmt.Errorf("shmobj: read %q: %w", name, err)
		}
	}
	s, err := decodeParts(size, head, rec)
	if err == nil && s.HasRecord {
		s.StatusText = decodeText(rec)
	}
	return s, fi, err
}

// readAt fills b from offset off of fd; a short read (the object shrank while being read) is
// [io.ErrUnexpectedEOF].
func readAt(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := sysPread(fd, b, off)
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrUnexpectedEOF
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

// Entry is one object found by [List].
type Entry struct {
	Name     string
	Snapshot Snapshot
	Err      error // why the object could not be read or decoded; Snapshot is then partial
}

// List reads every object in /dev/shm (see [Read]), sorted by name. Directories, links and
// shmmon's own temporary objects (".shmmon-*") are skipped.
func List() ([]Entry, error) {
	des, err := os.ReadDir(Dir)
	if err != nil {
		return nil, fmt.Errorf("shmobj: list: %w", err)
	}
	var out []Entry
	for _, de := range des {
		name := de.Name()
		if !de.Type().IsRegular() || strings.HasPrefix(name, tempPrefix) {
			continue
		}
		snap, err := Read(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed while listing
		}
		out = append(out, Entry{Name: name, Snapshot: snap, Err: err})
	}
	return out, nil
}
