package compat_test

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMonitorAndWorkerPausedTogether stops a watch and its worker for several intervals, as a
// machine that sleeps does, and continues them: nothing is judged until the worker has had a
// full interval to beat again, so even with --stalls 1 the healthy worker is not killed.
func TestMonitorAndWorkerPausedTogether(t *testing.T) {
	const iv = 300 * time.Millisecond
	name := objectName(t)
	w := startGoWorker(t, name, "open")
	watch := start(t, "shmmon watch", nil, needShmmon(t), "watch", "--name", name, "--pid", strconv.Itoa(w.pid()),
		"--interval", iv.String(), "--stalls", "1", "--kill-after", killAfter.String())
	waitLine(t, &watch.stderr, startTimeout, "state=ok")

	for round := range 4 {
		watch.signal(t, syscall.SIGSTOP)
		w.signal(t, syscall.SIGSTOP)
		time.Sleep(6 * iv)
		// The monitor resumes first, the worker half an interval later: the ticker keeps its
		// phase, so a check may come before the worker is back; it must not be judged.
		watch.signal(t, syscall.SIGCONT)
		time.Sleep(iv / 2)
		w.signal(t, syscall.SIGCONT)
		time.Sleep(4 * iv)
		if !watch.running() || !w.running() || strings.Contains(watch.stderr.String(), "abnormal") {
			t.Fatalf("round %d: a healthy worker paused with its monitor was judged hung:\n%s", round+1, watch.stderr.String())
		}
	}
	// The guard does not hide a real hang afterwards.
	w.signal(t, syscall.SIGSTOP)
	if st := watch.wait(t, killMargin); st.ExitCode() != 3 {
		t.Errorf("watch ended with %v after the worker hung, want exit 3", st)
	}
}
