package badactor

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proctab"
	"github.com/shmmon/shmmon/shmobj"
)

func init() {
	modes["plant-names"] = mode{"PREFIX", 1, 1, plantNamesMain}
	modes["proctab-names"] = mode{"KEY", 1, 1, proctabNamesMain}
}

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
func plantNamesMain(args []string) error {
	for _, n := range EvilNames {
		if err := os.WriteFile(shmobj.Path(args[0]+n), ForgedObject(shmobj.DefaultSize, int64(os.Getpid()), 0), 0o644); err != nil {
			return err
		}
	}
	fmt.Println("planted")
	return nil
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

// Planted is what [PlantNames] made: objects named Prefix + each of EvilNames, and a process
// table (0666, as the original's clients make it) holding one record per EvilNames, each
// registered by the attacker (its own pid) under that name.
type Planted struct {
	Prefix string
	Table  proctab.Options
}

// PlantNames has u plant objects and process-table records with the names of EvilNames; all
// are removed when the test ends.
func PlantNames(t testing.TB, u *testkit.User) Planted {
	t.Helper()
	p := Planted{Prefix: testkit.Name(t, "ba-names")}
	t.Cleanup(func() {
		names, _ := filepath.Glob(filepath.Join(shmobj.Dir, p.Prefix+"*"))
		for _, n := range names {
			os.Remove(n)
		}
	})
	a := &attack{t: t, u: u}
	a.as("planted", "plant-names", p.Prefix)
	var remove func()
	p.Table, remove = proctabTable(t)
	t.Cleanup(remove)
	cmd := As(t, u, "proctab-names", strconv.Itoa(p.Table.Key))
	proc := testkit.Start(t, "proctab-names", cmd)
	testkit.WaitLine(t, &proc.Stdout, 10*time.Second, "registered")
	return p
}

// proctabNamesMain writes one record per EvilNames (this process's pid, a timeout of an hour,
// a heartbeat now) into the first slots of the table of key args[0], as a raw writer of a
// 0666 table may, then prints "registered" and waits to be killed (the records name a live
// process, so listings show them as alive).
func proctabNamesMain(args []string) error {
	mem, err := attachTable(args[0])
	if err != nil {
		return err
	}
	for i, n := range EvilNames {
		putRecord(mem, i, n, int32(os.Getpid()), 3600, time.Now().Unix())
	}
	fmt.Println("registered")
	select {}
}
