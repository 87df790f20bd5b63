package worker_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/worker"
)

// TestMain lets the test binary act as a worker process: with SHMMON_TEST_BEATS=N it calls
// the package-level worker.Beat N times and exits.
func TestMain(m *testing.M) {
	if n := os.Getenv("SHMMON_TEST_BEATS"); n != "" {
		count, _ := strconv.Atoi(n)
		for range count {
			worker.Beat()
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func testName(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("shmmon-test-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"))
	t.Cleanup(func() { shmobj.Remove(name) })
	return name
}

func publish(t testing.TB, name string) *shmobj.Segment {
	t.Helper()
	seg, err := shmobj.Publish(name, shmobj.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seg.Close() })
	return seg
}

// attached publishes the object of the test and opens a worker of it.
func attached(t testing.TB) (name string, w *worker.Worker) {
	t.Helper()
	name = testName(t)
	publish(t, name)
	return name, open(t, name)
}

func open(t testing.TB, name string) *worker.Worker {
	t.Helper()
	w, err := worker.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// openObject opens the object name (flag, mode) as a third party does; it is closed when the
// test ends.
func openObject(t testing.TB, name string, flag shmobj.Flag, mode os.FileMode) *shmobj.Object {
	t.Helper()
	o, err := shmobj.Open(name, flag, mode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// truncate truncates o to size, as a third party does.
func truncate(t testing.TB, o *shmobj.Object, size int64) {
	t.Helper()
	if err := o.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// resize truncates o to size and maps it; the mapping is closed when the test ends.
func resize(t testing.TB, o *shmobj.Object, size int64) *shmobj.Segment {
	t.Helper()
	truncate(t, o, size)
	seg, err := o.Map()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seg.Close() })
	return seg
}

// followTimeout bounds waiting for the worker to follow its object (it does within about 1 s).
const followTimeout = 5 * time.Second

// waitFollows waits until w's beats reach seg, beating as it waits.
func waitFollows(t testing.TB, w *worker.Worker, seg *shmobj.Segment, what string) {
	t.Helper()
	testkit.WaitFor(t, followTimeout, what, func() bool {
		w.Beat()
		return seq(seg) > 0
	})
}

func seq(seg *shmobj.Segment) uint64 {
	s, _ := seg.Seq()
	return s
}

func TestOpenInvalidName(t *testing.T) {
	for _, name := range []string{"", "a/b", strings.Repeat("x", 256)} {
		if _, err := worker.Open(name); !errors.Is(err, shmobj.ErrInvalidName) {
			t.Errorf("Open(%.20q) = %v, want ErrInvalidName", name, err)
		}
	}
}

func TestBeat(t *testing.T) {
	name := testName(t)
	seg := publish(t, name)
	w := open(t, name)
	if !w.Attached() || w.Err() != nil {
		t.Fatalf("Attached = %v, Err = %v", w.Attached(), w.Err())
	}
	const goroutines, beats = 8, 1000
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range beats {
				w.Beat()
			}
		})
	}
	wg.Wait()
	snap, err := seg.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if snap.Seq != goroutines*beats || snap.WorkerPid != int64(os.Getpid()) {
		t.Errorf("seq %d pid %d, want %d and %d", snap.Seq, snap.WorkerPid, goroutines*beats, os.Getpid())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestMissingObjectThenMonitor(t *testing.T) {
	name := testName(t)
	w := open(t, name)
	if w.Attached() || !errors.Is(w.Err(), os.ErrNotExist) {
		t.Fatalf("no object: Attached = %v, Err = %v, want false and ErrNotExist", w.Attached(), w.Err())
	}
	for range 100 {
		w.Beat() // no-op, no crash
	}
	waitFollows(t, w, publish(t, name), "worker attaches to the new object")
	if w.Err() != nil {
		t.Errorf("Err after attaching = %v", w.Err())
	}
}

func TestFollowsRepublish(t *testing.T) {
	name := testName(t)
	old := publish(t, name)
	w := open(t, name)
	w.Beat()
	if seq(old) != 1 {
		t.Fatalf("old seq %d", seq(old))
	}
	waitFollows(t, w, publish(t, name), "worker follows the re-published object") // marks old retired
	before := seq(old)
	w.Beat()
	if seq(old) != before {
		t.Error("beats still reach the retired object")
	}
}

// A Boost checker replaces the object by remove + create + truncate: no retired flag, only
// a new inode.
func TestFollowsBoostStyleReplace(t *testing.T) {
	name, w := attached(t)
	w.Beat()
	shmobj.Remove(name)
	o := openObject(t, name, shmobj.CreateOnly, 0o644)
	waitFollows(t, w, resize(t, o, 1024), "worker follows the new inode")
}

func TestSurvivesTruncation(t *testing.T) {
	name, w := attached(t)
	o := openObject(t, name, shmobj.OpenOnly, 0)
	truncate(t, o, 0)
	for range 1000 {
		w.Beat() // faults, recovered
	}
	testkit.WaitFor(t, followTimeout, "worker drops the truncated object", func() bool { return !w.Attached() })
	if !errors.Is(w.Err(), shmobj.ErrTooSmall) {
		t.Errorf("Err = %v, want ErrTooSmall", w.Err())
	}
	// The object grows back (a monitor re-sized it): the worker resumes.
	waitFollows(t, w, resize(t, o, 4096), "worker resumes")
}

// TestFaultedBeatsDoNotFaultAgain: after a beat faulted on a truncated object, the beats that
// follow do nothing until the worker reopens it, rather than fault again each (a signal, a
// panic and a recover: microseconds each).
func TestFaultedBeatsDoNotFaultAgain(t *testing.T) {
	name, w := attached(t)
	other, err := shmobj.Attach(name) // a mapping of our own, to time one fault
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	truncate(t, openObject(t, name, shmobj.OpenOnly, 0), 0)
	w.Beat() // faults, recovered
	const n = 10000
	one := time.Now()
	for range 100 {
		if !errors.Is(other.Beat(), shmobj.ErrFault) {
			t.Fatal("a beat on a truncated object did not fault")
		}
	}
	fault := time.Since(one) / 100
	// Had they faulted, n beats would take n faults: the fastest of three rounds takes a
	// quarter of that at most (a beat that does not fault is a hundred times faster).
	took := time.Duration(1<<63 - 1)
	for range 3 {
		began := time.Now()
		for range n {
			w.Beat()
		}
		took = min(took, time.Since(began))
	}
	if took > n*fault/4 {
		t.Errorf("%d beats after a fault took %v, one fault %v: they fault again", n, took, fault)
	}
}

// TestPackageBeat runs the test binary as a worker that uses SHMMON_NAME.
func TestPackageBeat(t *testing.T) {
	name := testName(t)
	seg := publish(t, name)
	run := func(env ...string) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("worker process: %v\n%s", err, out)
		}
	}
	run("SHMMON_TEST_BEATS=5", worker.EnvName+"="+name)
	if s := seq(seg); s != 5 {
		t.Errorf("seq after 5 package-level beats = %d", s)
	}
	// Without the variable, or with a bad name, Beat does nothing and does not crash.
	run("SHMMON_TEST_BEATS=5", worker.EnvName+"=")
	run("SHMMON_TEST_BEATS=5", worker.EnvName+"=a/b")
	if s := seq(seg); s != 5 {
		t.Errorf("seq changed to %d by workers without a valid name", s)
	}
}

func BenchmarkBeat(b *testing.B) {
	_, w := attached(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.Beat()
	}
}

func BenchmarkBeatParallel(b *testing.B) {
	_, w := attached(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Beat()
		}
	})
}

func BenchmarkBeatNoObject(b *testing.B) {
	w := open(b, testName(b))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		w.Beat()
	}
}
