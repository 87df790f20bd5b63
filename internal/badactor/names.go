package badactor

import (
	"encoding/binary"
	"fmt"
	"os"

	"github.com/shmmon/shmmon/shmobj"
)

func init() { modes["plant-names"] = plantNamesMain }

// EvilNames are the object names the attacker plants after a prefix of the test's: an escape
// sequence that would clear the screen and colour the terminal, a newline that would forge a
// row of `shmmon ls`, and a tab that would shift its columns.
var EvilNames = []string{
	"-esc\x1b[2J\x1b[31mred",
	"-nl\nforged-row  shm  ok  1  1  -  -  0  1  -",
	"-tab\tok",
}

// plantNamesMain creates, in /dev/shm, one object for each of EvilNames after args[0], each
// with a shmmon status record (so that a plain `shmmon ls` lists it) naming this process as
// its monitor.
func plantNamesMain(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "badactor plant-names: want the name prefix")
		return 2
	}
	for _, n := range EvilNames {
		if err := os.WriteFile(shmobj.Path(args[0]+n), ForgedObject(shmobj.DefaultSize, int64(os.Getpid()), 0), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "badactor plant-names:", err)
			return 1
		}
	}
	fmt.Println("planted")
	return 0
}

// ForgedObject returns the bytes of an object of size whose monitor half holds a shmmon
// status record, as another user can write it: monitor pid monitor, watched pid watched, state
// ok, a sequence of 1 in the worker half. It is written byte by byte from shmobj's layout, not
// through shmobj's own writers (which refuse what an attacker would do).
func ForgedObject(size int, monitor, watched int64) []byte {
	b := make([]byte, size)
	le := binary.NativeEndian
	le.PutUint64(b[shmobj.OffSequence:], 1)
	r := b[size/2:]
	copy(r[shmobj.RecMagic:], shmobj.Magic)
	le.PutUint32(r[shmobj.RecVersion:], shmobj.RecordVersion)
	le.PutUint32(r[shmobj.RecLength:], shmobj.RecordLen)
	le.PutUint64(r[shmobj.RecMonitorPid:], uint64(monitor))
	le.PutUint64(r[shmobj.RecWatchedPid:], uint64(watched))
	le.PutUint32(r[shmobj.RecState:], uint32(shmobj.StateOK))
	le.PutUint32(r[shmobj.RecThreshold:], 3)
	le.PutUint64(r[shmobj.RecInterval:], uint64(1e9))
	return b
}
