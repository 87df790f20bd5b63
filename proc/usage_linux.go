package proc

import (
	"fmt"
	"time"

	"github.com/prometheus/procfs"
)

// TreeUsage measures the tree of root now: root and its descendants (from
// /proc/PID/task/TID/children, as [Tree] finds them, but without its scan of every process for
// the members of root's group: TreeUsage runs once per check interval for every worker with a
// resource limit, and a scan of /proc costs as much as the host has processes), each read from
// /proc/PID/stat through procfs. At most 4096 processes are counted. A descendant that ends
// during the walk is left out; one whose parent died was reparented away (to init or a
// subreaper) and is no longer counted: only a cgroup holds on to every process of a worker
// (package cgroup). Outcomes:
//
//   - The usage, nil.
//   - root is gone, or ≤ 1: the zero Usage and an error matching [ErrNotExist].
func TreeUsage(root int) (Usage, error) {
	if root <= 1 {
		return Usage{}, fmt.Errorf("%w: pid %d", ErrNotExist, root)
	}
	var u Usage
	pids := []int{root}
	for i := 0; i < len(pids) && u.Procs < maxTree; i++ {
		pid := pids[i]
		stat, err := readProc(pid, "usage of", procfs.Proc.Stat)
		if err != nil {
			if pid == root {
				return Usage{}, err
			}
			continue
		}
		u.add(stat)
		pids = append(pids, children(pid)...)
	}
	return u, nil
}

// PidsUsage measures the processes pids (the members of a cgroup, say) as [TreeUsage]
// measures a tree, without their descendants; the ones that are gone are left out.
func PidsUsage(pids []int) Usage {
	var u Usage
	for _, pid := range pids[:min(len(pids), maxTree)] {
		if stat, err := readProc(pid, "usage of", procfs.Proc.Stat); err == nil {
			u.add(stat)
		}
	}
	return u
}

// add counts one process: its resident memory, and its CPU time with that of the children it
// reaped, so the time of a child that ended is not lost (it moved to its parent).
func (u *Usage) add(s procfs.ProcStat) {
	u.Memory += int64(s.ResidentMemory())
	ticks := int64(s.UTime) + int64(s.STime) + int64(s.CUTime) + int64(s.CSTime)
	u.CPU += time.Duration(ticks) * (time.Second / userHZ)
	u.Procs++
}
