package compat_test

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
)

// TestRun runs the C++ Boost worker, the Go worker (package-level worker.Beat, told its
// object by SHMMON_NAME) and the C and Python clients (shmmon_beat, shmmon.beat) under
// `shmmon run`: a hung worker (SIGSTOP) is killed and restarted
// and beats again; a crashed one (SIGKILL) is restarted; SIGTERM stops everything.
func TestRun(t *testing.T) {
	kinds := []struct {
		name    string
		command func(t *testing.T, name string) ([]string, []string) // argv, extra env
	}{
		{"boost_worker", func(t *testing.T, name string) ([]string, []string) {
			return []string{needBoost(t).worker, name, strconv.Itoa(int(beatPeriod / time.Millisecond))}, nil
		}},
		{"go_worker", func(t *testing.T, name string) ([]string, []string) {
			exe, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			return []string{exe}, []string{envWorker + "=pkg", envPeriod + "=" + strconv.Itoa(int(beatPeriod/time.Millisecond))}
		}},
		// The clients' one-call forms, told the object by SHMMON_NAME.
		{"c_worker", func(t *testing.T, name string) ([]string, []string) { return cClient.command(t) }},
		{"py_worker", func(t *testing.T, name string) ([]string, []string) { return pyClient.command(t) }},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			name := objectName(t)
			argv, env := k.command(t, name)
			args := append([]string{"run", "--name", name, "--interval", interval.String(),
				"--stalls", strconv.Itoa(stalls), "--kill-after", killAfter.String(), "--"}, argv...)
			run := start(t, "shmmon run", env, testkit.Shmmon(t), args...)
			var seen []int64
			killOnCleanup(t, &seen) // should run die first, its workers must not outlive the test
			beating := func(not int64) int64 {
				pid := waitBeating(t, name, not)
				seen = append(seen, pid)
				return pid
			}

			first := beating(0)
			syscall.Kill(int(first), syscall.SIGSTOP) // hung
			second := beating(first)
			if proc.Alive(int(first)) {
				t.Errorf("hung worker %d still alive after its restart", first)
			}
			syscall.Kill(int(second), syscall.SIGKILL) // crashed
			third := beating(second)

			snap, _ := shmobj.Read(name)
			if snap.Record.Kills != 1 || snap.Record.Restarts != 2 {
				t.Errorf("kills %d restarts %d, want 1 and 2", snap.Record.Kills, snap.Record.Restarts)
			}
			log := run.Stderr.String()
			if n := strings.Count(log, `msg="killing hung worker"`); n != 1 {
				t.Errorf("%d hang kills logged, want 1", n)
			}
			if !strings.Contains(log, `status="signal killed"`) {
				t.Error("the crash is not logged")
			}

			run.Signal(t, syscall.SIGTERM)
			if st := run.Wait(t, killAfter+5*time.Second); st.ExitCode() != 0 {
				t.Errorf("shmmon run ended with %v after SIGTERM, want exit 0", st)
			}
			if proc.Alive(int(third)) {
				t.Errorf("worker %d still alive after shmmon run stopped", third)
			}
			if _, err := os.Stat(shmobj.Path(name)); err == nil {
				t.Error("object left after shmmon run stopped")
			}
		})
	}
}
