package filetype

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestName names real files of each type, through os.Stat's mode and through stat(2)'s.
func TestName(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{fifo, "a named pipe"},
		{"/dev/null", "a character device"},
		{dir, "a directory"},
		{link, "a symbolic link"},
	} {
		fi, err := os.Lstat(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := Name(fi.Mode()); got != tc.want {
			t.Errorf("Name(Lstat(%s)) = %q, want %q", tc.path, got, tc.want)
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(tc.path, &st); err != nil {
			t.Fatal(err)
		}
		if got := Name(Unix(st.Mode)); got != tc.want {
			t.Errorf("Name(Unix(st_mode of %s)) = %q, want %q", tc.path, got, tc.want)
		}
	}
	if m := Unix(0o100644); m.Type() != 0 {
		t.Errorf("Unix of a regular file's mode = %v, want a regular file", m)
	}
	if got := Name(fs.ModeIrregular); got != "a file of type ?---------" {
		t.Errorf("Name(ModeIrregular) = %q", got)
	}
}
