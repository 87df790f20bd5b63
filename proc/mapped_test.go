//go:build linux

package proc

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMapsFile follows a file through its mapping: mapped, mapped after a rename and after
// its removal (matched by inode, not by path), and no longer mapped once unmapped.
func TestMapsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mapped")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(4096); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	other, err := os.Create(filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var ost unix.Stat_t
	if err := unix.Fstat(int(other.Fd()), &ost); err != nil {
		t.Fatal(err)
	}

	check := func(when string, dev, ino uint64, want bool) {
		t.Helper()
		if got, err := MapsFile(os.Getpid(), dev, ino); got != want || err != nil {
			t.Errorf("%s: MapsFile = %v, %v, want %v", when, got, err, want)
		}
	}
	check("before mmap", st.Dev, st.Ino, false)
	mem, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	check("mapped", st.Dev, st.Ino, true)
	check("another file of the directory", ost.Dev, ost.Ino, false)
	check("the inode on another device", st.Dev+1, st.Ino, false)
	if err := os.Rename(path, path+"-renamed"); err != nil {
		t.Fatal(err)
	}
	check("renamed", st.Dev, st.Ino, true)
	if err := os.Remove(path + "-renamed"); err != nil {
		t.Fatal(err)
	}
	check("removed", st.Dev, st.Ino, true)
	if err := unix.Munmap(mem); err != nil {
		t.Fatal(err)
	}
	check("unmapped", st.Dev, st.Ino, false)

	if _, err := MapsFile(1<<22+1, st.Dev, st.Ino); !errors.Is(err, ErrNotExist) {
		t.Errorf("MapsFile of no process = %v, want ErrNotExist", err)
	}
}

func TestProcessIDs(t *testing.T) {
	ids, err := ProcessIDs(os.Getpid())
	want := IDs{Uid: uint32(os.Getuid()), Euid: uint32(os.Geteuid()), Gid: uint32(os.Getgid()), Egid: uint32(os.Getegid())}
	if err != nil || ids != want {
		t.Errorf("ProcessIDs(self) = %+v, %v, want %+v", ids, err, want)
	}
	if _, err := ProcessIDs(1<<22 + 1); !errors.Is(err, ErrNotExist) {
		t.Errorf("ProcessIDs of no process = %v, want ErrNotExist", err)
	}
}
