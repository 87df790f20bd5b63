package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/shmobj"
)

// TestRunDumpSignal: examples/goworker deadlocked by SIGUSR1 under `run --dump-signal QUIT`:
// at the verdict the event=evidence line names its threads' states, SIGQUIT goes first and
// the worker prints its goroutines (the deadlock in sync.(*Mutex).Lock) and exits by itself,
// which ends the run as the hang's kill (no SIGTERM needed), and the worker is restarted.
func TestRunDumpSignal(t *testing.T) {
	goworker := filepath.Join(t.TempDir(), "goworker")
	if out, err := exec.Command("go", "build", "-o", goworker, "../../examples/goworker").CombinedOutput(); err != nil {
		t.Fatalf("building goworker: %v\n%s", err, out)
	}
	name := testkit.Name(t, "shmmon-cli-dump")
	t.Cleanup(func() { shmobj.Remove(name) })
	run := testkit.Start(t, "shmmon run", exec.Command(testkit.Shmmon(t), "run", "--name", name, "--interval", "100ms",
		"--stalls", "3", "--kill-after", "5s", "--dump-signal", "QUIT", "--dump-wait", "2s", "--", goworker, "-period", "20ms"))
	pid := testkit.WaitBeating(t, 15*time.Second, name, 0)
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	next := testkit.WaitBeating(t, 15*time.Second, name, pid)
	run.Terminate(t, 15*time.Second)
	logs := run.Stderr.String()
	evidence := testkit.LinesWith(run.Stderr.Lines(), "event=evidence")
	if len(evidence) != 1 || !strings.Contains(evidence[0], " S ") || !strings.Contains(evidence[0], "threads=") {
		t.Errorf("want one event=evidence line naming the threads' states; have %q", evidence)
	}
	for _, want := range []string{"event=dump", "signal=SIGQUIT", "sync.(*Mutex).Lock", `msg="killing hung worker"`} {
		if !strings.Contains(logs+run.Stdout.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if ev, dump := strings.Index(logs, "event=evidence"), strings.Index(logs, "event=dump"); ev > dump {
		t.Errorf("the evidence came after the dump signal")
	}
	if len(testkit.LinesWith(run.Stderr.Lines(), "reason=kill", "signal=SIGTERM")) > 0 {
		t.Errorf("SIGTERM was sent: the worker should have ended after SIGQUIT")
	}
	if next == pid {
		t.Errorf("the worker was not restarted")
	}
}
