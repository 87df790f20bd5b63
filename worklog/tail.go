package worklog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"syscall"
	"time"
)

// Position is where a reader of a log file stands: the file (its inode) and the offset of the
// byte after the last whole line read.
type Position struct {
	Ino    uint64
	Offset int64
}

// MaxTail is the most lines [Tail] returns.
const MaxTail = 100000

// Tail returns the last n lines of the log at path (without their newlines), taken from the
// file and, when it has fewer, from its old files (path.1 to path.keep), oldest first, and
// the position after them in the file, for [Follow]. A missing file has no lines; n is at
// most [MaxTail].
func Tail(path string, keep, n int) ([]string, Position, error) {
	var pos Position
	if n < 0 || n > MaxTail {
		return nil, pos, fmt.Errorf("worklog: %d lines: want 0 to %d", n, MaxTail)
	}
	var out [][]byte
	for i := 0; i <= keep && (i == 0 || len(out) < n); i++ {
		name := path
		if i > 0 {
			name = OldFile(path, i)
		}
		ls, p, err := lastLines(name, n-len(out))
		if errors.Is(err, fs.ErrNotExist) {
			if i == 0 {
				continue
			}
			break
		}
		if err != nil {
			return nil, pos, err
		}
		if i == 0 {
			pos = p
		}
		out = append(ls, out...)
	}
	lines := make([]string, len(out))
	for i, l := range out {
		lines[i] = string(l)
	}
	return lines, pos, nil
}

// openLog opens a log file for reading: not through a symbolic link, and only a regular file
// (a FIFO planted in a log directory must not hold a reader).
func openLog(name string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("worklog: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("worklog: %s is not a regular file", name)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// lastLines returns the last n whole lines of the file name, reading it backwards, and the
// position after them.
func lastLines(name string, n int) ([][]byte, Position, error) {
	f, fi, err := openLog(name)
	if err != nil {
		return nil, Position{}, err
	}
	defer f.Close()
	end := fi.Size()
	pos := Position{Ino: fi.Sys().(*syscall.Stat_t).Ino, Offset: end}
	// A line being written (no newline yet) is not whole: it is left to Follow.
	var tail []byte
	const block = 64 << 10
	off := end
	for off > 0 {
		size := min(block, off)
		off -= size
		b := make([]byte, size)
		if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
			return nil, pos, fmt.Errorf("worklog: %w", err)
		}
		tail = append(b, tail...)
		if bytes.Count(tail, []byte{'\n'}) > n {
			break
		}
	}
	if i := bytes.LastIndexByte(tail, '\n'); i < len(tail)-1 {
		pos.Offset -= int64(len(tail) - i - 1)
		tail = tail[:i+1]
	}
	ls := bytes.SplitAfter(tail, []byte{'\n'})
	ls = slices.DeleteFunc(ls, func(l []byte) bool { return len(l) == 0 })
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	for i := range ls {
		ls[i] = bytes.TrimSuffix(ls[i], []byte{'\n'})
	}
	return ls, pos, nil
}

// FollowPeriod is how often [Follow] looks for new lines.
const FollowPeriod = 200 * time.Millisecond

// Follow calls fn with each whole line (without its newline) written to the log at path after
// pos, as the file grows and is rotated (the rest of the old file first, then the new one from
// its start), until ctx is done (it returns nil) or fn fails (its error). The file is looked
// at every [FollowPeriod]: a poll costs a stat and a read, and sees rotations a watch of the
// directory would have to be told about separately.
func Follow(ctx context.Context, path string, pos Position, fn func(line string) error) error {
	var (
		cur  *os.File
		part []byte
	)
	defer func() {
		if cur != nil {
			cur.Close()
		}
	}()
	buf := make([]byte, 64<<10)
	drain := func() error {
		for {
			n, err := cur.Read(buf)
			if n > 0 {
				data := append(part, buf[:n]...)
				for {
					i := bytes.IndexByte(data, '\n')
					if i < 0 {
						break
					}
					if err := fn(string(data[:i])); err != nil {
						return err
					}
					data = data[i+1:]
				}
				part = append(part[:0], data...)
			}
			if err != nil || n == 0 {
				return nil
			}
		}
	}
	t := time.NewTicker(FollowPeriod)
	defer t.Stop()
	for {
		if f, fi, err := openLog(path); err == nil {
			ino := fi.Sys().(*syscall.Stat_t).Ino
			switch {
			case cur == nil:
				cur = f
				if ino == pos.Ino {
					cur.Seek(pos.Offset, io.SeekStart)
				}
			case ino != pos.Ino:
				// Rotated: the rest of the old file, then the new one.
				if err := drain(); err != nil {
					f.Close()
					return err
				}
				cur.Close()
				cur, part = f, part[:0]
			default:
				f.Close()
			}
			pos.Ino = ino
		}
		if cur != nil {
			if err := drain(); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
