package sched

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
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

// maxThreadsEvidence bounds the threads [Collect] reads in detail: a process of thousands of
// threads is summed up by its first ones (the main thread first).
const maxThreadsEvidence = 64

// Collect reads what process pid is doing at now, for the record of a hang: for each thread
// (at most 64) its state, wait channel, system call, kernel stack (when readable: root), and
// its time on a CPU and run delay since the reading since (an empty Sample: since each thread
// started); and the process's resident memory. Outcomes as [Read].
func Collect(pid int, since Sample, now time.Time) (Evidence, error) {
	e := Evidence{Pid: pid, At: now}
	if !since.At.IsZero() {
		e.Over = now.Sub(since.At)
	}
	s, err := Read(pid, now)
	if err != nil {
		return e, err
	}
	old := make(map[int]Thread, len(since.Threads))
	for _, t := range since.Threads {
		old[t.TID] = t
	}
	pfs, _ := procFS()
	if p, err := pfs.Proc(pid); err == nil {
		if st, err := p.Stat(); err == nil {
			e.RSS = int64(st.ResidentMemory())
		}
	}
	threads := s.Threads
	main := func(t Thread) int { // the main thread sorts first
		if t.TID == pid {
			return 0
		}
		return 1
	}
	slices.SortFunc(threads, func(a, b Thread) int { return cmp.Or(cmp.Compare(main(a), main(b)), cmp.Compare(a.TID, b.TID)) })
	for _, t := range threads[:min(len(threads), maxThreadsEvidence)] {
		te := ThreadEvidence{TID: t.TID, State: t.State, CPU: t.CPU, Delay: t.Delay}
		if o, ok := old[t.TID]; ok {
			te.CPU, te.Delay = max(t.CPU-o.CPU, 0), max(t.Delay-o.Delay, 0)
		}
		dir := fmt.Sprintf("/proc/%d/task/%d/", pid, t.TID)
		if w := readSmall(dir + "wchan"); w != "0" {
			te.Wchan = w
		}
		te.Syscall = readSmall(dir + "syscall")
		for _, line := range strings.Split(readSmall(dir+"stack"), "\n") {
			// "[<0>] futex_wait_queue+0x60/0x90": keep the function.
			if _, f, ok := strings.Cut(line, "] "); ok {
				f, _, _ = strings.Cut(f, "+")
				te.Stack = append(te.Stack, f)
			}
		}
		e.Threads = append(e.Threads, te)
	}
	return e, nil
}

// readSmall reads a small /proc file, bounded to 16 KiB, trimmed; "" when it cannot be read.
func readSmall(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 16<<10))
	return strings.TrimSpace(string(b))
}
