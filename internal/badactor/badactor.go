// Package badactor is the other local user of shmmon's security tests (package security) and
// of the fault suite's bad-actor cases: the attacks an unprivileged account can make on a
// root shmmon through what it may write (a process-table record, an object in /dev/shm, a
// pidfile, a loopback connection, a file name), and the root processes it aims them at.
//
// Each attack is a [Scenario]: it runs a real shmmon as root and a real attacker as a
// throwaway user (see testkit.NewUser) for some trials, and counts what went wrong: processes
// signalled that shmmon did not own, and hangs past SIGTERM. The security tests run every
// scenario once and fail on any count; the fault suite runs them for many trials and writes
// the counts to RELIABILITY.md.
//
// The attacker and the victim are the test binary itself in a mode of this package: a test
// binary that uses it calls [Main] first in its TestMain.
package badactor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
)

// envMode names the mode the test binary runs in instead of its tests.
const envMode = "SHMMON_BADACTOR"

// mode is a helper mode of the scenarios: the attacker's writes, the victims, the programs of
// the scenarios' shmmons.
type mode struct {
	usage    string // the arguments it wants, for its usage message
	min, max int    // how many arguments it takes; max < 0: no limit
	// run gets the arguments after the mode, and returns nil once it is done (a victim never
	// is: it waits to be killed). An error ends the process with status 1, or 2 for a
	// [usageError].
	run func(args []string) error
}

// modes are the helper modes, by name.
var modes = map[string]mode{
	"victim": {"SIGNAL-FILE", 1, 1, victimMain},
}

// usageError is a mode's complaint about its arguments.
type usageError string

func (e usageError) Error() string { return string(e) }

// Main runs the mode the environment names, if any: ok reports whether it did, and code is
// its exit code. A test binary calls it first in TestMain:
//
//	if code, ok := badactor.Main(); ok {
//		os.Exit(code)
//	}
func Main() (code int, ok bool) {
	name := os.Getenv(envMode)
	if name == "" {
		return 0, false
	}
	m, known := modes[name]
	args := os.Args[1:]
	var err error
	switch {
	case !known:
		err = usageError(fmt.Sprintf("unknown mode %q", name))
	case len(args) < m.min, m.max >= 0 && len(args) > m.max:
		err = usageError("want " + m.usage)
	default:
		err = m.run(args)
	}
	if err == nil {
		return 0, true
	}
	fmt.Fprintf(os.Stderr, "badactor %s: %v\n", name, err)
	if errors.As(err, new(usageError)) {
		return 2, true
	}
	return 1, true
}

// Outcome counts what one scenario's trials did.
type Outcome struct {
	Trials int
	// Signalled counts the processes shmmon did not own that got a signal from it (or died)
	// during a trial: must be 0.
	Signalled int
	// Hangs counts the times shmmon did not end within HangBound of SIGTERM, or blocked in
	// a way the scenario checks: must be 0.
	Hangs int
	// FalseKills counts the healthy workers of shmmon's own that the attack got killed (a
	// feed taken over, say): must be 0.
	FalseKills int
	// Detail says what was seen, for the fault suite's observed column.
	Detail string
}

// HangBound is how long shmmon may take to end after SIGTERM in a scenario.
const HangBound = 3 * time.Second

// Scenario is one attack.
type Scenario struct {
	Name string // what the attacker does, as the fault suite's row names it
	// Trials is how many trials the fault suite runs: [FaultTrials] when 0; fewer only when a
	// trial is too expensive for the suite's time budget.
	Trials int
	// Run runs trials of the attack; it fails t on a setup error, and reports in the Outcome
	// what shmmon did (it does not fail t for a signalled process or a hang: the caller
	// judges the Outcome).
	Run func(t testing.TB, trials int) Outcome
}

// Scenarios are every attack of the package, in the order of the security issue.
var Scenarios []Scenario

// FaultTrials is the fault suite's number of trials of a scenario.
const FaultTrials = 20

// register adds s to Scenarios, keeping the order of the security issue's paths (order is
// the number of the path), with its Trials defaulting to FaultTrials.
func register(order int, s Scenario) {
	if s.Trials == 0 {
		s.Trials = FaultTrials
	}
	registered = append(registered, ordered{order, s})
	slices.SortStableFunc(registered, func(a, b ordered) int { return a.order - b.order })
	Scenarios = Scenarios[:0]
	for _, r := range registered {
		Scenarios = append(Scenarios, r.s)
	}
}

type ordered struct {
	order int
	s     Scenario
}

var registered []ordered

// Each runs f as a subtest of t, named as the scenario, for every scenario of Scenarios; it
// fails t when the package registers none.
func Each(t *testing.T, f func(t *testing.T, s Scenario)) {
	t.Helper()
	if len(Scenarios) == 0 {
		t.Fatal("package badactor registers no scenario")
	}
	for _, s := range Scenarios {
		t.Run(s.Name, func(t *testing.T) { f(t, s) })
	}
}

// Check fails t for every process signalled, hang and false kill in o, naming the scenario.
func Check(t testing.TB, name string, o Outcome) {
	t.Helper()
	if o.Signalled != 0 || o.Hangs != 0 || o.FalseKills != 0 {
		t.Errorf("%s: in %d trials, %d processes signalled that shmmon did not own, %d hangs past SIGTERM, "+
			"%d healthy workers killed; want 0 of each (%s)", name, o.Trials, o.Signalled, o.Hangs, o.FalseKills, o.Detail)
	} else {
		t.Logf("%s: %d trials, 0 signalled, 0 hangs, 0 false kills: %s", name, o.Trials, o.Detail)
	}
}

// As returns the command that runs the test binary (its public copy) as u in mode with args.
func As(t testing.TB, u *testkit.User, mode string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := u.Command(testkit.PublicExecutable(t), args...)
	cmd.Env = append(cmd.Env, envMode+"="+mode)
	return cmd
}

// Self returns the command that runs the test binary as the caller (root) in mode with args.
func Self(t testing.TB, mode string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(testkit.PublicExecutable(t), args...)
	cmd.Env = append(os.Environ(), envMode+"="+mode)
	return cmd
}

// Victim is a root process that an attacker tries to have shmmon kill: it records every
// catchable signal it gets in a file; SIGKILL and SIGSTOP show as its death or its state.
type Victim struct {
	p    *testkit.Process
	file string
}

// StartVictim starts a victim (the test binary as the caller, normally root) and waits until
// it is ready. It is killed when the test ends.
func StartVictim(t testing.TB) *Victim {
	t.Helper()
	return startVictim(t, "victim", nil, "victim")
}

// startVictim starts the test binary as the caller in mode, a victim's (its first argument
// the signal file, then args), with the process attributes attr, and waits until it is ready.
func startVictim(t testing.TB, label string, attr *syscall.SysProcAttr, mode string, args ...string) *Victim {
	t.Helper()
	file := filepath.Join(t.TempDir(), "signals")
	cmd := Self(t, mode, append([]string{file}, args...)...)
	cmd.SysProcAttr = attr
	p := testkit.Start(t, label, cmd)
	testkit.WaitLine(t, &p.Stdout, 10*time.Second, "ready")
	return &Victim{p: p, file: file}
}

// Pid returns the victim's pid.
func (v *Victim) Pid() int { return v.p.Pid() }

// Hit reports whether the victim got a signal or is no longer running normally (dead, or
// stopped), with what it saw.
func (v *Victim) Hit() (bool, string) {
	if !v.p.Running() {
		return true, "victim " + v.p.Label + " died: " + v.p.Cmd.ProcessState.String()
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", v.Pid())); err == nil {
		if i := strings.LastIndexByte(string(st), ')'); i > 0 && i+2 < len(st) && (st[i+2] == 'T' || st[i+2] == 't') {
			return true, "victim " + v.p.Label + " is stopped"
		}
	}
	if b, _ := os.ReadFile(v.file); len(b) > 0 {
		return true, "victim " + v.p.Label + " got " + strings.Join(strings.Fields(string(b)), ", ")
	}
	return false, ""
}

// victimMain records the signals it gets in args[0] and never returns.
func victimMain(args []string) error {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs)
	fmt.Println("ready")
	for s := range sigs {
		if harmless(s) {
			continue
		}
		if f, err := os.OpenFile(args[0], os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			fmt.Fprintln(f, s)
			f.Close()
		}
	}
	return nil
}

// harmless reports whether s is a signal a victim does not count: the Go runtime's own
// (SIGURG), or one that never ends or stops a process by default (SIGCHLD, SIGWINCH).
func harmless(s os.Signal) bool {
	return s == syscall.SIGURG || s == syscall.SIGCHLD || s == syscall.SIGWINCH
}

// StopPromptly sends SIGTERM to p (a shmmon) and reports whether it ended within HangBound.
func StopPromptly(t testing.TB, p *testkit.Process) bool {
	t.Helper()
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Done():
		return true
	case <-time.After(HangBound):
		return false
	}
}

// attack is what the trials of a scenario share: the test, the attacker (a throwaway user),
// and the tally of what shmmon did.
type attack struct {
	t      testing.TB
	u      *testkit.User
	shmmon string // the shmmon command (see testkit.Shmmon)
	o      Outcome
	seen   []string // what the trials saw, for the Outcome's Detail
}

// newAttack makes the attacker of a scenario of trials trials.
func newAttack(t testing.TB, trials int) *attack {
	t.Helper()
	return &attack{t: t, u: testkit.NewUser(t), shmmon: testkit.Shmmon(t), o: Outcome{Trials: trials}}
}

// hang counts a hang of shmmon (or a wait of it that never ended), and what it was.
func (a *attack) hang(what string) { a.o.Hangs++; a.see(what) }

// signalled counts a process shmmon did not own that got a signal, and what it was.
func (a *attack) signalled(what string) { a.o.Signalled++; a.see(what) }

// falseKill counts a healthy worker of shmmon's own that the attack got killed.
func (a *attack) falseKill(what string) { a.o.FalseKills++; a.see(what) }

// see keeps what a trial saw for the Detail.
func (a *attack) see(what string) { a.seen = append(a.seen, what) }

// outcome returns the Outcome of the trials. Its Detail is what they saw, each distinct thing
// once (with how many times, when more than once), or ok when they saw nothing.
func (a *attack) outcome(ok string) Outcome {
	o := a.o
	o.Detail = ok
	if len(a.seen) > 0 {
		var order []string
		n := map[string]int{}
		for _, s := range a.seen {
			if n[s] == 0 {
				order = append(order, s)
			}
			n[s]++
		}
		for i, s := range order {
			if n[s] > 1 {
				order[i] = fmt.Sprintf("%s (%d×)", s, n[s])
			}
		}
		o.Detail = strings.Join(order, "; ")
	}
	return o
}

// as runs the attacker in mode with args; it fails the test when the attacker fails, or does
// not print want.
func (a *attack) as(want, mode string, args ...string) {
	a.t.Helper()
	out, err := As(a.t, a.u, mode, args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), want) {
		a.t.Fatalf("the attacker's %s %q: %v, want %q in its output:\n%s", mode, args, err, want, out)
	}
}

// serve writes conf to path (root's, 0644) and starts a root serve on it.
func (a *attack) serve(path, conf string) *testkit.Process {
	a.t.Helper()
	a.writeFile(path, conf, 0o644)
	return testkit.Start(a.t, "shmmon serve", exec.Command(a.shmmon, serveArgs(a.t, "--config", path)...))
}

// serveArgs are the arguments of a serve of a scenario: "serve", args, and a control socket
// of the serve's own, so that scenarios may run at once (each serve refuses a control socket
// another live serve answers at).
func serveArgs(t testing.TB, args ...string) []string {
	t.Helper()
	dir, err := os.MkdirTemp("", "shmmon-ba-") // short: a socket's path has at most 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return append(append([]string{"serve"}, args...), "--control", filepath.Join(dir, "control.sock"))
}

// logged reports whether n lines of p's stderr contain want within timeout.
func (a *attack) logged(p *testkit.Process, timeout time.Duration, want string, n int) bool {
	return testkit.Poll(timeout, func() bool { return len(testkit.LinesWith(p.Stderr.Lines(), want)) >= n })
}

// writeFile writes text to path with exactly mode (whatever the umask).
func (a *attack) writeFile(path, text string, mode os.FileMode) {
	a.t.Helper()
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		a.t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		a.t.Fatal(err)
	}
}
