package proc

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// maxTree bounds the processes [Tree] lists.
const maxTree = 4096

// Tree lists the processes of root's tree as [InTree] defines it, root first: root, its
// descendants (from /proc/PID/task/TID/children, which name the children each thread
// started) and the members of root's process group (one getpgid system call per pid in
// /proc, no file read: a member whose parent died is no longer a descendant). It lists at most
// 4096 pids. A process that starts or ends meanwhile may or may not be listed. It returns nil
// for a root ≤ 1, as InTree holds for no such root.
func Tree(root int) []int {
	if root <= 1 {
		return nil
	}
	out := []int{root}
	seen := map[int]bool{root: true}
	add := func(pid int) {
		if pid > 1 && !seen[pid] && len(out) < maxTree {
			seen[pid] = true
			out = append(out, pid)
		}
	}
	for i := 0; i < len(out); i++ { // out grows as the walk finds children
		for _, pid := range children(out[i]) {
			add(pid)
		}
	}
	if pfs, err := procFS(); err == nil {
		procs, _ := pfs.AllProcs()
		for _, p := range procs {
			if pgid, err := unix.Getpgid(p.PID); err == nil && pgid == root {
				add(p.PID)
			}
		}
	}
	return out
}

// children returns the children of every thread of the process pid; none when it is gone.
// procfs has no reader of /proc/PID/task/TID/children.
func children(pid int) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task/"
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	tids, _ := d.Readdirnames(-1)
	d.Close()
	var out []int
	for _, tid := range tids {
		b, err := os.ReadFile(dir + tid + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}
