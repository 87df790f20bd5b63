package monitor

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/shmmon/shmmon/internal/field"
	"github.com/shmmon/shmmon/proc"
)

// Limits are the resource limits a monitor holds a worker to, judged on the heartbeat's own
// rhythm (see the package doc). The zero value has none.
type Limits struct {
	// MemoryMax is the most resident memory, in bytes, the worker's processes may hold (see
	// proc.Usage); 0 is no limit.
	MemoryMax int64
	// CPUMax is the most CPU the worker's processes may use, averaged over the last stalls
	// intervals; 0 is no limit.
	CPUMax CPU
}

// Any reports whether l limits anything.
func (l Limits) Any() bool { return l.MemoryMax > 0 || l.CPUMax > 0 }

// ValidateResolved reports every field of l that is out of range, as [*field.Error] values
// joined with errors.Join: MemoryMax not negative, CPUMax 0 or 0.1% to [MaxCPU].
func (l Limits) ValidateResolved() error {
	var errs []error
	if l.MemoryMax < 0 {
		errs = append(errs, &field.Error{Pkg: "monitor", Field: "memory_max", Value: l.MemoryMax,
			Problem: "must not be negative", Want: "0 (no limit) or a size"})
	}
	if l.CPUMax < 0 || l.CPUMax > MaxCPU {
		errs = append(errs, &field.Error{Pkg: "monitor", Field: "cpu_max", Value: l.CPUMax.String(),
			Problem: "is out of range", Want: `"0%" (no limit) or "0.1%" to "` + MaxCPU.String() + `"`})
	}
	return errors.Join(errs...)
}

// CPU is a share of one core's time, in thousandths: 1000 is one core busy all the time,
// 1500 one and a half ("150%"), 0 none.
type CPU int64

// MaxCPU is the largest CPU limit: 100,000 cores.
const MaxCPU CPU = 100_000_000

// ParseCPU parses a share of one core as a percentage with at most one decimal: "150%",
// "12.5%", "0%" (no limit). Anything else is a [*field.Error] naming the text and what is
// accepted.
func ParseCPU(s string) (CPU, error) {
	num, pct := strings.CutSuffix(strings.TrimSpace(s), "%")
	whole, frac, dot := strings.Cut(num, ".")
	n, err := strconv.ParseUint(whole, 10, 32)
	tenth := uint64(0)
	if dot {
		var ferr error
		tenth, ferr = strconv.ParseUint(frac, 10, 8)
		if len(frac) != 1 || ferr != nil {
			err = errors.New("one decimal at most")
		}
	}
	if !pct || err != nil || whole == "" || n*10+tenth > uint64(MaxCPU) {
		return 0, &field.Error{Pkg: "monitor", Field: "cpu_max", Value: s, Problem: "is not a share of a core",
			Want: `a percentage of one core, e.g. "150%" or "12.5%"`}
	}
	return CPU(n*10 + tenth), nil
}

// UnmarshalText parses the share as [ParseCPU] does (for configuration files).
func (c *CPU) UnmarshalText(text []byte) error {
	v, err := ParseCPU(string(text))
	if err == nil {
		*c = v
	}
	return err
}

// String writes the share as ParseCPU reads it: "150%", "12.5%".
func (c CPU) String() string {
	if c%10 == 0 {
		return strconv.FormatInt(int64(c/10), 10) + "%"
	}
	return fmt.Sprintf("%d.%d%%", c/10, c%10)
}

// Ratio returns the share as a fraction of one core: 1.5 for "150%".
func (c CPU) Ratio() float64 { return float64(c) / 1000 }

// A Meter measures a worker's processes now: proc.TreeUsage of its root, or its cgroup's
// usage (package cgroup). An error (the process just ended) skips the limit check.
type Meter func() (proc.Usage, error)

// Resource names the resource a worker went over the limit of: "memory" or "cpu".
type Resource string

// The resources a monitor limits.
const (
	ResourceMemory Resource = "memory"
	ResourceCPU    Resource = "cpu"
)

// Breach is a limit a worker went over, as [Worker.CheckLimits] judged it.
type Breach struct {
	Resource Resource
	// Value and Limit are in bytes for memory, in cores (1.5 = 150%) for CPU.
	Value, Limit float64
}

// String says it in words: "memory 612.0MiB over 512.0MiB", "cpu 193.2% over 150%".
func (b Breach) String() string {
	if b.Resource == ResourceMemory {
		return fmt.Sprintf("memory %s over %s", Size(int64(b.Value)), Size(int64(b.Limit)))
	}
	return fmt.Sprintf("cpu %.1f%% over %s", b.Value*100, CPU(math.Round(b.Limit*1000)))
}

// Size writes a number of bytes for people: "612.0MiB", "4.0KiB", "812B".
func Size(n int64) string {
	const units = "KMGTPE"
	if n < 1024 && n > -1024 {
		return strconv.FormatInt(n, 10) + "B"
	}
	v, i := float64(n)/1024, 0
	for ; (v >= 1024 || v <= -1024) && i < len(units)-1; i++ {
		v /= 1024
	}
	return fmt.Sprintf("%.1f%ciB", v, units[i])
}

// limiter judges one worker's usage against its limits, one measure per check interval. It
// is its Worker's, on the owner's goroutine.
type limiter struct {
	lim    Limits
	window int // the stall threshold: memory over it this many checks in a row, CPU averaged over this many intervals
	over   int // consecutive measures over MemoryMax
	// cpu is a ring of the last window+1 measures of CPU time (n of them, the oldest at
	// old): the average over the window is the difference of its ends.
	cpu    []cpuSample
	n, old int
}

type cpuSample struct {
	at  time.Time
	cpu time.Duration
}

func newLimiter(lim Limits, window int) *limiter { return &limiter{lim: lim, window: window} }

// reset starts the judgement over, for a new run.
func (l *limiter) reset() { l.over, l.n, l.old = 0, 0, 0 }

// judge takes the measure u at now and returns the CPU used over the measures it holds (in
// cores; ok false before it holds two) and the limit breached, if one is: memory over
// MemoryMax at window measures in a row, or CPU over CPUMax averaged over the last window
// intervals. A CPU time that went back (a process of the tree ended without being reaped by
// it: its time left the tree) counts as none.
func (l *limiter) judge(u proc.Usage, now time.Time) (cpu float64, ok bool, b *Breach) {
	if l.cpu == nil {
		l.cpu = make([]cpuSample, l.window+1)
	}
	size := len(l.cpu)
	if l.n < size {
		l.cpu[(l.old+l.n)%size] = cpuSample{now, u.CPU}
		l.n++
	} else {
		l.cpu[l.old] = cpuSample{now, u.CPU} // the newest in place of the oldest
		l.old = (l.old + 1) % size
	}
	first, last := l.cpu[l.old], l.cpu[(l.old+l.n-1)%size]
	if span := last.at.Sub(first.at); l.n > 1 && span > 0 {
		cpu, ok = max(float64(last.cpu-first.cpu), 0)/float64(span), true
	}
	if l.lim.MemoryMax > 0 && u.Memory > l.lim.MemoryMax {
		l.over++
		if l.over >= l.window {
			return cpu, ok, &Breach{ResourceMemory, float64(u.Memory), float64(l.lim.MemoryMax)}
		}
	} else {
		l.over = 0
	}
	if l.lim.CPUMax > 0 && ok && l.n == size && cpu > l.lim.CPUMax.Ratio() {
		return cpu, ok, &Breach{ResourceCPU, cpu, l.lim.CPUMax.Ratio()}
	}
	return cpu, ok, nil
}
