//go:build faults

package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/cgroup"
	"github.com/shmmon/shmmon/internal/badactor"
	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/proc"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/worker"
)

// The parameters of the small cases: workers beat five times per check interval.
const (
	interval   = 100 * time.Millisecond
	stalls     = 3
	killAfter  = 300 * time.Millisecond
	beatPeriod = 20 * time.Millisecond
	// killBound is the promise: a hung worker is gone within threshold+1 intervals plus
	// kill-after (a SIGSTOPped worker ignores SIGTERM, so it always takes kill-after).
	killBound = (stalls+1)*interval + killAfter
	// loadSlack is what a loaded 2-core machine may add to killBound before a case fails.
	loadSlack = 2 * time.Second
	// startTimeout bounds waiting for a process to start, publish, or beat.
	startTimeout = 15 * time.Second
)

// Environment of the test binary's helper modes (see TestMain).
const (
	envMode   = "FAULTS_MODE"   // beat, hog, beater
	envPeriod = "FAULTS_PERIOD" // beat period, ms
	envFor    = "FAULTS_FOR"    // beat: beat this many ms, then do FAULTS_THEN
	envThen   = "FAULTS_THEN"   // beat: spin, block, deadlock, or exit:N
	envPrefix = "FAULTS_PREFIX" // beater: objects PREFIX-0 ... PREFIX-(COUNT-1)
	envCount  = "FAULTS_COUNT"
	// envTag marks every process a case starts, down to the workers a monitor starts (they
	// inherit the monitor's environment), so that the case's cleanup finds them all.
	envTag = "FAULTS_TAG"
)

// TestMain lets the test binary be the worker (and the other helper programs) of the cases,
// and the victims and attackers of package badactor; without FAULTS_MODE (or badactor's mode)
// it runs the suite and prints the outcome table.
func TestMain(m *testing.M) {
	if code, ok := badactor.Main(); ok {
		os.Exit(code)
	}
	if mode := os.Getenv(envMode); mode != "" {
		os.Exit(helperMain(mode))
	}
	// The whole output of a failed case's processes, for logs too long for the test log.
	testkit.OutputDir = os.Getenv("FAULTS_LOGDIR")
	// Just built, this binary may not be on disk yet: the cases run it as hundreds of workers
	// (see writeBack).
	if exe, err := os.Executable(); err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(1)
	} else if err := writeBack(exe); err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(1)
	}
	code := m.Run()
	printTable(os.Stdout)
	if path := os.Getenv("FAULTS_REPORT"); path != "" {
		if err := writeReport(path); err != nil {
			fmt.Fprintln(os.Stderr, "faults:", err)
			code = 1
		}
	}
	testkit.Cleanup()
	os.Exit(code)
}

// helperMain runs one helper mode. It returns only on a usage error or for exit:N.
func helperMain(mode string) int {
	ms, _ := strconv.Atoi(os.Getenv(envPeriod))
	period := time.Duration(max(ms, 1)) * time.Millisecond
	switch mode {
	case "beat":
		// Beats through the package-level worker.Beat (SHMMON_NAME). With FAULTS_FOR, it
		// stops beating after that long and does FAULTS_THEN.
		var until <-chan time.Time
		if ms, err := strconv.Atoi(os.Getenv(envFor)); err == nil {
			until = time.After(time.Duration(ms) * time.Millisecond)
		}
		tick := time.NewTicker(period)
		for {
			select {
			case <-tick.C:
				worker.Beat()
				continue
			case <-until:
			}
			break
		}
		then := os.Getenv(envThen)
		switch {
		case then == "spin":
			// Busy, not beating: the goroutine that beats never comes back.
			for n := 0; ; n++ {
				spinSink = n
			}
		case then == "block":
			// Blocked in read(2) on a pipe whose write end it holds itself: nobody writes.
			var p [2]int
			if err := syscall.Pipe(p[:]); err != nil {
				fmt.Fprintln(os.Stderr, "faults worker: pipe:", err)
				return 1
			}
			var b [1]byte
			for {
				syscall.Read(p[0], b[:])
			}
		case then == "deadlock":
			// Blocked on a mutex it holds, as a real deadlock is; a sleeping goroutine keeps
			// the runtime from calling it a deadlock and exiting.
			go func() {
				for {
					time.Sleep(time.Hour)
				}
			}()
			var mu sync.Mutex
			mu.Lock()
			mu.Lock()
		case strings.HasPrefix(then, "exit:"):
			n, _ := strconv.Atoi(strings.TrimPrefix(then, "exit:"))
			return n
		}
		fmt.Fprintf(os.Stderr, "faults worker: bad %s=%q: want spin, block, deadlock or exit:N\n", envThen, then)
		return 2
	case "hog":
		for n := 0; ; n++ {
			spinSink = n
		}
	case "beater":
		return beaterMain(os.Getenv(envPrefix), os.Getenv(envCount), period)
	}
	fmt.Fprintf(os.Stderr, "faults: bad %s=%q\n", envMode, mode)
	return 2
}

// spinSink keeps the busy loops from being optimized away.
var spinSink int

// beaterMain beats the objects PREFIX-0 ... PREFIX-(COUNT-1) every period, each mapped once:
// many workers' beats from one process, for the load measurement.
func beaterMain(prefix, count string, period time.Duration) int {
	n, err := strconv.Atoi(count)
	if err != nil || prefix == "" {
		fmt.Fprintf(os.Stderr, "faults beater: bad %s=%q or %s=%q\n", envPrefix, prefix, envCount, count)
		return 2
	}
	segs := make([]*shmobj.Segment, n)
	for attached := 0; attached < n; {
		for i := range segs {
			if segs[i] == nil {
				if s, err := shmobj.Attach(fmt.Sprintf("%s-%d", prefix, i)); err == nil {
					segs[i] = s
					attached++
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("ready")
	for range time.Tick(period) {
		for _, s := range segs {
			s.Beat()
		}
	}
	return 0
}

// tcase is the running case: its tag, its object names, and its outcome row.
type tcase struct {
	t       testing.TB
	tag     string // value of FAULTS_TAG for every process of the case
	row     *row
	control string // the control socket of the case's serves; "" before the first
}

// newCase starts a case: it registers the outcome row and a cleanup that kills every process
// carrying the case's tag (monitors, and the workers they started, even those a SIGKILLed
// monitor left behind) and removes the case's objects.
func newCase(t testing.TB, name, expected string) *tcase {
	t.Helper()
	c := &tcase{t: t, tag: fmt.Sprintf("%d-%s", os.Getpid(), t.Name()),
		row: &row{Case: name, Expected: expected}}
	started := time.Now()
	t.Cleanup(func() {
		c.row.Took = time.Since(started)
		c.row.Pass = !t.Failed()
		results.add(*c.row)
	})
	c.cleanup()
	return c
}

// newRun is newCase for a measurement: the same cleanup, and no row in the outcome table.
func newRun(t testing.TB) *tcase {
	t.Helper()
	c := &tcase{t: t, tag: fmt.Sprintf("%d-%s", os.Getpid(), t.Name()), row: &row{}}
	c.cleanup()
	return c
}

// cleanup registers the removal of the case's processes and objects.
func (c *tcase) cleanup() {
	c.t.Cleanup(func() {
		killTagged(c.tag)
		prefix := c.objectPrefix()
		if names, _ := filepath.Glob(filepath.Join(shmobj.Dir, prefix+"*")); len(names) > 0 {
			for _, n := range names {
				os.Remove(n)
			}
		}
		removeCgroupsLike(prefix)
	})
}

// removeCgroupsLike removes the workers' cgroups whose names begin with prefix (what a serve
// that was killed, or whose workers' ends the kernel delayed past its stop, left behind),
// killing what is left in them. The workers' parent is under the cgroup v2 mount: /sys/fs/cgroup
// on a unified host, /sys/fs/cgroup/unified on a hybrid one.
func removeCgroupsLike(prefix string) {
	m, err := cgroup.Open()
	if err != nil {
		return
	}
	defer m.Close()
	for _, mount := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		dirs, _ := filepath.Glob(filepath.Join(mount, m.Path(), prefix+"*"))
		for _, d := range dirs {
			if g, _, err := m.Create(filepath.Base(d)); err == nil {
				g.Remove()
			}
		}
	}
}

// objectPrefix is the start of every object name of the case.
func (c *tcase) objectPrefix() string { return testkit.Name(c.t, "shmmon-faults") }

// object returns the name of the case's object i.
func (c *tcase) object(i int) string { return fmt.Sprintf("%s-%d", c.objectPrefix(), i) }

// env returns the environment of a process of the case, with extra added.
func (c *tcase) env(extra ...string) []string {
	return append(append(os.Environ(), envTag+"="+c.tag, "GORACE=atexit_sleep_ms=0"), extra...)
}

// killTagged SIGKILLs (and SIGCONTs, should it be stopped) every process whose environment
// holds FAULTS_TAG=tag, and waits up to 10 s for them to be gone.
func killTagged(tag string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := tagged(tag)
		if len(pids) == 0 || time.Now().After(deadline) {
			return
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
			syscall.Kill(pid, syscall.SIGCONT)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tagged returns the live (not zombie) processes whose environment holds FAULTS_TAG=tag.
func tagged(tag string) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == os.Getpid() || !proc.Alive(pid) {
			continue
		}
		if proc.HasEnv(pid, envTag+"="+tag) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// start starts path with args, in the case's environment plus env (see [testkit.Start]).
// Should the test binary die, its direct children die with it; the workers of a monitor are
// found by their tag.
func (c *tcase) start(label string, env []string, path string, args ...string) *testkit.Process {
	c.t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = c.env(env...)
	return testkit.Start(c.t, label, cmd)
}

// workerEnv is the environment of a beating worker of the test binary.
func workerEnv(extra ...string) []string {
	return append([]string{envMode + "=beat", envPeriod + "=" + strconv.Itoa(int(beatPeriod/time.Millisecond))}, extra...)
}

var (
	pidAttr    = regexp.MustCompile(`\bpid=(\d+)`)
	workerAttr = regexp.MustCompile(`\bworker="?([^"\s]+)`) // quoted when the name holds "="
)

// kill is one kill of a hung worker, read from a monitor's log.
type kill struct {
	worker string
	pid    int
}

// kills returns the kills a run or serve logged ("killing hung worker").
func kills(b *testkit.Buffer) []kill {
	var ks []kill
	for _, l := range testkit.LinesWith(b.Lines(), `msg="killing hung worker"`) {
		var k kill
		if m := workerAttr.FindStringSubmatch(l); m != nil {
			k.worker = m[1]
		}
		if m := pidAttr.FindStringSubmatch(l); m != nil {
			k.pid, _ = strconv.Atoi(m[1])
		}
		ks = append(ks, k)
	}
	return ks
}
