package monitor

import (
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shmmon/shmmon/shmobj"
)

// TestDirWatch: once verified, a heartbeat skips the stat until the directory watch sees a
// change naming its object, and a chmod, a removal and a replacement made after that are each
// noticed by a Step well before the safety net's verifyEvery.
func TestDirWatch(t *testing.T) {
	name, h := testHeartbeat(t, Options{}, time.Now())
	if h.dir == nil {
		t.Fatal("no directory watch on " + shmobj.Dir)
	}
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	// Our own publish's events may still be on their way: wait until a Step verifies nothing.
	deadline := time.Now().Add(5 * time.Second)
	for h.verifyDue(time.Now()) {
		if time.Now().After(deadline) {
			t.Fatal("every check still verifies 5s after the publish")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range []struct {
		event  string
		change func() error
	}{
		{"object-mode-changed", func() error { return os.Chmod(shmobj.Path(name), 0o640) }},
		{"object-removed", func() error { _, err := shmobj.Remove(name); return err }},
		{"object-replaced", func() error {
			_, err := shmobj.Publish(name, shmobj.PublishOptions{})
			return err
		}},
	} {
		if err := c.change(); err != nil {
			t.Fatal(c.event, err)
		}
		deadline := time.Now().Add(verifyEvery / 2)
		for !strings.Contains(logs.String(), "event="+c.event) {
			if time.Now().After(deadline) {
				t.Fatalf("%s not noticed within %v:\n%s", c.event, verifyEvery/2, logs.String())
			}
			time.Sleep(20 * time.Millisecond)
			h.step(time.Now(), log)
		}
	}
}
