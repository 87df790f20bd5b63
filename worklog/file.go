package worklog

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// TimeLayout is the timestamp that begins every line of a log file: RFC 3339 with
// microseconds, fixed width for a host's time zone.
const TimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// The tags of a line, after its timestamp: which stream of the program wrote it, or the log
// process's own note ("… 1234 bytes dropped").
const (
	TagOut  = "out"
	TagErr  = "err"
	TagNote = "log"
)

// file is the log file as the log process writes it: lines with their timestamp and tag,
// rotated at max bytes. It is used by one goroutine.
type file struct {
	path string
	max  int64
	keep int
	f    *os.File // nil when closed (after an error: opened again on the next write)
	size int64
	buf  []byte
}

// open opens the file for appending, making its directory when missing. The path is the
// configuration's, but its directory may be writable by others: a symbolic link or a FIFO
// planted at it is refused (O_NOFOLLOW, O_NONBLOCK, then a regular file only).
func (w *file) open() error {
	if err := os.MkdirAll(filepath.Dir(w.path), 0o755); err != nil {
		return fmt.Errorf("worklog: %w", err)
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o640)
	if err != nil {
		return fmt.Errorf("worklog: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("worklog: %s is not a regular file (%v)", w.path, fi.Mode().Type())
	}
	if err != nil {
		f.Close()
		return err
	}
	w.f, w.size = f, fi.Size()
	return nil
}

// write writes the lines of c (each ending in a newline) with c's time and tag, rotating the
// file where a line would take it beyond max. It returns how many bytes of c's lines it could
// not write, and why; the file is then closed, to be opened again by the next write.
func (w *file) write(c chunk) (lost int64, err error) {
	if w.f == nil {
		if err := w.open(); err != nil {
			return int64(len(c.data)), err
		}
	}
	prefix := c.at.Format(TimeLayout) + " " + c.tag + " "
	data := c.data
	var pending int64 // bytes of c's lines in the buffer, not written yet
	for len(data) > 0 {
		n := indexNL(data) + 1
		line := data[:n]
		if add := int64(len(prefix) + n); w.size+int64(len(w.buf))+add > w.max && w.size+int64(len(w.buf)) > 0 {
			if err := w.rotate(); err != nil {
				return pending + int64(len(data)), err
			}
			pending = 0
		}
		w.buf = append(append(w.buf, prefix...), line...)
		pending += int64(n)
		data = data[n:]
		if len(w.buf) >= 64<<10 {
			if err := w.flush(); err != nil {
				return pending + int64(len(data)), err
			}
			pending = 0
		}
	}
	if err := w.flush(); err != nil {
		return pending, err
	}
	return 0, nil
}

// note writes one line of the log process's own.
func (w *file) note(at time.Time, text string) error {
	_, err := w.write(chunk{at: at, tag: TagNote, data: []byte(text + "\n")})
	return err
}

// flush writes the buffer to the file. When it fails, what it held is dropped (some of it
// may have been written: a write cut short by a full disk).
func (w *file) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.f.Write(w.buf)
	w.size += int64(n)
	w.buf = w.buf[:0]
	if err != nil {
		w.close()
		return fmt.Errorf("worklog: %w", err)
	}
	return nil
}

// rotate writes what is buffered and moves the file to PATH.1 (PATH.1 to PATH.2, and so on:
// PATH.keep is overwritten), or removes it when keep is 0; a new file takes its place.
func (w *file) rotate() error {
	if err := w.flush(); err != nil {
		return err
	}
	w.close()
	var err error
	if w.keep == 0 {
		err = os.Remove(w.path)
	} else {
		for i := w.keep - 1; i >= 1; i-- {
			if err := os.Rename(w.old(i), w.old(i+1)); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("worklog: rotate: %w", err)
			}
		}
		err = os.Rename(w.path, w.old(1))
	}
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("worklog: rotate: %w", err)
	}
	return w.open()
}

// old returns the name of the i-th old file.
func (w *file) old(i int) string { return OldFile(w.path, i) }

// OldFile returns the name of the i-th old file of the log at path (1 is the newest):
// PATH.i.
func OldFile(path string, i int) string { return path + "." + strconv.Itoa(i) }

func (w *file) close() {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
}

func indexNL(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return len(b) - 1
}
