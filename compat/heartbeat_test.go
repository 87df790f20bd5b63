package compat_test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/proctab"
	"github.com/shmmon/shmmon/shmobj"
)

// lsEntry is one entry of `shmmon ls --json`.
type lsEntry struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"`
	State string `json:"state"`
	Pid   int64  `json:"pid"`
}

// lsJSON returns the entry of name in `shmmon ls --json`.
func lsJSON(t *testing.T, name string) lsEntry {
	t.Helper()
	out, err := exec.Command(testkit.Shmmon(t), "ls", "--json").Output()
	if err != nil {
		t.Fatalf("shmmon ls --json: %v", err)
	}
	var list []lsEntry
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("shmmon ls --json: %v\n%s", err, out)
	}
	for _, e := range list {
		if e.Name == name {
			return e
		}
	}
	return lsEntry{}
}

// TestServeHeartbeatNone: programs supervised without a heartbeat (heartbeat = "none", as
// the original framework's scheduler runs them) are never judged: one that exits every 2 s
// is started again each time and never killed; a periodic job that never beats runs on
// schedule. ls shows them with kind none.
func TestServeHeartbeatNone(t *testing.T) {
	exiter, job := objectName(t)+"-exits", objectName(t)+"-job"
	t.Cleanup(func() { shmobj.Remove(exiter); shmobj.Remove(job) })
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	path := filepath.Join(dir, "shmmon.toml")
	writeConfig(t, path, []serveWorker{
		{name: exiter, command: []string{"/bin/sh", "-c", "sleep 2"}, extra: "heartbeat = \"none\"\ngrace = \"300ms\"\n"},
		{name: job, command: []string{"/bin/sh", "-c", "echo run >> " + runs + "; sleep 0.5"},
			extra: "heartbeat = \"none\"\nevery = \"1s\"\ngrace = \"300ms\"\n"},
	}, "")
	serve := startServe(t, path)
	testkit.WaitFor(t, startTimeout, "the program running, kind none", func() bool {
		e := lsJSON(t, exiter)
		return e.Kind == "none" && e.State == "running" && e.Pid != 0
	})
	time.Sleep(7 * time.Second) // three exits of the first, several runs of the job: never beaten
	log := serve.Stderr.Lines()
	if n := len(testkit.LinesWith(log, "msg=started", "worker="+exiter)); n < 3 {
		t.Errorf("the program that exits every 2 s was started %d times in 7 s, want at least 3", n)
	}
	if n := len(testkit.LinesWith(log, "msg=started", "worker="+job)); n < 4 {
		t.Errorf("the periodic job ran %d times in 7 s at every 1s (+0.5 s each), want at least 4", n)
	}
	for _, l := range log {
		if strings.Contains(l, "killing hung worker") || strings.Contains(l, "state=stalled") || strings.Contains(l, "state=abnormal") {
			t.Errorf("a program without a heartbeat was judged: %s", l)
		}
	}
	if e := lsJSON(t, job); e.Kind != "none" {
		t.Errorf("ls shows the job as %+v, want kind none", e)
	}
}

// TestServeHeartbeatProctab: a supervised program that registers in the System V process
// table (the C++ client written as the original framework's clients are) is judged by its
// own record: healthy for many timeouts; frozen (SIGSTOP), its record times out and it is
// killed and restarted, and the new program registers a new record. The table's sweep, which
// runs often, leaves the program to its supervisor.
func TestServeHeartbeatProctab(t *testing.T) {
	const slots = 16
	key, opts := testProctab(t, slots)
	name := objectName(t)
	path := filepath.Join(t.TempDir(), "shmmon.toml")
	k := fmt.Sprintf("%#x", key)
	writeConfig(t, path, []serveWorker{{name: name,
		command: []string{proctabClient(t), "--key", k, "--sem-key", k, "--slots", strconv.Itoa(slots), "svc", "1", "100"},
		extra:   "heartbeat = \"proctab\"\ninterval = \"300ms\"\nstalls = 3\ngrace = \"5s\"\n"}},
		fmt.Sprintf("\n[proctab]\nkey = %d\nsem_key = %d\nslots = %d\nevery = \"200ms\"\n", key, key, slots))
	serve := startServe(t, path)
	var pids []int64
	killOnCleanup(t, &pids)
	first := waitBeating(t, name, 0)
	pids = append(pids, first)
	time.Sleep(5 * time.Second) // five timeouts of its record
	if e := lsJSON(t, name); e.Kind != "proctab" || e.State != "ok" || e.Pid != first {
		t.Errorf("after 5 s: %+v, want kind proctab, state ok, pid %d", e, first)
	}
	if l := testkit.LinesWith(serve.Stderr.Lines(), "killing hung worker"); len(l) > 0 {
		t.Fatalf("a healthy client was killed: %s", l[0])
	}

	syscall.Kill(int(first), syscall.SIGSTOP)
	testkit.WaitLine(t, &serve.Stderr, startTimeout+killMargin, "killing hung worker")
	second := waitBeating(t, name, first)
	pids = append(pids, second)
	if proc.Alive(int(first)) {
		t.Errorf("the frozen client %d is still alive", first)
	}
	tab, err := proctab.Attach(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	testkit.WaitFor(t, startTimeout, "the new program's record", func() bool {
		recs, _ := tab.List()
		for _, r := range recs {
			if r.Pid == int(second) && r.Name == "svc" {
				return true
			}
		}
		return false
	})
	if l := testkit.LinesWith(serve.Stderr.Lines(), "heartbeat timed out: killing"); len(l) > 0 {
		t.Errorf("the sweep killed the supervised program: %s", l[0])
	}
}

// TestRunHeartbeatNone: `shmmon run --heartbeat none` supervises a program without a
// heartbeat: one that exits every second is started again each time, never judged or
// killed, and ls shows it with kind none.
func TestRunHeartbeatNone(t *testing.T) {
	name := objectName(t)
	t.Cleanup(func() { shmobj.Remove(name) })
	run := start(t, "shmmon run --heartbeat none", nil, testkit.Shmmon(t), "run", "--name", name, "--heartbeat", "none",
		"--interval", "100ms", "--grace", "300ms", "--start-limit", "100", "--", "/bin/sh", "-c", "sleep 1")
	testkit.WaitFor(t, startTimeout, "the program running, kind none", func() bool {
		e := lsJSON(t, name)
		return e.Kind == "none" && e.State == "running" && e.Pid != 0
	})
	time.Sleep(4500 * time.Millisecond) // 45 intervals, 15 graces: never beaten
	log := run.Stderr.Lines()
	if n := len(testkit.LinesWith(log, "msg=started", "worker="+name)); n < 4 {
		t.Errorf("the program that exits every second was started %d times in 4.5 s, want at least 4", n)
	}
	for _, l := range log {
		if strings.Contains(l, "killing hung worker") || strings.Contains(l, "state=stalled") || strings.Contains(l, "state=abnormal") {
			t.Errorf("a program without a heartbeat was judged: %s", l)
		}
	}
	run.Signal(t, syscall.SIGTERM)
	if st := run.Wait(t, 10*time.Second); st.ExitCode() != 0 {
		t.Errorf("run ended with %v after SIGTERM, want exit 0", st)
	}
}
