package proc

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// startTree starts the process tree of the tests: a helper leading a group of its own, its
// child (the grandchild) in its group, and another helper outside it. The group is killed when
// the test ends.
func startTree(t *testing.T) (leader *child, grandchild int, other *child) {
	t.Helper()
	leader = startHelper(t, "fork-sleep", &syscall.SysProcAttr{Setpgid: true})
	grandchild, err := strconv.Atoi(leader.line(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Kill(-leader.pid(), syscall.SIGKILL) })
	other = startHelper(t, "sleep", nil)
	other.ready(t)
	return leader, grandchild, other
}

func TestPpidAndInTree(t *testing.T) {
	leader, grandchild, other := startTree(t)

	if ppid, err := Ppid(leader.pid()); ppid != os.Getpid() || err != nil {
		t.Errorf("Ppid(child) = %d, %v, want %d", ppid, err, os.Getpid())
	}
	if ppid, err := Ppid(grandchild); ppid != leader.pid() || err != nil {
		t.Errorf("Ppid(grandchild) = %d, %v, want %d", ppid, err, leader.pid())
	}
	if _, err := Ppid(gonePid(t)); !errors.Is(err, ErrNotExist) {
		t.Errorf("Ppid(gone) = %v, want ErrNotExist", err)
	}
	for _, tt := range []struct {
		what string
		pid  int
		want bool
	}{
		{"the root", leader.pid(), true},
		{"its child", grandchild, true},
		{"its parent", os.Getpid(), false},
		{"init", 1, false},
		{"another process", other.pid(), false},
		{"a gone process", gonePid(t), false},
	} {
		if got := InTree(tt.pid, leader.pid()); got != tt.want {
			t.Errorf("InTree(%s %d, root %d) = %v, want %v", tt.what, tt.pid, leader.pid(), got, tt.want)
		}
	}
	// The root dies: its child is reparented (to this test, a subreaper) but stays in the
	// group, so it is still in the tree.
	unix.Kill(leader.pid(), syscall.SIGKILL)
	leader.wait(t)
	if ppid, _ := Ppid(grandchild); ppid == leader.pid() {
		t.Fatalf("grandchild %d not reparented", grandchild)
	}
	if !InTree(grandchild, leader.pid()) {
		t.Errorf("a reparented member of the root's group is not in its tree")
	}
}

// TestTree: Tree lists what InTree accepts: the root, a child in the root's group, a child in
// a group of its own (a descendant), and a member of the group whose parent died.
func TestTree(t *testing.T) {
	leader, grandchild, other := startTree(t)

	tree := Tree(leader.pid())
	if len(tree) == 0 || tree[0] != leader.pid() || !slices.Contains(tree, grandchild) {
		t.Errorf("Tree(%d) = %v, want the root first and its child %d", leader.pid(), tree, grandchild)
	}
	if slices.Contains(tree, other.pid()) || slices.Contains(tree, os.Getpid()) {
		t.Errorf("Tree(%d) = %v lists another process or the parent", leader.pid(), tree)
	}
	// This test is the parent of both helpers, the leader in a group of its own.
	if self := Tree(os.Getpid()); !slices.Contains(self, leader.pid()) || !slices.Contains(self, grandchild) ||
		!slices.Contains(self, other.pid()) {
		t.Errorf("Tree(this test %d) = %v, want its descendants %d, %d and %d", os.Getpid(), self, leader.pid(), grandchild, other.pid())
	}
	for _, pid := range Tree(os.Getpid()) {
		if !InTree(pid, os.Getpid()) {
			t.Errorf("Tree(this test) lists %d, which InTree refuses", pid)
		}
	}

	// The leader dies: its child, reparented to this test (a subreaper), stays in the group.
	unix.Kill(leader.pid(), syscall.SIGKILL)
	leader.wait(t)
	if !slices.Contains(Tree(leader.pid()), grandchild) {
		t.Errorf("Tree(gone leader %d) = %v, want the member of its group %d", leader.pid(), Tree(leader.pid()), grandchild)
	}
	for _, root := range []int{-1, 0, 1} {
		if got := Tree(root); got != nil {
			t.Errorf("Tree(%d) = %v, want nil", root, got)
		}
	}
}
