package security

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/badactor"
	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/shmobj"
)

// TestWatchPidNotPermitted: `shmmon watch --pid` of a process the caller may not signal (a root
// process, for another user) is refused at once with a usage error, rather than accepted and
// failing when the kill comes; the process is not touched and no object is published.
func TestWatchPidNotPermitted(t *testing.T) {
	u := testkit.NewUser(t)
	v := badactor.StartVictim(t)
	name := testkit.Name(t, "ba-cli")
	t.Cleanup(func() { shmobj.Remove(name) })
	began := time.Now()
	cmd := u.Command(testkit.Shmmon(t), "watch", "--name", name, "--pid", strconv.Itoa(v.Pid()), "--interval", "100ms")
	p := testkit.Start(t, "shmmon watch as "+u.Name, cmd)
	st := p.Wait(t, 5*time.Second)
	if st.ExitCode() != 2 || time.Since(began) > 2*time.Second {
		t.Errorf("watch --pid of a root process, as %s: %v after %v; want exit 2 at once", u, st, time.Since(began).Round(time.Millisecond))
	}
	if msg := p.Stderr.String(); !strings.Contains(msg, "may not signal") || strings.Count(msg, "\n") != 1 {
		t.Errorf("want one line saying the user may not signal it, got %q", msg)
	}
	if hit, what := v.Hit(); hit {
		t.Errorf("the root process was touched: %s", what)
	}
	if _, err := os.Stat(shmobj.Path(name)); err == nil {
		t.Errorf("%s was published by a refused watch", shmobj.Path(name))
	}
}
