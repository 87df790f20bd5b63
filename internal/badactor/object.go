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
	modes["obj-beat"] = objBeatMain
	modes["obj-plant"] = objPlantMain
	modes["obj-squat"] = objSquatMain
	modes["obj-fifo"] = objFifoMain
	modes["obj-monitor"] = objMonitorMain
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

// objServeTrial runs serve on the worker name (command) after an attack on target, a
// process serve does not own; hit reports whether target got a signal. It counts in o the
// target signalled, serve not starting its program or not ending promptly, and kills of
// serve's own program, and returns what it saw.
func objServeTrial(t testing.TB, o *Outcome, name string, command []string, target int, hit func() (bool, string)) string {
	serve := testkit.Start(t, "shmmon serve", objShmmon(t, "serve", "--config", objConfig(t, name, command)))
	defer serve.Cmd.Process.Kill()
	start := time.Now()
	started := false
	for time.Since(start) < objStartBound && !(started && time.Since(start) >= objWatchFor) {
		if h, _ := hit(); h {
			break
		}
		started = started || objBeating(name, serve.Pid(), target)
		time.Sleep(20 * time.Millisecond)
	}
	var saw []string
	if !started {
		o.Hangs++
		saw = append(saw, "the configured program never beat")
	}
	if !StopPromptly(t, serve) {
		o.Hangs++
		saw = append(saw, "serve did not end after SIGTERM")
	}
	if h, why := hit(); h {
		o.Signalled++
		saw = append(saw, why)
	}
	for _, l := range testkit.LinesWith(serve.Stderr.Lines(), `msg="killing hung worker"`) {
		if !strings.Contains(l, fmt.Sprintf("pid=%d ", target)) {
			o.FalseKills++
			saw = append(saw, "serve killed its own program")
		}
	}
	if len(saw) == 0 {
		refused := len(testkit.LinesWith(serve.Stderr.Lines(), "event=adopt-refused")) > 0
		return fmt.Sprintf("configured program started, target untouched (adopt-refused logged: %v)", refused)
	}
	return strings.Join(saw, "; ")
}

// objNamingRoot is the scenario ObjectNamingRoot.
func objNamingRoot(t testing.TB, trials int) Outcome {
	u := testkit.NewUser(t)
	o := Outcome{Trials: trials}
	var details []string
	for i := range trials {
		name := objName(t, i, "")
		// The victim runs exactly the configured command (the victim mode comes from the
		// environment) and leads its own group, as a worker serve started would.
		file := filepath.Join(t.TempDir(), "signals")
		cmd := Self(t, "victim", file)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		p := testkit.Start(t, "victim", cmd)
		testkit.WaitLine(t, &p.Stdout, 10*time.Second, "ready")
		v := &Victim{p: p, file: file}
		if out, err := As(t, u, "obj-plant", name, strconv.Itoa(v.Pid())).CombinedOutput(); err != nil {
			t.Fatalf("planting %s as %s: %v\n%s", name, u, err, out)
		}
		details = append(details, objServeTrial(t, &o, name, cmd.Args, v.Pid(), v.Hit))
		p.Cmd.Process.Kill()
		<-p.Done()
	}
	o.Detail = objSummary(details)
	return o
}

// objSquatter is the scenario ObjectSquatter.
func objSquatter(t testing.TB, trials int) Outcome {
	u := testkit.NewUser(t)
	o := Outcome{Trials: trials}
	var details []string
	for i := range trials {
		name := objName(t, i, "")
		cmd := As(t, u, "obj-squat", name)
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
		details = append(details, objServeTrial(t, &o, name, cmd.Args, p.Pid(), hit))
		p.Cmd.Process.Kill()
		<-p.Done()
	}
	o.Detail = objSummary(details)
	return o
}

// objPlantedFIFO is the scenario PlantedFIFO.
func objPlantedFIFO(t testing.TB, trials int) Outcome {
	u := testkit.NewUser(t)
	other := testkit.NewUser(t)
	exe := testkit.PublicExecutable(t)
	o := Outcome{Trials: trials}
	var details []string
	for i := range trials {
		for _, kind := range []string{"watch", "run", "serve", "watch as another user"} {
			name := objName(t, i, "-"+strings.ReplaceAll(kind, " ", "-"))
			if out, err := As(t, u, "obj-fifo", name).CombinedOutput(); err != nil {
				t.Fatalf("mkfifo %s as %s: %v\n%s", name, u, err, out)
			}
			iv := objInterval.String()
			var cmd *exec.Cmd
			switch kind {
			case "watch":
				cmd = objShmmon(t, "watch", "--name", name, "--interval", iv)
			case "run":
				cmd = objShmmon(t, "run", "--name", name, "--interval", iv, "--grace", objGrace.String(), "--", exe, name)
			case "serve":
				cmd = objShmmon(t, "serve", "--config", objConfig(t, name, []string{exe, name}))
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
			deadline := time.Now().Add(objStartBound)
			for !ready() && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			switch {
			case !ready() && kind == "watch as another user":
				o.Hangs++
				details = append(details, kind+": still running, want a prompt error")
			case !ready():
				o.Hangs++
				details = append(details, kind+": did not publish the object")
			case kind == "watch as another user":
				msg := strings.ReplaceAll(strings.TrimSpace(p.Stderr.String()), name, "NAME")
				details = append(details, fmt.Sprintf("%s: %v, %q", kind, p.Cmd.ProcessState, msg))
			}
			if p.Running() && !StopPromptly(t, p) {
				o.Hangs++
				details = append(details, kind+": did not end after SIGTERM")
			}
			p.Cmd.Process.Kill()
			<-p.Done()
		}
	}
	o.Detail = objSummary(details)
	if o.Hangs == 0 {
		o.Detail = "watch, run and serve replaced the FIFO and ended promptly; " + o.Detail
	}
	return o
}

// objSummary joins the distinct details of the trials, counting repeats.
func objSummary(details []string) string {
	var order []string
	n := map[string]int{}
	for _, d := range details {
		if n[d] == 0 {
			order = append(order, d)
		}
		n[d]++
	}
	for i, d := range order {
		if n[d] > 1 {
			order[i] = fmt.Sprintf("%s (%d×)", d, n[d])
		}
	}
	return strings.Join(order, "; ")
}

// objBeatMain is serve's program: it beats the object SHMMON_NAME names, twice per check
// interval and more, until it is stopped.
func objBeatMain([]string) int {
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
func objPlantMain(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "badactor obj-plant: want the object name and a pid")
		return 2
	}
	pid, err := strconv.Atoi(args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "badactor obj-plant:", err)
		return 2
	}
	seg, err := objForge(args[0], pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, "badactor obj-plant:", err)
		return 1
	}
	seg.Close()
	return 0
}

// objSquatMain, the attacker, publishes args[0] with a record naming itself and beats it,
// printing every signal it gets, until it is killed.
func objSquatMain(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "badactor obj-squat: want the object name")
		return 2
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs)
	seg, err := objForge(args[0], os.Getpid())
	if err != nil {
		fmt.Fprintln(os.Stderr, "badactor obj-squat:", err)
		return 1
	}
	fmt.Println("ready")
	tick := time.NewTicker(objInterval / 5)
	for {
		select {
		case s := <-sigs:
			if s != syscall.SIGURG && s != syscall.SIGCHLD && s != syscall.SIGWINCH {
				fmt.Println("signal", s)
			}
		case <-tick.C:
			seg.Beat()
			objFresh(seg)
		}
	}
}

// objFifoMain, the attacker, makes a FIFO at /dev/shm/args[0].
func objFifoMain(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "badactor obj-fifo: want the object name")
		return 2
	}
	if err := syscall.Mkfifo(shmobj.Path(args[0]), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "badactor obj-fifo:", err)
		return 1
	}
	return 0
}

// objMonitorMain, the attacker, publishes args[0] with a record whose monitor pid is args[1]
// (a live shmmon that watches another object), by writing the field into the object's file.
func objMonitorMain(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "badactor obj-monitor: want the object name and a pid")
		return 2
	}
	pid, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "badactor obj-monitor:", err)
		return 2
	}
	seg, err := objForge(args[0], 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "badactor obj-monitor:", err)
		return 1
	}
	half := int64(seg.Size() / 2)
	seg.Close()
	f, err := os.OpenFile(shmobj.Path(args[0]), os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteAt(binary.NativeEndian.AppendUint64(nil, uint64(pid)), half+shmobj.RecMonitorPid)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "badactor obj-monitor:", err)
		return 1
	}
	return 0
}
