package proc

import "time"

// Usage is what a set of processes (a worker's tree, or its cgroup) uses at one moment: the
// measure a resource limit judges.
type Usage struct {
	// Memory is resident memory in bytes: the sum of each process's RSS (a page two processes
	// share counts twice, as monit's totalmem counts it), or a cgroup's memory.current.
	Memory int64
	// CPU is the CPU time (user and system) used so far. Its origin is arbitrary: only the
	// difference between two measures of the same processes means something.
	CPU time.Duration
	// Procs is how many processes were counted; 0 for a cgroup's own counters.
	Procs int
}
