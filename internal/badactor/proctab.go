package badactor

// Paths 1 and 2 of the security issue: the System V process table of the original framework,
// created mode 0666 as its clients create it, so that any local user may write its records and
// set its semaphore.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proctab"
)

func init() {
	modes["proctab-forge"] = mode{"KEY PID,TIMEOUT,AGE...", 2, -1, forgeMain}
	modes["proctab-zero-sem"] = mode{"KEY", 1, 1, zeroSemMain}
	modes["proctab-client"] = mode{"SIGNAL-FILE KEY SLOTS", 3, 3, proctabClientMain}
	register(1, Scenario{Name: "forged process-table record", Run: forgedRecord})
	register(2, Scenario{Name: "zeroed semaphore", Run: zeroedSemaphore})
}

// proctabSlots is the size of the scenarios' tables.
const proctabSlots = 8

var proctabKeySeq atomic.Int32

// proctabTable creates a process table with a key of its own (never the default one that
// real services use), mode 0666 as the original's clients create it. remove deletes it.
func proctabTable(t testing.TB) (opts proctab.Options, remove func()) {
	t.Helper()
	key := 0x7c000000 | (os.Getpid()&0xffff)<<8 | int(proctabKeySeq.Add(1)&0xff)
	opts = proctab.Options{Key: key, SemKey: key, Slots: proctabSlots, Mode: 0o666}
	tab, err := proctab.Open(opts)
	if err != nil {
		t.Fatalf("creating the test process table: %v", err)
	}
	return opts, func() {
		tab.Remove()
		tab.Close()
	}
}

// tableArgs are shmmon's flags for the table of opts.
func tableArgs(opts proctab.Options) []string {
	k := fmt.Sprintf("%#x", opts.Key)
	return []string{"--key", k, "--sem-key", k, "--slots", strconv.Itoa(opts.Slots)}
}

// proctabConfig writes a serve config that sweeps the table of opts every 200ms.
func proctabConfig(t testing.TB, opts proctab.Options) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shmmon.toml")
	conf := fmt.Sprintf("[proctab]\nkey = %d\nsem_key = %d\nslots = %d\nevery = \"200ms\"\nkill_after = \"1s\"\n",
		opts.Key, opts.SemKey, opts.Slots)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// forgedRecord is path 1. Each trial makes a fresh 0666 table, and for each sweeper (root
// `shmmon checkproc`, one pass; serve's [proctab] sweep, for a few passes) the attacker
// writes three records without the lock: a root victim's pid with timeout 1 and a heartbeat
// 2 s old (the victim started before it, so it is not taken for a reused pid), and two bad
// records naming a root process that has the table attached (a negative timeout; a
// heartbeat in the future). Nobody may be signalled; every record must be cleared and
// refused in the log (event=record-refused).
func forgedRecord(t testing.TB, trials int) Outcome {
	a := newAttack(t, trials)
	for range trials {
		opts, remove := proctabTable(t)
		type sweeper struct {
			name           string
			start          func() *testkit.Process
			done           func(p *testkit.Process) (hang bool)
			victim, client *Victim
		}
		sweepers := []*sweeper{
			{name: "checkproc", start: func() *testkit.Process {
				args := append(append([]string{"checkproc"}, tableArgs(opts)...), "--kill-after", "1s")
				return testkit.Start(t, "shmmon checkproc", exec.Command(a.shmmon, args...))
			}, done: func(p *testkit.Process) bool {
				select {
				case <-p.Done():
					return false
				case <-time.After(10 * time.Second):
					return true
				}
			}},
			{name: "serve", start: func() *testkit.Process {
				p := testkit.Start(t, "shmmon serve", exec.Command(a.shmmon, serveArgs(t, "--config", proctabConfig(t, opts))...))
				testkit.WaitLine(t, &p.Stderr, 10*time.Second, "sweeping the process table")
				return p
			}, done: func(p *testkit.Process) bool {
				testkit.Poll(5*time.Second, func() bool { return len(records(t, opts)) == 0 })
				time.Sleep(500 * time.Millisecond) // a few more passes
				return !StopPromptly(t, p)
			}},
		}
		for _, sw := range sweepers {
			// The client has the table attached, and records its signals as a victim does.
			sw.victim = StartVictim(t)
			sw.client = startVictim(t, "attached client", nil, "proctab-client", strconv.Itoa(opts.Key), strconv.Itoa(opts.Slots))
		}
		// The heartbeats forged below are 2 s old: a process that started more than a second
		// after one is not the process that wrote it, and is never killed for it. The victims
		// of a long-running daemon's age are the ones the attack aims at.
		time.Sleep(2500 * time.Millisecond)
		for _, sw := range sweepers {
			a.as("written", "proctab-forge", strconv.Itoa(opts.Key),
				fmt.Sprintf("%d,1,2", sw.victim.Pid()),     // timed out
				fmt.Sprintf("%d,-1,0", sw.client.Pid()),    // a negative timeout: always "timed out"
				fmt.Sprintf("%d,1,-3600", sw.client.Pid())) // a heartbeat an hour ahead
			p := sw.start()
			if sw.done(p) {
				a.hang(sw.name + " did not end")
			}
			p.Kill() // a trial leaves nothing behind
			for _, v := range []*Victim{sw.victim, sw.client} {
				if hit, what := v.Hit(); hit {
					a.signalled(sw.name + ": " + what)
				}
				v.p.Kill()
			}
			if left := records(t, opts); len(left) != 0 {
				t.Errorf("%s left the forged or bad records in the table: %+v", sw.name, left)
			}
			if n := p.Stderr.Count("event=record-refused"); n < 3 {
				t.Errorf("%s logged %d refused records (event=record-refused), want 3 or more", sw.name, n)
			}
		}
		remove()
	}
	return a.outcome("a root victim's pid with timeout 1 and an old heartbeat, and bad records naming an attached client, " +
		"swept by checkproc and by serve")
}

// records returns the records in use in the table of opts.
func records(t testing.TB, opts proctab.Options) []proctab.Record {
	t.Helper()
	tab, err := proctab.Attach(opts)
	if err != nil {
		t.Fatalf("attaching the test table: %v", err)
	}
	defer tab.Close()
	recs, err := tab.List()
	if err != nil {
		t.Fatalf("listing the test table: %v", err)
	}
	return recs
}

// proctabClientMain attaches the table of key args[1] (args[2] slots) and then is a victim
// that records its signals in args[0].
func proctabClientMain(args []string) error {
	key, _ := strconv.Atoi(args[1])
	slots, _ := strconv.Atoi(args[2])
	tab, err := proctab.Attach(proctab.Options{Key: key, SemKey: key, Slots: slots})
	if err != nil {
		return err
	}
	defer tab.Close()
	return victimMain(args[:1])
}

// forgeMain is the attacker of path 1: it attaches the System V segment of key args[0], as
// any user may attach a 0666 table, and writes one record per args[1:] ("PID,TIMEOUT,AGE":
// the heartbeat AGE seconds old, negative for one in the future) into free slots, without
// the lock, as a raw writer would. It prints "written".
func forgeMain(args []string) error {
	mem, err := attachTable(args[0])
	if err != nil {
		return err
	}
	defer unix.SysvShmDetach(mem)
	slot := 0
	for _, a := range args[1:] {
		var pid, timeout, age int64
		if _, err := fmt.Sscanf(a, "%d,%d,%d", &pid, &timeout, &age); err != nil {
			return usageError(fmt.Sprintf("%q: want PID,TIMEOUT,AGE", a))
		}
		for ; (slot+1)*proctab.RecordSize <= len(mem) && binary.NativeEndian.Uint32(mem[slot*proctab.RecordSize:]) != 0; slot++ {
		}
		if (slot+1)*proctab.RecordSize > len(mem) {
			return errors.New("no free slot")
		}
		putRecord(mem, slot, "forged", int32(pid), int32(timeout), time.Now().Unix()-age)
	}
	fmt.Println("written")
	return nil
}

// attachTable attaches the System V segment of the key key (a decimal number), as any user may
// attach a 0666 table.
func attachTable(key string) ([]byte, error) {
	k, err := strconv.Atoi(key)
	if err != nil {
		return nil, usageError(fmt.Sprintf("key %q: %v", key, err))
	}
	id, err := unix.SysvShmGet(k, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("shmget: %w", err)
	}
	mem, err := unix.SysvShmAttach(id, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("shmat: %w", err)
	}
	return mem, nil
}

// putRecord writes a record into slot of the table mem without the lock, as a raw writer
// would: name, pid, timeout (seconds), the heartbeat at the Unix time atime.
func putRecord(mem []byte, slot int, name string, pid, timeout int32, atime int64) {
	r := mem[slot*proctab.RecordSize : (slot+1)*proctab.RecordSize]
	clear(r)
	copy(r[proctab.OffName:proctab.OffName+proctab.MaxNameLen], name)
	binary.NativeEndian.PutUint32(r[proctab.OffTimeout:], uint32(timeout))
	binary.NativeEndian.PutUint64(r[proctab.OffAtime:], uint64(atime))
	binary.NativeEndian.PutUint32(r[proctab.OffPid:], uint32(pid))
}

// zeroSemMain is the attacker of path 2: it sets the semaphore of key args[0] to 0 (SETVAL),
// as any user may with a 0666 semaphore, so that whoever takes the table's lock waits
// forever. It prints "zeroed".
func zeroSemMain(args []string) error {
	key, _ := strconv.Atoi(args[0])
	id, _, errno := unix.Syscall(unix.SYS_SEMGET, uintptr(key), 1, 0)
	if errno != 0 {
		return fmt.Errorf("semget: %w", errno)
	}
	const setVal = 16 // SETVAL
	if _, _, errno := unix.Syscall6(unix.SYS_SEMCTL, id, 0, setVal, 0, 0, 0); errno != 0 {
		return fmt.Errorf("semctl SETVAL: %w", errno)
	}
	fmt.Println("zeroed")
	return nil
}

// lockBound is how long a single checkproc pass may take to give up on a lock that is never
// free: the wait for the lock, and HangBound more.
const lockBound = 3*time.Second + HangBound

// listenAddr finds the address in serve's "serving /metrics" line.
var listenAddr = regexp.MustCompile(`addr=(\S+)`)

// zeroedSemaphore is path 2. Each trial makes a fresh 0666 table whose semaphore the
// attacker sets to 0, and then at once: a root `shmmon checkproc` pass must end within
// lockBound with an error; a `checkproc --every` must end promptly on SIGTERM while it waits
// for the lock; a serve sweeping the table must keep answering /status and /metrics, report
// the trouble on /healthz (503), and end promptly on SIGTERM. Each of those that blocks
// counts as a hang.
func zeroedSemaphore(t testing.TB, trials int) Outcome {
	a := newAttack(t, trials)
	for range trials {
		opts, remove := proctabTable(t)
		a.as("zeroed", "proctab-zero-sem", strconv.Itoa(opts.SemKey))
		began := time.Now()
		once := testkit.Start(t, "shmmon checkproc", exec.Command(a.shmmon, append([]string{"checkproc"}, tableArgs(opts)...)...))
		every := testkit.Start(t, "shmmon checkproc --every", exec.Command(a.shmmon,
			append(append([]string{"checkproc"}, tableArgs(opts)...), "--every", "200ms")...))
		serve := testkit.Start(t, "shmmon serve", exec.Command(a.shmmon, serveArgs(t, "--config", proctabConfig(t, opts), "--listen", "127.0.0.1:0")...))

		// checkproc --every, stopped while it waits for the lock.
		time.Sleep(time.Second)
		if !StopPromptly(t, every) {
			a.hang("checkproc --every did not end on SIGTERM while waiting for the lock")
		}
		// The single pass gives up.
		select {
		case <-once.Done():
			if once.Cmd.ProcessState.ExitCode() == 0 {
				t.Errorf("checkproc ended with exit 0 on a lock it could not take, want an error")
			}
		case <-time.After(time.Until(began.Add(lockBound))):
			a.hang(fmt.Sprintf("a checkproc pass still waits for the lock after %v", lockBound))
		}
		// serve: its HTTP endpoint answers, its health reports the table, its stop is prompt.
		line := testkit.WaitLine(t, &serve.Stderr, 10*time.Second, "serving /metrics")
		m := listenAddr.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("no address in %q", line)
		}
		testkit.Poll(lockBound, func() bool { return serve.Stderr.Count("event=lock-timeout") > 0 })
		type answer struct {
			code int
			body string
			err  error
		}
		paths := []string{"/status", "/metrics", "/healthz"}
		answers := make([]answer, len(paths))
		var wg sync.WaitGroup
		for i, path := range paths {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), lockBound)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+m[1]+path, nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					answers[i].err = err
					return
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				answers[i] = answer{resp.StatusCode, string(b), err}
			})
		}
		wg.Wait()
		for i, ans := range answers[:2] {
			if ans.err != nil || ans.code != http.StatusOK {
				a.hang(fmt.Sprintf("serve's %s did not answer (%d, %v)", paths[i], ans.code, ans.err))
			}
		}
		if !strings.Contains(answers[1].body, "shmmon_proctab_lock_timeouts_total") {
			t.Errorf("/metrics has no shmmon_proctab_lock_timeouts_total")
		}
		if h := answers[2]; h.err != nil || h.code != http.StatusServiceUnavailable || !strings.Contains(h.body, "proctab") {
			t.Errorf("/healthz with the table's lock never free: %d %q (%v), want 503 naming the process table", h.code, h.body, h.err)
		}
		if !StopPromptly(t, serve) {
			a.hang("serve did not end on SIGTERM")
		}
		for _, p := range []*testkit.Process{once, every, serve} {
			p.Kill()
		}
		remove()
	}
	return a.outcome("the table's semaphore set to 0 by another user: checkproc, checkproc --every and serve")
}
