//go:build faults

package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/shmobj"
)

// BenchmarkServeLoad measures one `shmmon serve` (the real command) watching n objects checked
// at 1 Hz: n watched-only [[worker]] entries, all naming one beater process (the test binary)
// that keeps every object beating at 10 Hz; workers=0 is serve's own baseline (an empty
// config). After every object is ok, serve's CPU time (utime+stime from /proc) is read over a
// 20 s window, with its memory. Reported: cpu-%core (percent of one core), rss-MiB
// (resident: anonymous + file + shared), anon-MiB (its own heap and stacks), shmem-MiB (the
// objects' pages it maps, 4 KiB each; shared with the workers, not owned by serve), file-MiB
// (its executable's and libraries' pages) and hwm-MiB (peak resident). Only serve is
// measured, not the beater.
//
// The largest size is 100,000, or as many as the hard limit of open files allows (serve holds
// one pidfd per watched worker, and an unprivileged or contained root cannot raise that
// limit): the sub-benchmark's name says which was measured.
func BenchmarkServeLoad(b *testing.B) {
	for _, n := range []int{0, 10000, min(100000, filesRoom(b))} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) { serveLoad(b, n) })
	}
}

// filesRoom is how many watched objects the hard limit of open files leaves room for, in
// thousands: one pidfd each, and a thousand descriptors for the rest of a process.
func filesRoom(b *testing.B) int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if lim.Max > 1<<30 { // unlimited, in effect
		return 1 << 30
	}
	return max(0, int(lim.Max)-filesBesides) / 1000 * 1000
}

// filesBesides is the descriptors a process needs besides one per watched object.
const filesBesides = 1000

func serveLoad(b *testing.B, n int) {
	const window = 20 * time.Second
	needMapCount(b, n)
	c := newRun(b)
	prefix := c.objectPrefix()
	var conf strings.Builder
	conf.WriteString("[defaults]\ninterval = \"1s\"\nstalls = 3\n")
	var beater *testkit.Process
	if n > 0 {
		beater = c.start("beater", []string{envMode + "=beater", envPrefix + "=" + prefix,
			envCount + "=" + strconv.Itoa(n), envPeriod + "=100"}, testkit.Executable(b))
		for i := range n {
			fmt.Fprintf(&conf, "\n[[worker]]\nname = \"%s-%d\"\npid = %d\n", prefix, i, beater.Pid())
		}
	}
	path := filepath.Join(b.TempDir(), "shmmon.toml")
	if err := os.WriteFile(path, []byte(conf.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	serve := c.start("shmmon serve", nil, testkit.Shmmon(b), "serve", "--config", path)
	if n > 0 {
		testkit.WaitFor(b, 5*time.Minute, "the beater to attach every object", func() bool {
			return strings.Contains(beater.Stdout.String(), "ready")
		})
	}
	testkit.WaitFor(b, 5*time.Minute, "every object ok", func() bool {
		for i := range n {
			snap, err := shmobj.Read(fmt.Sprintf("%s-%d", prefix, i))
			if err != nil || snap.Record.State != shmobj.StateOK {
				return false
			}
		}
		return true
	})
	time.Sleep(3 * time.Second) // past the start's burst
	b.ResetTimer()
	var cpu float64
	for range b.N {
		t0, c0 := time.Now(), cpuTicks(b, serve.Pid())
		time.Sleep(window)
		cpu = float64(cpuTicks(b, serve.Pid())-c0) / 100 / time.Since(t0).Seconds() * 100 // USER_HZ = 100
	}
	b.StopTimer()
	if !serve.Running() || len(testkit.LinesWith(serve.Stderr.Lines(), "state=stalled")) > 0 {
		b.Fatalf("serve judged a beating object stalled, or ended:\n%s", serve.Stderr.Tail(2000))
	}
	mem := statusKiB(b, serve.Pid())
	b.ReportMetric(cpu, "cpu-%core")
	b.ReportMetric(float64(mem["VmRSS"])/1024, "rss-MiB")
	b.ReportMetric(float64(mem["RssAnon"])/1024, "anon-MiB")
	b.ReportMetric(float64(mem["RssShmem"])/1024, "shmem-MiB")
	b.ReportMetric(float64(mem["RssFile"])/1024, "file-MiB")
	b.ReportMetric(float64(mem["VmHWM"])/1024, "hwm-MiB")
	b.ReportMetric(0, "ns/op") // the op is a 20 s window: its time says nothing
}

// needMapCount fails the benchmark, naming the setting, when the kernel would refuse n
// mappings in one process (vm.max_map_count).
func needMapCount(b *testing.B, n int) {
	b.Helper()
	needFiles(b, n)
	data, _ := os.ReadFile("/proc/sys/vm/max_map_count")
	if limit, err := strconv.Atoi(strings.TrimSpace(string(data))); err != nil || limit < n+10000 {
		b.Fatalf("vm.max_map_count is %q: %d mappings need about %d (sysctl -w vm.max_map_count=262144)", data, n, n+10000)
	}
}

// needFiles raises this process's limit of open files (which serve and the beater inherit)
// to what n watched objects need, one pidfd each and the descriptors of a process besides, or
// fails the benchmark, naming the limit.
func needFiles(b *testing.B, n int) {
	b.Helper()
	want := uint64(n + filesBesides)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if lim.Cur >= want {
		return
	}
	lim.Cur, lim.Max = want, max(lim.Max, want)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatalf("RLIMIT_NOFILE: %d watched objects need %d open files, and raising the limit failed: %v (run as root, or ulimit -n %d)",
			n, want, err, want)
	}
}

// cpuTicks returns the user and system time of pid, in clock ticks, from /proc/PID/stat.
func cpuTicks(b *testing.B, pid int) int64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64) // fields 14 and 15 of stat(5), counted from state = 3
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return utime + stime
}

// statusKiB returns the kB fields of /proc/PID/status.
func statusKiB(b *testing.B, pid int) map[string]int64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	m := map[string]int64{}
	for _, l := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if f := strings.Fields(v); ok && len(f) == 2 && f[1] == "kB" {
			m[k], _ = strconv.ParseInt(f[0], 10, 64)
		}
	}
	return m
}
