package testkit

import (
	"fmt"
	"os/exec"
	"runtime"
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
