package compat_test

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
)

// TestMonitorAndWorkerPausedTogether stops a watch and its worker for several intervals, as a
// machine that sleeps does, and continues them: nothing is judged until the worker has had a
// full interval to beat again, so even with --stalls 1 the healthy worker is not killed.
func TestMonitorAndWorkerPausedTogether(t *testing.T) {
	const iv = 300 * time.Millisecond
	name := objectName(t)
	w := startGoWorker(t, name, "open")
	watch := start(t, "shmmon watch", nil, testkit.Shmmon(t), "watch", "--name", name, "--pid", strconv.Itoa(w.Pid()),
		"--interval", iv.String(), "--stalls", "1", "--kill-after", killAfter.String())
	testkit.WaitLine(t, &watch.Stderr, startTimeout, "state=ok")

	for round := range 4 {
		watch.Signal(t, syscall.SIGSTOP)
		w.Signal(t, syscall.SIGSTOP)
		time.Sleep(6 * iv)
		// The monitor resumes first, the worker half an interval later: the ticker keeps its
		// phase, so a check may come before the worker is back; it must not be judged.
		watch.Signal(t, syscall.SIGCONT)
		time.Sleep(iv / 2)
		w.Signal(t, syscall.SIGCONT)
		time.Sleep(4 * iv)
		if !watch.Running() || !w.Running() || strings.Contains(watch.Stderr.String(), "abnormal") {
			t.Fatalf("round %d: a healthy worker paused with its monitor was judged hung:\n%s", round+1, watch.Stderr.String())
		}
	}
	// The guard does not hide a real hang afterwards.
	w.Signal(t, syscall.SIGSTOP)
	if st := watch.Wait(t, killMargin); st.ExitCode() != 3 {
		t.Errorf("watch ended with %v after the worker hung, want exit 3", st)
	}
}
