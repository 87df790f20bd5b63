package testkit

import (
	"fmt"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
)

// Load keeps every core busy: perCore busy loops per core, at the default priority, until
// stop is called or the test ends. A worker under SCHED_IDLE (chrt -i 0) next to them waits
// for a CPU nearly all the time: it is starved. stop kills the loops and waits for them; it
// may be called more than once.
//
// Each loop is a bash builtin loop that ends by itself after a minute ($SECONDS), run as the
// test's own child so that it dies with the test binary (see [Start]): timeout(1) would leave
// its child spinning when it is killed itself.
func Load(t testing.TB, perCore int) (stop func()) {
	t.Helper()
	var loops []*Process
	for i := range perCore * runtime.NumCPU() {
		loops = append(loops, Start(t, fmt.Sprintf("busy loop %d", i), exec.Command("bash", "-c", "while [ $SECONDS -lt 60 ]; do :; done")))
	}
	return func() {
		for _, p := range loops {
			p.Kill()
		}
	}
}

// SchedIdle moves every thread of process pid to SCHED_IDLE (idle true) or back to the default
// policy, SCHED_OTHER (chrt -a -p): a worker is started at the default priority, so that it
// starts and beats however busy the machine is, and is starved only while a test wants it.
func SchedIdle(t testing.TB, pid int, idle bool) {
	t.Helper()
	policy := "-o"
	if idle {
		policy = "-i"
	}
	if out, err := exec.Command("chrt", "-a", policy, "-p", "0", strconv.Itoa(pid)).CombinedOutput(); err != nil {
		t.Fatalf("chrt -a %s -p 0 %d: %v\n%s", policy, pid, err, out)
	}
}

// Pin keeps every thread of process pid on the CPU cpu (taskset -a -p -c): a SCHED_IDLE
// worker pinned next to [Load]'s loops cannot slip to a core that happens to be free of them
// for a moment, so it is starved however the other work on the machine comes and goes.
func Pin(t testing.TB, pid, cpu int) {
	t.Helper()
	if out, err := exec.Command("taskset", "-a", "-p", "-c", strconv.Itoa(cpu), strconv.Itoa(pid)).CombinedOutput(); err != nil {
		t.Fatalf("taskset -a -p -c %d %d: %v\n%s", cpu, pid, err, out)
	}
}
