//go:build faults

package faults

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/shmmon/shmmon/internal/badactor"
)

// row is one line of the outcome table.
type row struct {
	Case        string
	Section     string // which table: "" the faults, sectionBadActor the attacks of another user
	Trials      int
	Expected    string
	Observed    string
	FalseKills  int // healthy workers killed
	MissedHangs int // hung workers not killed in time
	Signalled   int // bad actor: processes shmmon did not own that got a signal
	Hangs       int // bad actor: shmmon did not end promptly on SIGTERM
	// Bound is the case's promised bound and Worst its worst observation against it (0: the
	// case has no time bound). A case may pass beyond Bound, within the slack allowed for a
	// loaded machine; its result says so.
	Bound, Worst time.Duration
	Took         time.Duration
	Pass         bool
}

// sectionBadActor is the section of the bad-actor cases (TestBadActors).
const sectionBadActor = "bad actor"

// table collects the rows of the cases that ran, in the order they ended.
type table struct {
	mu   sync.Mutex
	rows []row
}

var results table

// suiteStart is when the suite started: the report gives its wall-clock time (cases run
// partly in parallel, so their own times add up to more).
var suiteStart = time.Now()

func (tb *table) add(r row) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.rows = append(tb.rows, r)
}

// observe sets the observed column.
func (r *row) observe(format string, args ...any) { r.Observed = fmt.Sprintf(format, args...) }

func rows() []row {
	results.mu.Lock()
	defer results.mu.Unlock()
	return append([]row(nil), results.rows...)
}

// printTable writes the outcome table as aligned text.
func printTable(w io.Writer) {
	rs := rows()
	if len(rs) == 0 {
		return
	}
	fmt.Fprintln(w, "\nFAULT-INJECTION OUTCOMES")
	fmt.Fprintf(w, "%-4s  %-60s %6s  %-11s %-12s  %s\n", "", "case", "trials", "false kills", "missed hangs", "observed")
	var fk, mh, failed int
	for _, r := range rs {
		res := "ok"
		switch {
		case !r.Pass:
			res = "FAIL"
			failed++
		case r.overBound():
			res = "SLACK"
		}
		fk += r.FalseKills
		mh += r.MissedHangs
		obs := r.Observed
		if r.Section == sectionBadActor {
			obs = fmt.Sprintf("signalled %d, hangs %d: %s", r.Signalled, r.Hangs, obs)
		}
		fmt.Fprintf(w, "%-4s  %-60s %6d  %-11d %-12d  %s\n", res, r.Case, r.Trials, r.FalseKills, r.MissedHangs, obs)
	}
	fmt.Fprintf(w, "total: %d cases, %d failed, %d over their bound within slack, %d false kills, %d missed hangs\n",
		len(rs), failed, overBound(rs), fk, mh)
}

// writeReport writes RELIABILITY.md: where and when the suite ran, and the table.
func writeReport(path string) error {
	rs := rows()
	var b strings.Builder
	kernel, _ := exec.Command("uname", "-sr").Output()
	var fk, mh, failed int
	took := time.Since(suiteStart)
	for _, r := range rs {
		fk += r.FalseKills
		mh += r.MissedHangs
		if !r.Pass {
			failed++
		}
	}
	fmt.Fprintf(&b, `# Reliability

A watchdog is trusted when it is shown never to kill a healthy worker and never to miss a hung
one. This file is the outcome table of the fault-injection suite (package `+"`faults`"+`), written
by one run of `+"`make faults`"+`; every case runs real processes: the shmmon command as the
monitor and the suite's test binary as the worker. Regenerate it with `+"`make faults`"+`.

Run: %s, on %d cores (%s, %s), %s; %d cases in %v, %d failed, %d over their bound within
the slack for a loaded machine (their result says by how much).

**Total: %d false kills, %d missed hangs.**

| case | trials | expected | observed | false kills | missed hangs | took | result |
|---|---:|---|---|---:|---:|---:|---|
`, time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), cpuModel(), strings.TrimSpace(string(kernel)),
		runtime.Version(), len(rs), took.Round(time.Second), failed, overBound(rs), fk, mh)
	var bad []row
	for _, r := range rs {
		if r.Section == sectionBadActor {
			bad = append(bad, r)
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %d | %d | %v | %s |\n", r.Case, r.Trials, r.Expected, r.Observed,
			r.FalseKills, r.MissedHangs, r.Took.Round(time.Second), result(r))
	}
	if len(bad) > 0 {
		var sig, hangs, fk int
		for _, r := range bad {
			sig, hangs, fk = sig+r.Signalled, hangs+r.Hangs, fk+r.FalseKills
		}
		fmt.Fprintf(&b, `
## Bad actors

Each case is an attack of another local user (a throwaway account made for the case) on a
root shmmon, through something that user can write: a process-table record, an object in
/dev/shm, a pidfile, a loopback connection, a file name (package `+"`internal/badactor`"+`, whose
scenarios `+"`go test ./security`"+` also runs once each). What must never happen: a process that
shmmon did not start and was not told to watch gets a signal from it; shmmon does not end
promptly (%v) on SIGTERM; a healthy worker of its own is killed.

**Processes signalled that shmmon did not own: %d. Hangs past SIGTERM: %d. Healthy workers killed: %d.**

| case | trials | observed | processes signalled that shmmon did not own | hangs past SIGTERM | healthy workers killed | took | result |
|---|---:|---|---:|---:|---:|---:|---|
`, badactor.HangBound, sig, hangs, fk)
		for _, r := range bad {
			fmt.Fprintf(&b, "| %s | %d | %s | %d | %d | %d | %v | %s |\n", r.Case, r.Trials, r.Observed, r.Signalled, r.Hangs,
				r.FalseKills, r.Took.Round(time.Second), result(r))
		}
	}
	b.WriteString(`
Parameters of the small cases: check interval 100 ms, 3 stalls, kill-after 300 ms, workers
beating every 20 ms; the promise checked is "gone within (stalls+1) × interval + kill-after"
(700 ms), and a case fails only beyond that plus 2 s of slack for a loaded machine; a case
whose worst observation is beyond its promise but within the slack passes, and its result says
by how much it was over. The observed column gives the measured worst case. Every case runs
at least 20 trials, except the 1,000-worker one (10 hangs per run).

The fleet case: 1,000 workers (the test binary, GOMAXPROCS=1, beating at 10 Hz) under one
` + "`shmmon serve`" + ` (interval 1 s, 3 stalls, kill-after 1 s), two busy-looping processes keeping both
cores busy, and 10 workers SIGSTOPped at random times over 90 s; its bound is 5 s from the
SIGSTOP (threshold + 1 intervals + kill-after) to the SIGKILL sent (the time of serve's own
log line for it: the test process maps the binary the workers map, and the kernel may hold it
too, see below), failing beyond that plus 4 s of slack. It runs twice: every worker
from one executable, then the workers split across 4 copies of it (250 processes mapping each).
The end of the process is reported apart: see the kernel note below.

What the suite found and fixed: a chmod of the object under the monitor went unnoticed, so
the next worker started as another user could not open it and was killed as hung. The
monitor now checks the mode with the stat it already makes, and re-publishes the object
(` + "`event=object-mode-changed`" + `). Regression tests: ` + "`TestVerifyMode`" + ` (package monitor) and the
case "object mode changed to 0".

What the suite found in the kernel, not fixed: with 1,000 processes mapping one executable,
a SIGKILLed worker can spend tens of seconds in uninterruptible sleep inside its own exit
(` + "`exit_mmap → free_pgtables → unlink_file_vma_batch_process`" + `, waiting for the mapping lock of
the shared file), so it is reaped, and restarted, late (its leader may show as a zombie
meanwhile: a process ends, and its pidfd reports it, only when its last thread has exited). It runs none of its own code after
the SIGKILL, so it cannot beat nor do harm; shmmon waits for it (its pidfd) before starting
the next one, so two instances never overlap. The fleet case waits up to 2 minutes for these
ends and reports the worst in its observed column. The split run tells the two apart: its
processes share no executable with 999 others, so ends as slow there are not the one file's
mapping lock but the kernel's exit of a process on a machine this loaded; either way the wait
comes after the SIGKILL, which is what shmmon is judged on.

A second stall of the same kernel, in healthy workers: under the two CPU hogs, a worker of the
1,000 can wait in uninterruptible sleep in a page fault of its executable (` + "`D folio_wait_bit_common`" + `
under ` + "`filemap_fault`" + `, outside any system call) for longer than the threshold, and once killed
takes 30 s more to end. shmmon counts such a stall, as it counts any process blocked in D
state (it cannot tell a kernel that holds a page from a lost disk), and kills the worker; its
evidence line names the frame. Seen first in 3 of 5 runs of the split case, 5 to 13 workers a
run, while the writeback of the freshly written executable copies stood still for 30 s: the
case now writes its executables back to disk (fsync) before the fleet maps them, which made
it rare (0 in 4 runs, then 1 worker in a CI run). The fleet rows count these kills apart
("held by the kernel in a page fault"): a kill whose evidence shows the worker's main thread
in a page fault is not a false kill of shmmon's rule; any other kill of a worker the case did
not hang is. An operator who replaces a binary in place under a large fleet should expect
the first kind.

The wall clock is not changed by the suite: CLOCK_REALTIME cannot be namespaced (a time
namespace only offsets the monotonic and boot clocks), and changing the machine's clock would
disturb everything else on it. That only the monotonic clock decides is shown by the unit
test ` + "`TestWallClockJumpsDoNotJudge`" + ` in package monitor.
`)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// overBound reports whether r passed with its worst observation beyond its promised bound.
func (r row) overBound() bool { return r.Pass && r.Bound > 0 && r.Worst > r.Bound }

// overBound counts the rows of rs that passed beyond their bound.
func overBound(rs []row) int {
	n := 0
	for _, r := range rs {
		if r.overBound() {
			n++
		}
	}
	return n
}

// result is the result column of r: "pass" only within the promise.
func result(r row) string {
	switch {
	case !r.Pass:
		return "**FAIL**"
	case r.overBound():
		return fmt.Sprintf("pass: over the bound by %v, within slack", (r.Worst - r.Bound).Round(time.Millisecond))
	}
	return "pass"
}

// cpuModel returns the CPU's model name from /proc/cpuinfo.
func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
