package shmobj

import (
	"fmt"
	"os"
)

// Info is what the file system says about an object's file in /dev/shm: who may write it,
// and whether it is one object under one name. Another user may create any file under a
// name, so shmmon trusts an object only after checking these (see [Adopt]).
type Info struct {
	ID    FileID
	Size  int64
	Mode  os.FileMode // type and permission bits, as in os.FileInfo
	Uid   uint32      // owner
	Gid   uint32      // group
	Links uint64      // names of the file: 1 unless someone made a hard link to it
}

// regular returns nil for a regular file, else an error wrapping [ErrNotRegular] that says
// what the file at name is.
func (fi Info) regular(name string) error {
	if fi.Mode.IsRegular() {
		return nil
	}
	return fmt.Errorf("%w: %s is a %s", ErrNotRegular, Path(name), fileType(fi.Mode))
}

// fileType names the type of a file that is not a regular one.
func fileType(m os.FileMode) string {
	switch {
	case m&os.ModeDir != 0:
		return "directory"
	case m&os.ModeSymlink != 0:
		return "symbolic link"
	case m&os.ModeNamedPipe != 0:
		return "FIFO"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeDevice != 0:
		return "device"
	}
	return "special file"
}
