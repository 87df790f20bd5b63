package proc

import (
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTree: Tree lists what InTree accepts: the root, a child in the root's group, a child in
// a group of its own (a descendant), and a member of the group whose parent died.
func TestTree(t *testing.T) {
	leader := startHelper(t, "fork-sleep", &syscall.SysProcAttr{Setpgid: true})
	grandchild, err := strconv.Atoi(leader.line(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Kill(-leader.pid(), syscall.SIGKILL) })
	other := startHelper(t, "sleep", nil)
	other.ready(t)

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
