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
// [fs.ErrNotExist] for a missing object and wraps [ErrTooSmall] for one under [MinSize].
func Read(name string) (Snapshot, error) {
	if err := ValidateName(name); err != nil {
		return Snapshot{}, err
	}
	f, err := os.Open(Path(name))
	if err != nil {
		return Snapshot{}, fmt.Errorf("shmobj: read %q: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Snapshot{}, fmt.Errorf("shmobj: read %q: %w", name, err)
	}
	size := fi.Size()
	if !fi.Mode().IsRegular() || size < MinSize {
		return Snapshot{}, fmt.Errorf("%w: %q has %d bytes, want at least %d", ErrTooSmall, name, size, MinSize)
	}
	head := make([]byte, min(size/2, OffWorkerPid+8))
	if _, err := f.ReadAt(head, 0); err != nil {
		return Snapshot{}, fmt.Errorf("shmobj: read %q: %w", name, noEOF(err))
	}
	var rec []byte // the record, and the status text when there is room for it
	if half := size / 2; half >= RecordLen {
		rec = make([]byte, RecordLen)
		if half >= OffStatusText+MaxStatusText {
			rec = make([]byte, OffStatusText+MaxStatusText)
		}
		if _, err := f.ReadAt(rec, half); err != nil {
			return Snapshot{}, fmt.Errorf("shmobj: read %q: %w", name, noEOF(err))
		}
	}
	s, err := decodeParts(size, head, rec)
	if err == nil && s.HasRecord {
		s.StatusText = decodeText(rec)
	}
	return s, err
}

// noEOF reports a short read (the object shrank while being read) as such.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
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
