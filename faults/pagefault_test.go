//go:build faults

package faults

import (
	"testing"
	"time"
)

// TestInPageFault: the evidence of a kill (as serve logged it in a run of the fleet case)
// shows the main thread held in a page fault; a stopped one, or a fault of another thread,
// does not.
func TestInPageFault(t *testing.T) {
	const faulted = `time=2026-12-02T05:12:06.019Z level=ERROR msg=evidence worker=shmmon-faults-19441-TestFleet-copies-842 pid=25960 event=evidence seq=288 stalled_for=3s rss=11358208 over=2s threads="25960 D folio_wait_bit_common syscall=-1 cpu=0s delay=0s stack=folio_wait_bit_common<filemap_fault<__do_fault<do_fault<__handle_mm_fault<handle_mm_fault<exc_page_fault<asm_exc_page_fault; 25977 S hrtimer_nanosleep syscall=35 cpu=2.068ms delay=9.643ms stack=hrtimer_nanosleep<__x64_sys_nanosleep<do_syscall_64<entry_SYSCALL_64_after_hwframe; 26001 S futex_do_wait syscall=202 cpu=0s delay=0s stack=futex_do_wait<__futex_wait<futex_wait<do_futex<__x64_sys_futex<do_syscall_64<entry_SYSCALL_64_after_hwframe; 26004 S futex_do_wait syscall=202 cpu=0s delay=0s stack=futex_do_wait<__futex_wait<futex_wait<do_futex<__x64_sys_futex<do_syscall_64<entry_SYSCALL_64_after_hwframe"`
	const stopped = `time=2026-12-02T04:22:09.778Z level=ERROR msg=evidence worker=w pid=30157 event=evidence seq=638 stalled_for=3s rss=11370496 over=2s threads="30157 T do_signal_stop syscall=281 cpu=0s delay=0s stack=do_signal_stop<get_signal<arch_do_signal_or_restart<exit_to_user_mode_loop<do_syscall_64<entry_SYSCALL_64_after_hwframe; 30262 D folio_wait_bit_common syscall=-1 cpu=0s delay=0s stack=folio_wait_bit_common<filemap_fault<__do_fault<do_fault<__handle_mm_fault<handle_mm_fault<exc_page_fault<asm_exc_page_fault"`
	const read = `msg=evidence worker=w pid=41 threads="41 D folio_wait_bit_common syscall=0 0x3 cpu=0s delay=0s stack=folio_wait_bit_common<filemap_read<vfs_read<ksys_read<do_syscall_64"`
	for _, tt := range []struct {
		line string
		pid  int
		want bool
	}{
		{faulted, 25960, true},
		{faulted, 25977, false}, // a thread of it, asleep in nanosleep
		{stopped, 30157, false},
		{read, 41, false},
		{"no evidence", 1, false},
	} {
		if got := inPageFault(tt.line, tt.pid); got != tt.want {
			t.Errorf("inPageFault(pid %d) = %v, want %v: %.120s", tt.pid, got, tt.want, tt.line)
		}
	}
}

// TestSigkillSent: the time of serve's SIGKILL step for one worker's pid, from a real line.
func TestSigkillSent(t *testing.T) {
	lines := []string{
		`time=2026-12-02T05:12:06.021Z level=WARN msg="kill step" worker=w-842 event=signal reason=kill seq=288 stalled_for=3.004s pid=25960 signal=SIGTERM group=true`,
		`time=2026-12-02T05:12:07.021Z level=WARN msg="kill step" worker=w-84 event=kill reason=kill seq=288 stalled_for=3.004s pid=25960 group=true waited=1.00051653s`,
		`time=2026-12-02T05:12:07.521Z level=WARN msg="kill step" worker=w-842 event=kill reason=kill seq=288 stalled_for=3.004s pid=25960 group=true waited=1.00051653s`,
	}
	at, ok := sigkillSent(lines, "w-842", 25960)
	if want := time.Date(2026, 12, 2, 5, 12, 7, 521e6, time.UTC); !ok || !at.Equal(want) {
		t.Errorf("sigkillSent = %v, %v; want %v", at, ok, want)
	}
	if _, ok := sigkillSent(lines, "w-842", 1); ok {
		t.Error("sigkillSent found a SIGKILL for another pid")
	}
}
