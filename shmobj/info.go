package shmobj

import (
	"fmt"
	"os"

	"github.com/shmmon/shmmon/internal/filetype"
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
	return fmt.Errorf("%w: %s is %s", ErrNotRegular, Path(name), filetype.Name(fi.Mode))
}
