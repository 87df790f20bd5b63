package testkit

import (
	"os/user"
	"strconv"
	"strings"
	"testing"
)

// TestNewUser: the account exists while the test runs, a command runs as it, and it is gone
// after the test's cleanups.
func TestNewUser(t *testing.T) {
	var name string
	t.Run("user", func(t *testing.T) {
		u := NewUser(t)
		name = u.Name
		out, err := u.Run("/usr/bin/id", "-u")
		if err != nil {
			t.Fatalf("id -u as %s: %v: %s", u, err, out)
		}
		if got := strings.TrimSpace(out); got != strconv.FormatUint(uint64(u.Uid), 10) {
			t.Errorf("id -u as %s printed %q", u, got)
		}
		g := NewGroup(t)
		u.Join(t, g)
		out, err = u.Run("/usr/bin/id", "-G")
		if err != nil || !strings.Contains(out, strconv.FormatUint(uint64(g.Gid), 10)) {
			t.Errorf("id -G as %s after joining %s: %q, %v", u, g.Name, out, err)
		}
	})
	if name == "" {
		return // skipped
	}
	if _, err := user.Lookup(name); err == nil {
		t.Errorf("user %s still exists after its test ended", name)
	}
}
