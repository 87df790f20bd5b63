package cgroup

import (
	"fmt"

	"github.com/shmmon/shmmon/internal/field"
)

// MaxPids is the largest pids_max: Linux's PID_MAX_LIMIT.
const MaxPids = 1 << 22

// ValidatePidsMax reports whether n is a pids_max shmmon accepts: 0 (no limit) or 1 to
// [MaxPids] processes. The error is a [*field.Error].
func ValidatePidsMax(n int) error {
	if n < 0 || n > MaxPids {
		return &field.Error{Pkg: "cgroup", Field: "pids_max", Value: n, Problem: "is out of range",
			Want: fmt.Sprintf("0 (no limit) or 1 to %d", MaxPids)}
	}
	return nil
}
