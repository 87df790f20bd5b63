//go:build faults

package faults

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/shmobj"
)

// The detection benchmark's fleet: 1,000 supervised workers under one serve.
const (
	detectWorkers  = 1000
	detectInterval = time.Second
	detectStalls   = 3
	detectHangs    = 30 // hung one after another, each right after one of its beats
	// detectSlot is one slot of the pacer's grid at detectInterval: a tenth of the
	// interval, at most 50 ms (package monitor).
	detectSlot = 50 * time.Millisecond
)

// BenchmarkDetectLatency measures, at 1,000 workers (interval 1 s, 3 stalls), how long a
// hang takes to be judged and acted on: for each of 30 workers hung (SIGSTOP) right after a
// beat the benchmark saw land in its object, the time from that last beat to serve's verdict
// (its state=abnormal line) and to its first signal (the kill step event=signal), as p50,
// p99 and max. The rules promise the verdict within (stalls+1) × interval plus one slot of
// the pacer: the check that sees the last beat comes up to one interval after it, and the
// verdict `stalls` intervals later. With hog=true two busy loops keep both cores busy.
func BenchmarkDetectLatency(b *testing.B) {
	for _, hog := range []bool{false, true} {
		b.Run(fmt.Sprintf("hog=%v", hog), func(b *testing.B) { detectLatency(b, hog) })
	}
}

func detectLatency(b *testing.B, hog bool) {
	c := newRun(b)
	path := filepath.Join(b.TempDir(), "shmmon.toml")
	names := make([]string, detectWorkers)
	ws := make([]testkit.Worker, detectWorkers)
	for i := range names {
		names[i] = c.object(i)
		ws[i] = testkit.Worker{Name: names[i], Command: []string{testkit.Executable(b)},
			Extra: fmt.Sprintf("env = { GOMAXPROCS = \"1\", %s = \"100\" }\n", envPeriod)}
	}
	writeConfig(b, path, fmt.Sprintf("interval = %q\nstalls = %d\nkill_after = \"1s\"\ngrace = \"2m\"\nrestart = \"never\"",
		detectInterval, detectStalls), ws)
	serve := c.startServe(path)
	pids := waitAllBeating(b, names)
	if hog {
		// Busy loops of the shell, not of the test binary: a process mapping the executable
		// 1,000 others map can take tens of seconds to exit (see RELIABILITY.md).
		testkit.Load(b, 1)
	}
	time.Sleep(2 * time.Second) // past the start's burst, and the hogs at work

	b.ResetTimer()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	lastBeat := map[string]time.Time{}
	for _, v := range rng.Perm(detectWorkers)[:detectHangs] {
		name := names[v]
		snap, err := shmobj.Read(name)
		if err != nil {
			b.Fatal(err)
		}
		// Hang it right after a beat: the beat's time is known to within the poll.
		for seq := snap.Seq; ; time.Sleep(200 * time.Microsecond) {
			if s, err := shmobj.Read(name); err != nil || s.Seq != seq {
				break
			}
		}
		at := time.Now()
		if err := syscall.Kill(pids[v], syscall.SIGSTOP); err != nil {
			b.Fatalf("SIGSTOP to %s pid %d: %v", name, pids[v], err)
		}
		lastBeat[name] = at
		time.Sleep(300 * time.Millisecond)
	}
	verdicts, signals := map[string]time.Time{}, map[string]time.Time{}
	testkit.WaitFor(b, 30*time.Second, "every hang judged and signalled", func() bool {
		for _, l := range serve.Stderr.Lines() {
			m := workerAttr.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			if _, hung := lastBeat[m[1]]; !hung {
				continue
			}
			switch {
			case strings.Contains(l, "state=abnormal"):
				verdicts[m[1]] = logTime(b, l)
			case strings.Contains(l, `msg="kill step"`) && strings.Contains(l, "event=signal"):
				if _, seen := signals[m[1]]; !seen {
					signals[m[1]] = logTime(b, l)
				}
			}
		}
		return len(verdicts) == detectHangs && len(signals) == detectHangs
	})
	b.StopTimer()
	var toVerdict, toSignal []time.Duration
	for name, at := range lastBeat {
		toVerdict = append(toVerdict, verdicts[name].Sub(at))
		toSignal = append(toSignal, signals[name].Sub(at))
	}
	if others := len(testkit.LinesWith(serve.Stderr.Lines(), "state=abnormal")) - detectHangs; others != 0 {
		b.Errorf("%d verdicts of workers that were not hung", others)
	}
	promise := (detectStalls+1)*detectInterval + detectSlot
	for _, d := range []struct {
		what string
		ds   []time.Duration
	}{{"verdict", toVerdict}, {"signal", toSignal}} {
		slices.Sort(d.ds)
		b.ReportMetric(ms(percentile(d.ds, 50)), "p50-"+d.what+"-ms")
		b.ReportMetric(ms(percentile(d.ds, 99)), "p99-"+d.what+"-ms")
		b.ReportMetric(ms(d.ds[len(d.ds)-1]), "max-"+d.what+"-ms")
	}
	b.ReportMetric(ms(promise), "promise-ms")
	b.ReportMetric(float64(detectHangs), "hangs")
	b.ReportMetric(0, "ns/op")
	// serve stops its workers itself: 1,000 processes killed at once by the cleanup can take
	// the kernel longer than its wait to end (see RELIABILITY.md).
	serve.Terminate(b, 2*time.Minute)
}

// logTime returns the time= of a log line of serve's (slog's text format, RFC 3339 with
// milliseconds).
func logTime(b *testing.B, line string) time.Time {
	b.Helper()
	f, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
	at, err := time.Parse(time.RFC3339Nano, f)
	if err != nil {
		b.Fatalf("no time in log line %q: %v", line, err)
	}
	return at
}

// percentile returns the p-th percentile of the sorted ds (nearest rank).
func percentile(ds []time.Duration, p int) time.Duration {
	i := (p*len(ds)+99)/100 - 1
	return ds[max(i, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkReload measures a live reload at scale: serve watches 10,000 objects (beaten at
// 10 Hz by one other process), one worker's entry changes (its grace), and the file is saved
// as an editor saves it. Reported: the time from the save to the changed worker being
// watched again (its "watching" line), and how many of the other 9,999 were touched — a new
// object (inode), another watched pid, or a state change after the save — which must be 0.
func BenchmarkReload(b *testing.B) {
	const n = 10000
	needMapCount(b, n)
	c := newRun(b)
	prefix := c.objectPrefix()
	beater := c.start("beater", []string{envMode + "=beater", envPrefix + "=" + prefix,
		envCount + "=" + strconv.Itoa(n), envPeriod + "=100"}, testkit.Executable(b))
	conf := func(changed int) []byte {
		var s strings.Builder
		s.WriteString("[defaults]\ninterval = \"1s\"\nstalls = 3\n")
		for i := range n {
			fmt.Fprintf(&s, "\n[[worker]]\nname = \"%s-%d\"\npid = %d\n", prefix, i, beater.Pid())
			if i == changed {
				s.WriteString("grace = \"1h\"\n")
			}
		}
		return []byte(s.String())
	}
	path := filepath.Join(b.TempDir(), "shmmon.toml")
	if err := os.WriteFile(path, conf(-1), 0o600); err != nil {
		b.Fatal(err)
	}
	serve := c.start("shmmon serve", nil, testkit.Shmmon(b), "serve", "--config", path)
	testkit.WaitFor(b, 2*time.Minute, "the beater to attach every object", func() bool {
		return strings.Contains(beater.Stdout.String(), "ready")
	})
	type seen struct {
		ino uint64
		pid int64
	}
	before := make([]seen, n)
	testkit.WaitFor(b, time.Minute, "every object ok", func() bool {
		for i := range n {
			snap, fi, err := shmobj.Inspect(fmt.Sprintf("%s-%d", prefix, i))
			if err != nil || snap.Record.State != shmobj.StateOK {
				return false
			}
			before[i] = seen{fi.ID.Ino, snap.Record.WatchedPid}
		}
		return true
	})
	time.Sleep(2 * time.Second)
	changed := n / 2
	name := fmt.Sprintf("%s-%d", prefix, changed)
	mark := len(serve.Stderr.Lines())

	b.ResetTimer()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, conf(changed), 0o600); err != nil {
		b.Fatal(err)
	}
	saved := time.Now()
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	var took time.Duration
	testkit.WaitFor(b, time.Minute, "the changed worker watched again", func() bool {
		for _, l := range serve.Stderr.Lines()[mark:] {
			if strings.Contains(l, "msg=watching") && strings.Contains(l, "worker="+name+" ") {
				took = logTime(b, l).Sub(saved)
				return true
			}
		}
		return false
	})
	b.StopTimer()
	time.Sleep(3 * time.Second) // three more checks of every other worker
	touched := 0
	for i := range n {
		if i == changed {
			continue
		}
		snap, fi, err := shmobj.Inspect(fmt.Sprintf("%s-%d", prefix, i))
		if err != nil || snap.Record.State != shmobj.StateOK || fi.ID.Ino != before[i].ino || snap.Record.WatchedPid != before[i].pid {
			touched++
		}
	}
	for _, l := range serve.Stderr.Lines()[mark:] {
		if strings.Contains(l, "state change") && !strings.Contains(l, "worker="+name+" ") {
			touched++
		}
	}
	if touched > 0 {
		b.Errorf("%d of the %d unchanged workers were touched by the reload", touched, n-1)
	}
	b.ReportMetric(ms(took), "reload-ms")
	b.ReportMetric(float64(touched), "touched")
	b.ReportMetric(0, "ns/op")
}
