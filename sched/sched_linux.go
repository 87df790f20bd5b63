package sched

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/procfs"
)

// procFS is /proc, made once (procfs.NewFS checks the mount point each time).
var procFS = sync.OnceValues(procfs.NewDefaultFS)

// Read reads the threads of process pid at now: for each its state (/proc/PID/task/TID/stat)
// and its time on a CPU and run delay (/proc/PID/task/TID/schedstat). A thread that ends
// during the read is left out. Outcomes:
//
//   - The sample, nil.
//   - No such process (or none of its threads could be read): an error matching
//     fs.ErrNotExist.
//   - /proc cannot be read or parsed: the wrapped error.
func Read(pid int, now time.Time) (Sample, error) {
	s := Sample{Pid: pid, At: now}
	pfs, err := procFS()
	if err != nil {
		return s, fmt.Errorf("sched: pid %d: %w", pid, err)
	}
	tasks, err := pfs.AllThreads(pid)
	if err != nil {
		return s, fmt.Errorf("sched: threads of pid %d: %w", pid, err)
	}
	s.Threads = make([]Thread, 0, len(tasks))
	for _, t := range tasks {
		st, err := t.Stat()
		if err != nil {
			continue // it ended meanwhile
		}
		ss, err := t.Schedstat()
		if err != nil {
			continue
		}
		s.Threads = append(s.Threads, Thread{TID: t.PID, State: st.State[0],
			CPU: time.Duration(ss.RunningNanoseconds), Delay: time.Duration(ss.WaitingNanoseconds), Runs: ss.RunTimeslices})
	}
	if len(s.Threads) == 0 {
		return s, fmt.Errorf("sched: threads of pid %d: %w", pid, fs.ErrNotExist)
	}
	return s, nil
}

// Pressure reads the host's CPU pressure and that of the cgroup of process pid (see
// [CPUPressure]); a figure that cannot be read is left unknown.
func Pressure(pid int) CPUPressure {
	var p CPUPressure
	if pfs, err := procFS(); err == nil {
		if st, err := pfs.PSIStatsForResource("cpu"); err == nil && st.Some != nil {
			p.Host, p.HostKnown = st.Some.Avg10, true
		}
	}
	if path, err := cgroupOf(pid); err == nil {
		p.Cgroup, p.CgroupKnown = cgroupPressure(path)
	}
	return p
}

// cgroupOf returns the unified (v2) cgroup of process pid, from /proc/PID/cgroup.
func cgroupOf(pid int) (string, error) {
	pfs, err := procFS()
	if err != nil {
		return "", err
	}
	p, err := pfs.Proc(pid)
	if err != nil {
		return "", err
	}
	groups, err := p.Cgroups()
	if err != nil {
		return "", err
	}
	for _, g := range groups {
		if g.HierarchyID == 0 {
			return g.Path, nil
		}
	}
	return "", errors.New("sched: no unified cgroup")
}

// cgroupPressure reads "some avg10" of the cgroup path's cpu.pressure.
func cgroupPressure(path string) (float64, bool) {
	if strings.Contains(path, "..") {
		return 0, false
	}
	f, err := os.Open("/sys/fs/cgroup" + path + "/cpu.pressure")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	line, err := bufio.NewReader(io.LimitReader(f, 512)).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "some ") {
		return 0, false
	}
	for _, kv := range strings.Fields(line)[1:] {
		if v, ok := strings.CutPrefix(kv, "avg10="); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}
