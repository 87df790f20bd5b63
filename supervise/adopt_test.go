package supervise

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/worker"
)

// TestAdoptChecksIdentity: a trusted object (this user's, mode 0600) whose record names a
// process is adopted with that process only when the process is the worker a previous
// monitor started for it. Anything else is refused and logged, a new object is published,
// the program is started, and the process named is never signalled — except the previous
// worker of an older command, which is stopped.
func TestAdoptChecksIdentity(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running a process with another group needs root")
	}
	tests := []struct {
		name    string
		env     bool // SHMMON_NAME=the object
		command []string
		setsid  bool
		gid     uint32        // of the process; the supervisor's is 0
		checked time.Duration // when the record was last updated, from the process's start
		want    string        // "adopt", "adopt-refused" or "stop-previous"
	}{
		{"the previous worker", true, nil, true, 0, time.Second, "adopt"},
		{"not started for this object", false, nil, true, 0, time.Second, "adopt-refused"},
		{"another group", true, nil, true, 65534, time.Second, "adopt-refused"},
		{"not leading its group", true, nil, false, 0, time.Second, "adopt-refused"},
		{"started after the last update", true, nil, true, 0, -time.Minute, "adopt-refused"},
		{"another command, not ours", false, []string{os.Args[0], "-test.run=^$"}, true, 0, time.Second, "adopt-refused"},
		{"another command of ours", true, []string{os.Args[0], "-test.run=^$"}, true, 0, time.Second, "stop-previous"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := objectName(t)
			t.Cleanup(func() { shmobj.Remove(name) })
			seg, err := shmobj.Publish(name, shmobj.PublishOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer seg.Close()

			command := tt.command
			if command == nil {
				command = []string{os.Args[0]}
			}
			cmd := exec.Command(command[0], command[1:]...)
			cmd.Env = append(os.Environ(), modeEnv+"=beat", "GORACE=atexit_sleep_ms=0")
			if tt.env {
				cmd.Env = append(cmd.Env, worker.EnvName+"="+name)
			}
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: tt.setsid, Credential: &syscall.Credential{Gid: tt.gid}}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() { cmd.Wait(); close(exited) }()
			t.Cleanup(func() { cmd.Process.Kill(); <-exited })
			pid := cmd.Process.Pid
			started, err := proc.StartTime(pid)
			if err != nil {
				t.Fatal(err)
			}
			// The process is the test binary: it beats when it has the object's name.
			seg.SetWatchedPid(int64(pid))
			seg.StoreStatus(shmobj.Status{LastCheck: started.Add(tt.checked).UnixNano(), State: shmobj.StateOK})

			r := supervise(t, "beat", Options{Adopt: true})
			testkit.WaitFor(t, 10*time.Second, "event="+tt.want, func() bool { return events(r, tt.want) > 0 })
			switch tt.want {
			case "adopt":
				if watched := r.beatingPid(t, 0); watched != int64(pid) {
					t.Errorf("watching pid %d, want the adopted %d", watched, pid)
				}
				if r.logs.Count("msg=started") != 0 {
					t.Error("a program was started besides the adopted one")
				}
			case "adopt-refused":
				r.beatingPid(t, int64(pid))
				if _, fi, err := shmobj.Inspect(name); err != nil || fi.ID == seg.ID() {
					t.Errorf("the object was kept (%v), want a new one published", err)
				}
				r.stop()
				r.wait(t, 10*time.Second)
				select {
				case <-exited:
					t.Errorf("pid %d, which the supervisor did not start, ended: %v", pid, cmd.ProcessState)
				default:
				}
			case "stop-previous":
				r.beatingPid(t, int64(pid))
				select {
				case <-exited:
				case <-time.After(10 * time.Second):
					t.Errorf("the previous worker %d was not stopped", pid)
				}
			}
			if n := events(r, tt.want); n != 1 {
				t.Errorf("%d lines with event=%s, want 1", n, tt.want)
			}
		})
	}
}

// events counts the log lines of the supervisor with event=event.
func events(r *running, event string) int {
	n := 0
	for _, l := range r.logs.Lines() {
		if slices.Contains(strings.Fields(l), "event="+event) {
			n++
		}
	}
	return n
}
