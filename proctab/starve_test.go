package proctab

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
)

// TestSweepStarved: a timed-out record whose process waits for a CPU (it spins under
// SCHED_IDLE next to busy loops on every core) is left alone while its heartbeat is late by
// no more than StarvedMax, and killed past it; with the rule off it is killed at once.
func TestSweepStarved(t *testing.T) {
	for _, c := range []struct {
		name       string
		starvedMax time.Duration
		want       SweepResult
		event      string
	}{
		{"within the bound", time.Minute, SweepResult{Checked: 1, Starved: 1}, "event=starved "},
		{"past the bound", 500 * time.Millisecond, SweepResult{Checked: 1, Cleared: 0, Killed: 1}, "event=starved-max"},
		{"rule off", -1, SweepResult{Checked: 1, Killed: 1}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			tab := testTable(t, 4)
			cmd := startChild(t, exec.Command(os.Args[0]), fmt.Sprintf("attach-spin %d %d", tab.opts.Key, tab.opts.Slots))
			pid := cmd.Process.Pid
			testkit.SchedIdle(t, pid, true)
			stopLoad := testkit.Load(t, 2)
			time.Sleep(1100 * time.Millisecond) // the start falls clearly before the heartbeat
			if _, err := tab.put(pid, "idle", time.Second, time.Now().Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1100 * time.Millisecond) // timed out
			logs := &testkit.Buffer{}
			var res SweepResult
			var err error
			done := make(chan struct{})
			go func() {
				defer close(done)
				res, err = tab.Sweep(context.Background(), SweepOptions{KillAfter: 200 * time.Millisecond, StarvedMax: c.starvedMax,
					Logger: slog.New(slog.NewTextHandler(logs, nil))})
			}()
			// Once the sweep has judged (its first signal, or its end), the load stops: a
			// SCHED_IDLE process needs a CPU even to exit, and busy loops on every core may keep
			// it from one for longer than the sweep waits after SIGKILL.
			testkit.Poll(30*time.Second, func() bool {
				select {
				case <-done:
					return true
				default:
					return strings.Contains(logs.String(), "event=signal")
				}
			})
			stopLoad()
			<-done
			if err != nil {
				t.Fatal(err)
			}
			if res != c.want {
				t.Errorf("Sweep = %+v, want %+v\n%s", res, c.want, logs)
			}
			if c.event != "" && !strings.Contains(logs.String(), c.event) {
				t.Errorf("log lacks %q:\n%s", c.event, logs)
			}
			if c.event == "" && strings.Contains(logs.String(), "event=starved") {
				t.Errorf("the rule applied while off:\n%s", logs)
			}
			if alive := proc.Alive(pid); alive != (c.want.Killed == 0) {
				t.Errorf("process alive %v after the sweep", alive)
			}
		})
	}
}
