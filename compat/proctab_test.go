package compat_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/proctab"
	"github.com/shmmon/shmmon/worker"
)

var proctabKeySeq atomic.Int32

// testProctab returns a System V key for a table of this test only (never the default one
// that real services use), and removes the table when the test ends.
func testProctab(t *testing.T, slots int) (int, proctab.Options) {
	t.Helper()
	key := 0x7d000000 | (os.Getpid()&0xffff)<<8 | int(proctabKeySeq.Add(1))
	opts := proctab.Options{Key: key, SemKey: key, Slots: slots}
	t.Cleanup(func() {
		if tab, err := proctab.Attach(opts); err == nil {
			tab.Remove()
			tab.Close()
		}
	})
	return key, opts
}

// proctabClient returns the path of the C++ client of the process table.
func proctabClient(t *testing.T) string {
	return filepath.Join(filepath.Dir(needBoost(t).worker), "proctab_client")
}

// keyArgs are the table flags of the C++ client and of shmmon.
func keyArgs(key int) []string {
	k := fmt.Sprintf("%#x", key)
	return []string{"--key", k, "--sem-key", k}
}

// startProctabClient starts the C++ client registered as name with timeout seconds,
// updating every beatPeriod, and waits until it has registered.
func startProctabClient(t *testing.T, key, slots int, name string, timeout int) *testkit.Process {
	t.Helper()
	args := append(keyArgs(key), "--slots", strconv.Itoa(slots), name, strconv.Itoa(timeout), beatMs)
	p := start(t, "proctab_client "+name, nil, proctabClient(t), args...)
	testkit.WaitLine(t, &p.Stdout, startTimeout, "registered")
	return p
}

// TestProctabLayout compares Go's record layout with the C++ program's sizeof and offsets.
func TestProctabLayout(t *testing.T) {
	out, err := runOutput(proctabClient(t), "--layout")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("sizeof %d pid %d name %d timeout %d atime %d",
		proctab.RecordSize, proctab.OffPid, proctab.OffName, proctab.OffTimeout, proctab.OffAtime)
	if strings.TrimSpace(out) != want {
		t.Errorf("C++ layout %q, Go layout %q", strings.TrimSpace(out), want)
	}
}

func runOutput(path string, args ...string) (string, error) {
	b, err := exec.Command(path, args...).Output()
	return string(b), err
}

// TestCheckproc: a C++ client whose heartbeats stop (SIGSTOP) is killed by `shmmon
// checkproc` and its record cleared; a healthy C++ client and a healthy Go client in the same
// table are left alone over several passes.
func TestCheckproc(t *testing.T) {
	const slots = 16
	key, opts := testProctab(t, slots)
	hung := startProctabClient(t, key, slots, "cpp-hung", 1)
	healthy := startProctabClient(t, key, slots, "cpp-healthy", 2)
	goClient := start(t, "go proctab client", append(goWorkerEnv("proctab"), envProctabKey+"="+strconv.Itoa(key),
		envProctabSlots+"="+strconv.Itoa(slots), worker.EnvName+"=go-healthy"), testkit.Executable(t))
	testkit.WaitLine(t, &goClient.Stdout, startTimeout, "ready")

	hung.Signal(t, syscall.SIGSTOP)
	check := start(t, "shmmon checkproc", nil, testkit.Shmmon(t),
		append(append([]string{"checkproc"}, keyArgs(key)...), "--slots", strconv.Itoa(slots), "--every", "300ms", "--kill-after", killAfter.String())...)
	st := hung.Wait(t, 10*time.Second)
	if ws, ok := st.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("hung client ended with %v, want SIGKILL (it was stopped: SIGTERM cannot act)", st)
	}
	// The pass that killed it ends (clearing its record), then several more: the healthy
	// clients stay.
	var killedAt int
	testkit.WaitFor(t, 10*time.Second, "the pass that killed it", func() bool {
		for i, l := range testkit.LinesWith(check.Stderr.Lines(), "event=sweep") {
			if strings.Contains(l, " killed=1 ") {
				killedAt = i
				return true
			}
		}
		return false
	})
	testkit.WaitFor(t, 10*time.Second, "3 more sweeps", func() bool { return strings.Count(check.Stderr.String(), "event=sweep") >= killedAt+4 })
	tab, err := proctab.Attach(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	recs, _ := tab.List()
	var names []string
	for _, r := range recs {
		names = append(names, r.Name)
	}
	if strings.Join(names, ",") != "cpp-healthy,go-healthy" {
		t.Errorf("records after the sweeps: %v, want cpp-healthy and go-healthy", names)
	}
	for _, p := range []*testkit.Process{healthy, goClient} {
		if !p.Running() {
			t.Errorf("%s was killed", p.Label)
		}
	}
	if n := strings.Count(check.Stderr.String(), "heartbeat timed out: killing"); n != 1 {
		t.Errorf("%d kills logged, want 1", n)
	}
	check.Terminate(t, 10*time.Second)
}

// TestProctabLockHolderKilled: a C++ client SIGKILLed while it holds the lock does not block
// the table: SEM_UNDO frees the lock, and registration still works.
func TestProctabLockHolderKilled(t *testing.T) {
	key, _ := testProctab(t, 4)
	holder := start(t, "proctab_client --hold-lock", nil, proctabClient(t), append(keyArgs(key), "--slots", "4", "--hold-lock")...)
	testkit.WaitLine(t, &holder.Stdout, startTimeout, "locked")
	holder.Signal(t, syscall.SIGKILL)
	holder.Wait(t, 10*time.Second)
	c := startProctabClient(t, key, 4, "after", 5)
	if !c.Running() {
		t.Error("client could not register after the lock holder died")
	}
}

// TestProctabFull: a full table is a clear error for the C++ client and for checkproc's
// Go side alike.
func TestProctabFull(t *testing.T) {
	key, opts := testProctab(t, 2)
	startProctabClient(t, key, 2, "one", 5)
	startProctabClient(t, key, 2, "two", 5)
	third := start(t, "proctab_client three", nil, proctabClient(t), append(keyArgs(key), "--slots", "2", "three", "5", "20")...)
	st := third.Wait(t, 10*time.Second)
	if st.ExitCode() != 1 || !strings.Contains(third.Stderr.String(), "table full") {
		t.Errorf("third client: %v, stderr %q; want exit 1 and \"table full\"", st, third.Stderr.String())
	}
	tab, err := proctab.Attach(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	if _, err := tab.Register("go", time.Second); err == nil || !strings.Contains(err.Error(), "table full (2 slots)") {
		t.Errorf("Go Register in a full table: %v", err)
	}
}

// TestServeSweepsProctab: with a [proctab] table in its config, serve sweeps the process
// table as checkproc does: a stopped C++ client is killed, a healthy one left alone.
func TestServeSweepsProctab(t *testing.T) {
	const slots = 8
	key, opts := testProctab(t, slots)
	hung := startProctabClient(t, key, slots, "cpp-hung", 1)
	healthy := startProctabClient(t, key, slots, "cpp-healthy", 2)
	path := filepath.Join(t.TempDir(), "shmmon.toml")
	conf := fmt.Sprintf("[proctab]\nkey = %d\nsem_key = %d\nslots = %d\nevery = \"300ms\"\nkill_after = %q\n", key, key, slots, killAfter)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	serve := startServe(t, path)
	testkit.WaitLine(t, &serve.Stderr, startTimeout, "sweeping the process table")
	hung.Signal(t, syscall.SIGSTOP)
	hung.Wait(t, 10*time.Second)
	testkit.WaitLine(t, &serve.Stderr, startTimeout, "killed=1")
	if !healthy.Running() {
		t.Error("the healthy client was killed")
	}
	tab, err := proctab.Attach(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	if recs, _ := tab.List(); len(recs) != 1 || recs[0].Name != "cpp-healthy" {
		t.Errorf("records after the sweep: %+v, want only cpp-healthy", recs)
	}
	serve.Terminate(t, 10*time.Second)
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
	writeConfig(t, path, []testkit.Worker{{Name: name,
		Command: []string{proctabClient(t), "--key", k, "--sem-key", k, "--slots", strconv.Itoa(slots), "svc", "1", "100"},
		Extra:   "heartbeat = \"proctab\"\ninterval = \"300ms\"\nstalls = 3\ngrace = \"5s\"\n"}},
		fmt.Sprintf("\n[proctab]\nkey = %d\nsem_key = %d\nslots = %d\nevery = \"200ms\"\n", key, key, slots))
	serve := startServe(t, path)
	var pids []int64
	killOnCleanup(t, &pids)
	first := waitBeating(t, name, 0)
	pids = append(pids, first)
	time.Sleep(5 * time.Second) // five timeouts of its record
	if e, _ := lsJSON(t, name); e.Kind != "proctab" || e.State != "ok" || e.Pid != first {
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
