package badactor

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proctab"
	"github.com/shmmon/shmmon/shmobj"
)

func init() {
	modes["plant-names"] = plantNamesMain
	modes["proctab-names"] = proctabNamesMain
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
	if out, err := As(t, u, "plant-names", p.Prefix).CombinedOutput(); err != nil || !strings.Contains(string(out), "planted") {
		t.Fatalf("the attacker could not plant its objects: %v\n%s", err, out)
	}
	var remove func()
	p.Table, remove = proctabTable(t)
	t.Cleanup(remove)
	cmd := As(t, u, "proctab-names", strconv.Itoa(p.Table.Key), strconv.Itoa(p.Table.Slots))
	proc := testkit.Start(t, "proctab-names", cmd)
	testkit.WaitLine(t, &proc.Stdout, 10*time.Second, "registered")
	return p
}

// proctabNamesMain writes one record per EvilNames (this process's pid, a timeout of an hour,
// a heartbeat now) into free slots of the table of key args[0], as a raw writer of a 0666
// table may, then prints "registered" and waits to be killed (the records name a live
// process, so listings show them as alive).
func proctabNamesMain(args []string) int {
	key, _ := strconv.Atoi(args[0])
	id, err := unix.SysvShmGet(key, 0, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "badactor proctab-names: shmget:", err)
		return 1
	}
	mem, err := unix.SysvShmAttach(id, 0, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "badactor proctab-names: shmat:", err)
		return 1
	}
	for i, n := range EvilNames {
		r := mem[i*proctab.RecordSize : (i+1)*proctab.RecordSize]
		clear(r)
		copy(r[proctab.OffName:proctab.OffName+proctab.MaxNameLen], n)
		binary.NativeEndian.PutUint32(r[proctab.OffTimeout:], 3600)
		binary.NativeEndian.PutUint64(r[proctab.OffAtime:], uint64(time.Now().Unix()))
		binary.NativeEndian.PutUint32(r[proctab.OffPid:], uint32(os.Getpid()))
	}
	fmt.Println("registered")
	select {}
}
