package badactor

// Paths 4 (adoption) and 6 (special files) of the security issue: an object another user
// plants at /dev/shm/NAME before shmmon publishes NAME.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/worker"
)

// The scenarios of this file, for the security tests to run one by one.
var (
	// ObjectNamingRoot: the attacker creates /dev/shm/NAME with a shmmon record whose
	// watched pid is a root process that leads its own group and runs exactly the worker's
	// configured command, then serve starts. Serve must never signal that process, and must
	// start the configured program.
	ObjectNamingRoot = Scenario{Name: "foreign object naming a root process", Run: objNamingRoot}
	// ObjectSquatter: the attacker creates the object and beats it from a process of its
	// own that leads its group and runs the configured command. Serve must start the
	// configured program anyway, and signal neither the attacker's process nor its own.
	ObjectSquatter = Scenario{Name: "foreign object with the attacker's own beating process", Run: objSquatter}
	// PlantedFIFO: a FIFO at /dev/shm/NAME before `shmmon watch`, `run` and `serve` (root),
	// and before a `watch` of another user, which may not replace it: none may hang (each
	// ends within HangBound of SIGTERM, the other user's watch fails at once), and the
	// root ones publish the object (run's and serve's program beats it).
	PlantedFIFO = Scenario{Name: "planted FIFO", Run: objPlantedFIFO}
)

func init() {
	modes["obj-beat"] = mode{"[ARG...]", 0, -1, objBeatMain}
	modes["obj-plant"] = mode{"NAME PID", 2, 2, objPlantMain}
	modes["obj-squat"] = mode{"NAME", 1, 1, objSquatMain}
	modes["obj-fifo"] = mode{"NAME", 1, 1, objFifoMain}
	modes["obj-monitor"] = mode{"NAME MONITOR-PID", 2, 2, objMonitorMain}
	register(4, ObjectNamingRoot)
	register(4, ObjectSquatter)
	register(6, PlantedFIFO)
}

// The check rules of the workers of these scenarios: an adopted process that does not beat
// is killed within objGrace + 3 × objInterval, plus objKillAfter for its SIGKILL.
const (
	objInterval  = 100 * time.Millisecond
	objGrace     = time.Second
	objKillAfter = time.Second
	// objStartBound is how long the configured program may take to beat its object.
	objStartBound = 5 * time.Second
	// objWatchFor is how long a trial watches the attacker's target after serve started:
	// longer than serve would take to kill an adopted process that does not beat.
	objWatchFor = objGrace + 3*objInterval + time.Second
)

// objName returns the object name of trial i (with what, when not "", to tell apart the
// objects of one trial), removed when the test ends.
func objName(t testing.TB, i int, what string) string {
	name := fmt.Sprintf("%s-%d%s", testkit.Name(t, "ba-obj"), i, what)
	t.Cleanup(func() { shmobj.Remove(name) })
	return name
}

// objConfig writes a serve config with the one supervised worker name running command.
func objConfig(t testing.TB, name string, command []string) string {
	t.Helper()
	q := make([]string, len(command))
	for i, a := range command {
		q[i] = strconv.Quote(a)
	}
	conf := fmt.Sprintf("[[worker]]\nname = %q\ncommand = [%s]\ninterval = %q\nstalls = 3\ngrace = %q\nkill_after = %q\n",
		name, strings.Join(q, ", "), objInterval, objGrace, objKillAfter)
	path := filepath.Join(t.TempDir(), "shmmon.toml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// objShmmon returns the command that runs shmmon as root with args; the programs it starts
// (the test binary) beat their object (mode obj-beat).
func objShmmon(t testing.TB, args ...string) *exec.Cmd {
	cmd := exec.Command(testkit.Shmmon(t), args...)
	cmd.Env = append(os.Environ(), envMode+"=obj-beat")
	return cmd
}

// objBeating reports whether name is published by the monitor pid monitor and beaten by the
// program it started for it (the test binary in mode obj-beat, with SHMMON_NAME=name), and
// not by the process not.
func objBeating(name string, monitor, not int) bool {
	// Only a regular file is read: the scenario must not hang where shmmon may not.
	if fi, err := os.Lstat(shmobj.Path(name)); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	snap, err := shmobj.Read(name)
	if err != nil || !snap.HasRecord || snap.Seq == 0 || snap.Record.MonitorPid != int64(monitor) {
		return false
	}
	pid := int(snap.Record.WatchedPid)
	return pid != 0 && pid != not && snap.Record.State == shmobj.StateOK &&
		proc.HasEnv(pid, worker.EnvName+"="+name) && proc.HasEnv(pid, envMode+"=obj-beat")
}

// serveTrial runs serve on the worker name (command) after an attack on target, a process
// serve does not own; hit reports whether target got a signal. It counts the target
// signalled, serve not starting its program or not ending promptly, and kills of serve's own
// program, and otherwise sees that all went well.
func (a *attack) serveTrial(name string, command []string, target int, hit func() (bool, string)) {
	t := a.t
	serve := testkit.Start(t, "shmmon serve", objShmmon(t, serveArgs(t, "--config", objConfig(t, name, command))...))
	defer serve.Kill()
	start := time.Now()
	started := false
	for time.Since(start) < objStartBound && !(started && time.Since(start) >= objWatchFor) {
		if h, _ := hit(); h {
			break
		}
		started = started || objBeating(name, serve.Pid(), target)
		time.Sleep(20 * time.Millisecond)
	}
	bad := a.o
	if !started {
		a.hang("the configured program never beat")
	}
	if !StopPromptly(t, serve) {
		a.hang("serve did not end after SIGTERM")
	}
	if h, why := hit(); h {
		a.signalled(why)
	}
	for _, l := range testkit.LinesWith(serve.Stderr.Lines(), `msg="killing hung worker"`) {
		if !strings.Contains(l, fmt.Sprintf("pid=%d ", target)) {
			a.falseKill("serve killed its own program")
		}
	}
	if a.o == bad {
		refused := len(testkit.LinesWith(serve.Stderr.Lines(), "event=adopt-refused")) > 0
		a.see(fmt.Sprintf("configured program started, target untouched (adopt-refused logged: %v)", refused))
	}
}

// objNamingRoot is the scenario ObjectNamingRoot.
func objNamingRoot(t testing.TB, trials int) Outcome {
	a := newAttack(t, trials)
	for i := range trials {
		name := objName(t, i, "")
		// The victim runs exactly the configured command (the victim mode comes from the
		// environment) and leads its own group, as a worker serve started would.
		v := startVictim(t, "victim", &syscall.SysProcAttr{Setsid: true}, "victim")
		a.as("", "obj-plant", name, strconv.Itoa(v.Pid()))
		a.serveTrial(name, v.p.Cmd.Args, v.Pid(), v.Hit)
		v.p.Kill()
	}
	return a.outcome("")
}

// objSquatter is the scenario ObjectSquatter.
func objSquatter(t testing.TB, trials int) Outcome {
	a := newAttack(t, trials)
	for i := range trials {
		name := objName(t, i, "")
		cmd := As(t, a.u, "obj-squat", name)
		cmd.SysProcAttr.Setsid = true
		p := testkit.Start(t, "squatter", cmd)
		testkit.WaitLine(t, &p.Stdout, 10*time.Second, "ready")
		hit := func() (bool, string) {
			if !p.Running() {
				return true, "the attacker's process died: " + p.Cmd.ProcessState.String()
			}
			if got := testkit.LinesWith(p.Stdout.Lines(), "signal "); len(got) > 0 {
				return true, "the attacker's process got " + strings.Join(got, ", ")
			}
			return false, ""
		}
		a.serveTrial(name, cmd.Args, p.Pid(), hit)
		p.Kill()
	}
	return a.outcome("")
}

// objPlantedFIFO is the scenario PlantedFIFO.
func objPlantedFIFO(t testing.TB, trials int) Outcome {
	a := newAttack(t, trials)
	other := testkit.NewUser(t)
	exe := testkit.PublicExecutable(t)
	for i := range trials {
		for _, kind := range []string{"watch", "run", "serve", "watch as another user"} {
			name := objName(t, i, "-"+strings.ReplaceAll(kind, " ", "-"))
			a.as("", "obj-fifo", name)
			iv := objInterval.String()
			var cmd *exec.Cmd
			switch kind {
			case "watch":
				cmd = objShmmon(t, "watch", "--name", name, "--interval", iv)
			case "run":
				cmd = objShmmon(t, "run", "--name", name, "--interval", iv, "--grace", objGrace.String(), "--", exe, name)
			case "serve":
				cmd = objShmmon(t, serveArgs(t, "--config", objConfig(t, name, []string{exe, name}))...)
			default:
				cmd = other.Command(testkit.Shmmon(t), "watch", "--name", name, "--interval", iv)
			}
			p := testkit.Start(t, "shmmon "+kind, cmd)
			ready := func() bool {
				switch kind {
				case "watch":
					return len(testkit.LinesWith(p.Stderr.Lines(), "msg=watching")) > 0
				case "run", "serve":
					return objBeating(name, p.Pid(), 0)
				}
				return !p.Running()
			}
			testkit.Poll(objStartBound, ready)
			switch {
			case !ready() && kind == "watch as another user":
				a.hang(kind + ": still running, want a prompt error")
			case !ready():
				a.hang(kind + ": did not publish the object")
			case kind == "watch as another user":
				msg := strings.ReplaceAll(strings.TrimSpace(p.Stderr.String()), name, "NAME")
				a.see(fmt.Sprintf("%s: %v, %q", kind, p.Cmd.ProcessState, msg))
			}
			if p.Running() && !StopPromptly(t, p) {
				a.hang(kind + ": did not end after SIGTERM")
			}
			p.Kill()
		}
	}
	o := a.outcome("")
	if o.Hangs == 0 {
		o.Detail = "watch, run and serve replaced the FIFO and ended promptly; " + o.Detail
	}
	return o
}

// objBeatMain is serve's program: it beats the object SHMMON_NAME names, twice per check
// interval and more, until it is stopped.
func objBeatMain([]string) error {
	for {
		worker.Beat()
		time.Sleep(objInterval / 5)
	}
}

// objForge publishes the object name as the attacker, with a status record that looks like
// a healthy worker's: watched pid pid, checked a moment ago, in state ok.
func objForge(name string, pid int) (*shmobj.Segment, error) {
	seg, err := shmobj.Publish(name, shmobj.PublishOptions{WatchedPid: int64(pid), Mode: 0o600,
		Interval: objInterval, Threshold: 3})
	if err != nil {
		return nil, err
	}
	seg.Beat()
	objFresh(seg)
	return seg, nil
}

// objFresh stores a status record of a healthy worker checked now.
func objFresh(seg *shmobj.Segment) {
	now := time.Now().UnixNano()
	seq, _ := seg.Seq()
	seg.StoreStatus(shmobj.Status{LastSeq: seq, LastProgress: now, LastCheck: now, State: shmobj.StateOK})
}

// objPlantMain, the attacker, publishes args[0] with a record naming the pid args[1], and
// exits.
func objPlantMain(args []string) error {
	pid, err := strconv.Atoi(args[1])
	if err != nil {
		return usageError(err.Error())
	}
	seg, err := objForge(args[0], pid)
	if err != nil {
		return err
	}
	return seg.Close()
}

// objSquatMain, the attacker, publishes args[0] with a record naming itself and beats it,
// printing every signal it gets, until it is killed.
func objSquatMain(args []string) error {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs)
	seg, err := objForge(args[0], os.Getpid())
	if err != nil {
		return err
	}
	fmt.Println("ready")
	tick := time.NewTicker(objInterval / 5)
	for {
		select {
		case s := <-sigs:
			if !harmless(s) {
				fmt.Println("signal", s)
			}
		case <-tick.C:
			seg.Beat()
			objFresh(seg)
		}
	}
}

// objFifoMain, the attacker, makes a FIFO at /dev/shm/args[0].
func objFifoMain(args []string) error { return syscall.Mkfifo(shmobj.Path(args[0]), 0o644) }

// objMonitorMain, the attacker, publishes args[0] with a record whose monitor pid is args[1]
// (a live shmmon that watches another object), by writing the field into the object's file.
func objMonitorMain(args []string) error {
	pid, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil {
		return usageError(err.Error())
	}
	seg, err := objForge(args[0], 0)
	if err != nil {
		return err
	}
	half := int64(seg.Size() / 2)
	seg.Close()
	f, err := os.OpenFile(shmobj.Path(args[0]), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(binary.NativeEndian.AppendUint64(nil, uint64(pid)), half+shmobj.RecMonitorPid)
	return errors.Join(err, f.Close())
}
