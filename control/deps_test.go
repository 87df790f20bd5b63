package control_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
)

// stopOrder returns the workers in the order the record file says they got SIGTERM, and
// whether each got it only after the one before had exited.
func stopOrder(t *testing.T, file string) (order []string, waited bool) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	waited = true
	lastExit := ""
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			t.Fatalf("record line %q", l)
		}
		switch f[1] {
		case "term":
			if len(order) > 0 && lastExit != order[len(order)-1] {
				waited = false
			}
			order = append(order, f[0])
		case "exit":
			lastExit = f[0]
		}
	}
	return order, waited
}

// TestDependencyStops: a chain a <- b (after a) <- c (after b) under a real serve: shmmon ctl
// stop of the three, named in any order, stops c, then b, then a, each once the one before
// has ended; so does serve's SIGTERM.
func TestDependencyStops(t *testing.T) {
	n := names(t, 3)
	a, b, c := n[0], n[1], n[2]
	rec := filepath.Join(t.TempDir(), "record")
	t.Setenv(envRec, rec)
	s := startServe(t, head+workerConf(t, a, "trace")+workerConf(t, b, "trace", fmt.Sprintf("after = [%q]", a))+
		workerConf(t, c, "trace", fmt.Sprintf("after = [%q]", b)))
	for _, w := range n {
		testkit.WaitBeating(t, 20*time.Second, w, 0)
	}
	code, out, errOut := ctl(t, s.control, "stop", a, b, c)
	if code != 0 {
		t.Fatalf("ctl stop: exit %d, %s %s", code, out, errOut)
	}
	if order, waited := stopOrder(t, rec); strings.Join(order, " ") != strings.Join([]string{c, b, a}, " ") || !waited {
		t.Errorf("ctl stop %s %s %s stopped %q (each after the last exited: %v); want c, b, a, each after the last", a, b, c, order, waited)
	}
	if i, j := strings.Index(out, c+":"), strings.Index(out, a+":"); i < 0 || j < i {
		t.Errorf("ctl stop's answer does not list c before a:\n%s", out)
	}
	if code, out, errOut := ctl(t, s.control, "start", a, b, c); code != 0 {
		t.Fatalf("ctl start: exit %d, %s %s", code, out, errOut)
	}
	for _, w := range n {
		testkit.WaitBeating(t, 20*time.Second, w, 0)
	}
	os.Remove(rec)
	s.Terminate(t, 30*time.Second)
	if order, waited := stopOrder(t, rec); strings.Join(order, " ") != strings.Join([]string{c, b, a}, " ") || !waited {
		t.Errorf("serve's SIGTERM stopped %q (each after the last exited: %v); want c, b, a, each after the last", order, waited)
	}
}
