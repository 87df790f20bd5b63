//go:build linux

package proc

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMapsFile follows a file through a helper's mapping: mapped, mapped after a rename and
// after its removal (matched by device and inode, not by path); another file, another device,
// and a process that maps nothing are not; an exited process is an error.
func TestMapsFile(t *testing.T) {
	dir := t.TempDir()
	stat := func(path string) unix.Stat_t {
		t.Helper()
		if err := os.WriteFile(path, make([]byte, 4096), 0o600); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	path := filepath.Join(dir, "mapped")
	st, ost := stat(path), stat(filepath.Join(dir, "other"))
	mapper := startHelper(t, "mmap-file "+path, nil)
	mapper.ready(t)
	other := startHelper(t, "sleep", nil)
	other.ready(t)
	pm, po := open(t, mapper.pid()), open(t, other.pid())
	check := func(when string, p *Process, dev, ino uint64, want bool) {
		t.Helper()
		if got, err := p.MapsFile(dev, ino); got != want || err != nil {
			t.Errorf("%s: MapsFile = %v, %v, want %v", when, got, err, want)
		}
	}
	check("mapped", pm, st.Dev, st.Ino, true)
	check("another file of the directory", pm, ost.Dev, ost.Ino, false)
	check("the inode on another device", pm, st.Dev+1, st.Ino, false)
	check("a process that maps nothing", po, st.Dev, st.Ino, false)
	if err := os.Rename(path, path+"-renamed"); err != nil {
		t.Fatal(err)
	}
	check("renamed", pm, st.Dev, st.Ino, true)
	if err := os.Remove(path + "-renamed"); err != nil {
		t.Fatal(err)
	}
	check("removed", pm, st.Dev, st.Ino, true)
	mapper.cmd.Process.Kill()
	mapper.wait(t)
	if _, err := pm.MapsFile(st.Dev, st.Ino); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("MapsFile of an exited process: %v, want os.ErrProcessDone", err)
	}
}
