//go:build !linux

package sched

import (
	"errors"
	"fmt"
	"time"
)

// Read needs Linux: elsewhere it returns an error matching errors.ErrUnsupported.
func Read(pid int, now time.Time) (Sample, error) {
	return Sample{Pid: pid, At: now}, fmt.Errorf("sched: %w", errors.ErrUnsupported)
}

// Pressure needs Linux: elsewhere every figure is unknown.
func Pressure(pid int) CPUPressure { return CPUPressure{} }

// Collect needs Linux: elsewhere it returns an error matching errors.ErrUnsupported.
func Collect(pid int, since Sample, now time.Time) (Evidence, error) {
	return Evidence{Pid: pid, At: now}, fmt.Errorf("sched: %w", errors.ErrUnsupported)
}
