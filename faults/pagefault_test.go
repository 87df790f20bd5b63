//go:build faults

package faults

import "testing"

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
