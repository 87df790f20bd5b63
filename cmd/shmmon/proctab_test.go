package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/shmmon/shmmon/proctab"
)

// sysvMode returns the permissions of the System V segment of key, from /proc/sysvipc/shm.
func sysvMode(t *testing.T, key int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/sysvipc/shm")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 3 && f[0] == fmt.Sprint(int32(key)) {
			return f[2]
		}
	}
	t.Fatalf("no segment with key %#x in /proc/sysvipc/shm", key)
	return ""
}

// TestCheckprocCreate: without --create, checkproc creates no table (a mistyped --key is an
// error); with it, the table has mode 0660, or --mode.
func TestCheckprocCreate(t *testing.T) {
	key := 0x79000000 | os.Getpid()&0xffffff
	k := fmt.Sprintf("%#x", key)
	t.Cleanup(func() {
		if tab, err := proctab.Attach(proctab.Options{Key: key, Slots: 4}); err == nil {
			tab.Remove()
			tab.Close()
		}
	})
	code, _, stderr := runCLI("checkproc", "--key", k, "--slots", "4")
	if code != exitError || !strings.Contains(stderr, "no process table with key "+k+" (give --create") {
		t.Errorf("checkproc of a missing table: exit %d, %q; want 1 and no table", code, stderr)
	}
	if _, err := proctab.Attach(proctab.Options{Key: key, Slots: 4}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("checkproc without --create made a table: %v", err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{{nil, "660"}, {[]string{"--mode", "0640"}, "640"}} {
		args := append([]string{"checkproc", "--key", k, "--slots", "4", "--create"}, tc.args...)
		if code, _, stderr := runCLI(args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		if mode := sysvMode(t, key); mode != tc.want {
			t.Errorf("%v: a table of mode %s, want %s", args, mode, tc.want)
		}
		tab, err := proctab.Attach(proctab.Options{Key: key, Slots: 4})
		if err != nil {
			t.Fatal(err)
		}
		tab.Remove()
		tab.Close()
	}
}
