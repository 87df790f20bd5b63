//go:build faults

package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/shmobj"
)

// writeConfig writes a serve config of ws with the [defaults] table defaults.
func writeConfig(t testing.TB, path string, defaults string, ws []testkit.Worker) {
	t.Helper()
	testkit.WriteConfig(t, path, "[defaults]\n"+defaults+"\n", ws, "")
}

// smallDefaults are the [defaults] of the small serve cases.
var smallDefaults = fmt.Sprintf("interval = %q\nstalls = %d\nkill_after = %q\nbackoff = \"10ms\"\nbackoff_max = \"50ms\"",
	interval, stalls, killAfter)

// startServe starts `shmmon serve` on the config path, in the worker environment plus env,
// with a control socket of the case's own (cases run in parallel, each with its serve).
func (c *tcase) startServe(path string, env ...string) *testkit.Process {
	c.t.Helper()
	if c.control == "" {
		c.control = filepath.Join(c.t.TempDir(), "control.sock")
	}
	return c.start("shmmon serve", workerEnv(env...), testkit.Shmmon(c.t), "serve", "--config", path, "--control", c.control)
}

// TestObjectFaults damages the object of a beating worker under `shmmon serve`: the monitor
// survives, reports the fault, re-publishes the object, and the worker (running as the user
// nobody, so permissions matter) follows it without being killed.
func TestObjectFaults(t *testing.T) {
	t.Parallel()
	faults := []struct {
		name   string
		event  string
		inject func(t *testing.T, path string)
	}{
		{"deleted", "event=object-removed", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated to 0", "event=object-truncated", func(t *testing.T, path string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"replaced by a 100-byte regular file", "event=object-replaced", func(t *testing.T, path string) {
			tmp := filepath.Join(shmobj.Dir, fmt.Sprintf(".faults-%d-replace", os.Getpid()))
			if err := os.WriteFile(tmp, make([]byte, 100), 0o666); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, path); err != nil {
				os.Remove(tmp)
				t.Fatal(err)
			}
		}},
		{"mode changed to 0", "event=object-mode-changed", func(t *testing.T, path string) {
			if err := os.Chmod(path, 0); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			const trials = 20
			c := newCase(t, "object "+f.name+" under serve", "reported, re-published, the worker follows; none killed")
			name := c.object(0)
			path := filepath.Join(t.TempDir(), "shmmon.toml")
			writeConfig(t, path, smallDefaults, []testkit.Worker{{Name: name, Command: []string{testkit.PublicExecutable(t)},
				Extra: "user = \"nobody\"\nmode = \"0666\"\n"}})
			serve := c.startServe(path)
			pid := testkit.WaitBeating(t, startTimeout, name, 0)
			for i := range trials {
				f.inject(t, shmobj.Path(name))
				testkit.WaitFor(t, startTimeout, "the fault to be reported", func() bool {
					return len(testkit.LinesWith(serve.Stderr.Lines(), f.event)) > i
				})
				// The worker follows the new object: its pid in the worker half, beating.
				testkit.WaitFor(t, startTimeout, "the worker to beat into the re-published object", func() bool {
					snap, err := shmobj.Read(name)
					return err == nil && snap.WorkerPid == int64(pid) && snap.Seq > 0 && snap.Record.State == shmobj.StateOK
				})
				c.row.Trials++
			}
			if f.event == "event=object-mode-changed" {
				// What the mode protects: a worker started next, as nobody, must be able to
				// open the object. Crash the worker; its successor must beat.
				syscall.Kill(pid, syscall.SIGKILL)
				pid = testkit.WaitBeating(t, startTimeout, name, pid)
			}
			time.Sleep(5 * interval)
			if !serve.Running() {
				t.Fatal("serve ended")
			}
			if !strings.Contains(f.event, "mode") {
				if now := testkit.WaitBeating(t, startTimeout, name, 0); now != pid {
					t.Errorf("worker pid %d, want %d: the worker was restarted", now, pid)
				}
			}
			c.row.FalseKills = len(kills(&serve.Stderr))
			c.row.observe("%d of %d reported (%s) and re-published; worker followed; serve up; %d kills",
				len(testkit.LinesWith(serve.Stderr.Lines(), f.event)), trials, f.event, c.row.FalseKills)
			if c.row.FalseKills != 0 {
				t.Errorf("the worker was killed")
			}
		})
	}
}
