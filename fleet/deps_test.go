package fleet

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/shmobj"
)

// recorded is one line of a worker's record file (see envRecord).
type recorded struct {
	name, what string
	at         time.Time
}

// records reads the record file.
func records(t *testing.T, file string) []recorded {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []recorded
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		ns, _ := strconv.ParseInt(f[2], 10, 64)
		out = append(out, recorded{f[0], f[1], time.Unix(0, ns)})
	}
	return out
}

// when returns the time of the n-th (1-based) record of what by name; the zero time if none.
func when(rs []recorded, name, what string, n int) time.Time {
	for _, r := range rs {
		if r.name == name && r.what == what {
			if n--; n == 0 {
				return r.at
			}
		}
	}
	return time.Time{}
}

// recordTo makes the test's workers record their starts and stops in a file, returned.
func recordTo(t *testing.T) string {
	file := filepath.Join(t.TempDir(), "record")
	t.Setenv(envRecord, file)
	return file
}

// TestDependencyChain: a -> b -> c, a beating for the first time after 1.5s: b starts only
// after a's first beat, c after b's; meanwhile b and c are waiting, with the names; a stop
// stops c, b, a, each once the one before has ended.
func TestDependencyChain(t *testing.T) {
	file := recordTo(t)
	a, b, c := objectName(t)+"-a", objectName(t)+"-b", objectName(t)+"-c"
	for _, n := range []string{a, b, c} {
		t.Cleanup(func() { shmobj.Remove(n) })
	}
	f, log := newFleet(t)
	f.Apply(testWorkers(t,
		workerText(t, c, "beat", fmt.Sprintf("after = [%q]", b)),
		workerText(t, b, "beat", fmt.Sprintf("after = [%q]", a)),
		workerText(t, a, "late:1500ms", ""),
	))
	// While a has not beaten: b waits for a, c for b.
	testkit.WaitFor(t, 5*time.Second, "a started", func() bool { return status(t, f, a).Phase == monitor.Running })
	time.Sleep(300 * time.Millisecond)
	if sb, sc := status(t, f, b), status(t, f, c); !slices.Equal(sb.WaitingFor, []string{a}) || !slices.Equal(sc.WaitingFor, []string{b}) ||
		sb.Phase != monitor.Held || sc.Phase != monitor.Held {
		t.Errorf("before a's first beat: b %v waiting for %q, c %v waiting for %q; want held, waiting for a and b", sb.Phase, sb.WaitingFor, sc.Phase, sc.WaitingFor)
	}
	// shmmon ls shows the object: state waiting, the names in its status text.
	if snap, err := shmobj.Read(b); err != nil || snap.StatusText != "waiting for "+a || snap.Record.State != shmobj.StateWaiting {
		t.Errorf("b's object: state %v, status text %q, %v; want waiting, %q", snap.Record.State, snap.StatusText, err, "waiting for "+a)
	}
	testkit.WaitFor(t, 15*time.Second, "c running", func() bool { return status(t, f, c).Ready })
	if s := status(t, f, c); s.WaitingFor != nil {
		t.Errorf("c running, still waiting for %q", s.WaitingFor)
	}
	if snap, _ := shmobj.Read(b); snap.StatusText != "" {
		t.Errorf("b running: status text %q, want none", snap.StatusText)
	}
	rs := records(t, file)
	aStart, bStart, cStart := when(rs, a, "start", 1), when(rs, b, "start", 1), when(rs, c, "start", 1)
	if aStart.IsZero() || bStart.Sub(aStart) < 1400*time.Millisecond || !cStart.After(bStart) {
		t.Errorf("starts: a %v, b %v, c %v; want b at least 1.5s after a (its first beat), c after b", aStart, bStart, cStart)
	}
	if !strings.Contains(log.String(), "event=dependencies-ready") {
		t.Errorf("no dependencies-ready line:\n%s", log)
	}

	f.Stop()
	rs = records(t, file)
	cExit, bTerm, bExit, aTerm := when(rs, c, "exit", 1), when(rs, b, "term", 1), when(rs, b, "exit", 1), when(rs, a, "term", 1)
	if cExit.IsZero() || bExit.IsZero() || !bTerm.After(cExit) || !aTerm.After(bExit) {
		t.Errorf("stop: c exited %v, b got SIGTERM %v and exited %v, a got SIGTERM %v; want c, b, a, each after the last ended",
			cExit, bTerm, bExit, aTerm)
	}
}

// TestBindsTo: b bound to a: a killed as hung takes b down, and b is started again once a
// is ready again; c, only after a, is left alone. A control stop keeps b stopped.
func TestBindsTo(t *testing.T) {
	file := recordTo(t)
	a, b, c := objectName(t)+"-a", objectName(t)+"-b", objectName(t)+"-c"
	for _, n := range []string{a, b, c} {
		t.Cleanup(func() { shmobj.Remove(n) })
	}
	f, log := newFleet(t)
	f.Apply(testWorkers(t,
		workerText(t, a, "hang-once:1500ms", ""),
		workerText(t, b, "beat", fmt.Sprintf("binds_to = [%q]", a)),
		workerText(t, c, "beat", fmt.Sprintf("after = [%q]", a)),
	))
	testkit.WaitFor(t, 20*time.Second, "a restarted after its hang", func() bool {
		s := status(t, f, a)
		return s.Restarts == 1 && s.Ready
	})
	testkit.WaitFor(t, 10*time.Second, "b started again", func() bool {
		return !when(records(t, file), b, "start", 2).IsZero() && status(t, f, b).Ready
	})
	rs := records(t, file)
	if bTerm, aStart := when(rs, b, "term", 1), when(rs, a, "start", 2); bTerm.IsZero() || !when(rs, b, "start", 2).After(aStart) {
		t.Errorf("b got SIGTERM %v, started again %v; a started again %v: want b stopped, then started after a", bTerm, when(rs, b, "start", 2), aStart)
	}
	if !when(rs, c, "term", 1).IsZero() || !when(rs, c, "start", 2).IsZero() {
		t.Errorf("c (after, not bound) was stopped or started again: %v", rs)
	}
	if s := status(t, f, c); s.Starts != 1 || s.Kills != 0 {
		t.Errorf("c: %d starts, %d kills; want 1, 0", s.Starts, s.Kills)
	}
	if s := status(t, f, b); s.Kills != 0 {
		t.Errorf("b was killed as hung %d times (a false kill)", s.Kills)
	}
	if log.Count("event=dependency-stop") != 1 {
		t.Errorf("%d dependency-stop lines, want 1:\n%s", log.Count("event=dependency-stop"), log)
	}
}

// TestReadyTimeoutAndGiveUp: a dependency not ready within its ready_timeout is logged once
// (event=not-ready) and its dependent keeps waiting, then starts; one that gives up makes its
// dependent wait for "NAME (given up)".
func TestReadyTimeoutAndGiveUp(t *testing.T) {
	a, b, x, y := objectName(t)+"-a", objectName(t)+"-b", objectName(t)+"-x", objectName(t)+"-y"
	for _, n := range []string{a, b, x, y} {
		t.Cleanup(func() { shmobj.Remove(n) })
	}
	f, log := newFleet(t)
	f.Apply(testWorkers(t,
		workerText(t, a, "late:1500ms", `ready_timeout = "300ms"`),
		workerText(t, b, "beat", fmt.Sprintf("after = [%q]", a)),
		fmt.Sprintf("[[worker]]\nname = %q\ncommand = [\"/bin/sh\", \"-c\", \"exit 3\"]\ninterval = \"50ms\"\nstart_limit = 1\n", x),
		workerText(t, y, "beat", fmt.Sprintf("binds_to = [%q]", x)),
	))
	testkit.WaitFor(t, 10*time.Second, "the not-ready line", func() bool { return log.Count("event=not-ready") > 0 })
	if s := status(t, f, b); !slices.Equal(s.WaitingFor, []string{a}) {
		t.Errorf("b after a's ready_timeout: waiting for %q, want %q", s.WaitingFor, a)
	}
	testkit.WaitFor(t, 10*time.Second, "b running once a beats", func() bool { return status(t, f, b).Ready })
	if n := log.Count("event=not-ready"); n != 1 {
		t.Errorf("%d not-ready lines, want 1 (once a run):\n%s", n, log)
	}
	if !strings.Contains(log.String(), "dependency="+a) {
		t.Errorf("the not-ready line does not name the dependency:\n%s", log)
	}
	testkit.WaitFor(t, 10*time.Second, "y waiting for x (given up)", func() bool {
		return slices.Equal(status(t, f, y).WaitingFor, []string{x + " (given up)"})
	})
	if s := status(t, f, y); s.Starts != 0 || s.Phase != monitor.Held {
		t.Errorf("y: %d starts, %v; want none, held", s.Starts, s.Phase)
	}
}

// TestDependencyReload: adding dependencies to running workers restarts nothing; a new worker
// waits for its dependencies as at start; a reload that removes a worker and one that needs
// it stops that one first.
func TestDependencyReload(t *testing.T) {
	file := recordTo(t)
	a, b, c := objectName(t)+"-a", objectName(t)+"-b", objectName(t)+"-c"
	for _, n := range []string{a, b, c} {
		t.Cleanup(func() { shmobj.Remove(n) })
	}
	f, log := newFleet(t)
	ta, tb := workerText(t, a, "beat", ""), workerText(t, b, "beat", "")
	f.Apply(testWorkers(t, ta, tb))
	pid := beatingPid(t, f, b, 0)
	ch := f.Apply(testWorkers(t, ta, tb+fmt.Sprintf("after = [%q]\nbinds_to = [%q]\n", a, a),
		workerText(t, c, "late:500ms", fmt.Sprintf("after = [%q]", a))))
	if ch != (Changes{Started: 1, Unchanged: 2}) {
		t.Errorf("reload adding dependencies and c: %+v, want 1 started, 2 unchanged", ch)
	}
	if n := log.Count("event=config-deps"); n != 1 {
		t.Errorf("%d config-deps lines, want 1 (b's):\n%s", n, log)
	}
	testkit.WaitFor(t, 10*time.Second, "c running", func() bool { return status(t, f, c).Ready })
	if s := status(t, f, b); s.Snapshot.Record.WatchedPid != pid || s.Starts != 1 {
		t.Errorf("b after the reload: pid %d (was %d), %d starts; want the same program", s.Snapshot.Record.WatchedPid, pid, s.Starts)
	}
	// b is bound to a from now on.
	if _, err := f.RestartWorker(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "b started again after a", func() bool { return !when(records(t, file), b, "start", 2).IsZero() })

	f.Apply(testWorkers(t, tb))
	rs := records(t, file)
	if cExit, aTerm := when(rs, c, "exit", 1), when(rs, a, "term", 2); cExit.IsZero() || !aTerm.After(cExit) {
		t.Errorf("reload removing a and c: c exited %v, a got SIGTERM %v; want c first", cExit, aTerm)
	}
}

// TestStopOrder: the workers named, a worker before those it needs, else as given.
func TestStopOrder(t *testing.T) {
	f, _ := newFleet(t)
	f.keepEntries(map[string]*config.Worker{
		"db": {Name: "db"}, "cache": {Name: "cache"},
		"app": {Name: "app", Deps: config.Deps{After: []string{"db"}, BindsTo: []string{"cache"}}},
		"web": {Name: "web", Deps: config.Deps{After: []string{"app"}}},
	})
	for _, tt := range []struct{ in, want []string }{
		{[]string{"db", "app", "web"}, []string{"web", "app", "db"}},
		{[]string{"cache", "db", "web"}, []string{"cache", "db", "web"}},
		{[]string{"cache", "app", "nope"}, []string{"app", "cache", "nope"}},
	} {
		if got := f.StopOrder(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("StopOrder(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestDependencyControl: a control action wins over the dependencies: ctl start starts a
// waiting worker at once; after ctl stop, its dependencies being ready starts nothing.
func TestDependencyControl(t *testing.T) {
	a, b := objectName(t)+"-a", objectName(t)+"-b"
	for _, n := range []string{a, b} {
		t.Cleanup(func() { shmobj.Remove(n) })
	}
	f, _ := newFleet(t)
	f.Apply(testWorkers(t, workerText(t, a, "late:1500ms", ""), workerText(t, b, "beat", fmt.Sprintf("binds_to = [%q]", a))))
	testkit.WaitFor(t, 5*time.Second, "b waiting", func() bool { return status(t, f, b).WaitingFor != nil })
	if done, err := f.StartWorker(t.Context(), b); err != nil || !strings.HasPrefix(done, "started (pid ") {
		t.Fatalf("StartWorker of a waiting worker = %q, %v", done, err)
	}
	if s := status(t, f, a); s.Ready {
		t.Fatal("a was ready already: the test proves nothing")
	}
	first := beatingPid(t, f, b, 0)
	if s := status(t, f, b); s.WaitingFor != nil {
		t.Errorf("b started by control: waiting for %q", s.WaitingFor)
	}
	testkit.WaitFor(t, 10*time.Second, "a ready", func() bool { return status(t, f, a).Ready })
	if _, err := f.StopWorker(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if _, err := f.RestartWorker(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "a ready again", func() bool { return status(t, f, a).Ready })
	time.Sleep(500 * time.Millisecond) // 5 passes of the orderer
	if s := status(t, f, b); s.Phase != monitor.Held || s.WaitingFor != nil || s.Starts != 1 {
		t.Errorf("b after ctl stop and a ready again: %v, waiting for %q, %d starts; want stopped, nothing, 1 (pid %d)", s.Phase, s.WaitingFor, s.Starts, first)
	}
}
