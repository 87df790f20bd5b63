package proc

import (
	"errors"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
)

// TestTreeUsage: the tree's processes are counted, with their memory and CPU; a busy
// grandchild's CPU shows in the root's tree; a root that is gone is an error.
func TestTreeUsage(t *testing.T) {
	c, line := startChild(t, helperCmd("fork-sleep"))
	gp := holdGrandchild(t, line())
	// The grandchild may still be starting (in its exec, its memory still growing): measure
	// it and the tree together until its start is done, the tree's memory above its own.
	var u, one Usage
	var err error
	testkit.Poll(5*time.Second, func() bool {
		u, err = TreeUsage(c.Pid())
		one = PidsUsage([]int{gp.Pid(), 0})
		return err != nil || one.Memory > 0 && u.Memory > one.Memory
	})
	if err != nil || u.Procs != 2 || u.Memory < 1<<20 {
		t.Errorf("TreeUsage(fork-sleep) = %+v, %v; want 2 processes, at least 1 MiB", u, err)
	}
	if one.Procs != 1 || one.Memory <= 0 || one.Memory >= u.Memory {
		t.Errorf("PidsUsage(grandchild) = %+v; want 1 process, less memory than the tree's %d", one, u.Memory)
	}

	// A shell that runs a busy loop in a child of its own: the loop's CPU is the tree's.
	busy := exec.Command("sh", "-c", "sh -c 'while :; do :; done' & wait")
	b, _ := startChild(t, busy)
	before, err := TreeUsage(b.Pid())
	if err != nil {
		t.Fatal(err)
	}
	// The loop's CPU shows in the tree's; how fast depends on the machine's load: up to 10 s.
	var after Usage
	testkit.Poll(10*time.Second, func() bool {
		after, err = TreeUsage(b.Pid())
		return err != nil || after.CPU-before.CPU >= 200*time.Millisecond
	})
	if err != nil {
		t.Fatal(err)
	}
	if used := after.CPU - before.CPU; after.Procs != 2 || used < 200*time.Millisecond {
		t.Errorf("the busy tree used %v of CPU in 10s (%d processes); want at least 200ms, 2", used, after.Procs)
	}

	b.SignalGroup(syscall.SIGKILL)
	waitChild(t, b)
	if u, err := TreeUsage(b.Pid()); !errors.Is(err, ErrNotExist) {
		t.Errorf("TreeUsage of a reaped pid = %+v, %v; want ErrNotExist", u, err)
	}
	for _, pid := range []int{0, 1, -1} {
		if _, err := TreeUsage(pid); !errors.Is(err, ErrNotExist) {
			t.Errorf("TreeUsage(%d) = %v; want ErrNotExist", pid, err)
		}
	}
}
