package security

import (
	"testing"

	"github.com/shmmon/shmmon/internal/badactor"
)

// TestTCPWatchdogTakeover: another user registering a worker's name on the TCP watchdog, as
// its receiver or its feeder, and forwarding with a forged source, gets nothing, and the real
// client is never killed (path 5 of the issue).
func TestTCPWatchdogTakeover(t *testing.T) {
	const name = "TCP watchdog takeover"
	for _, s := range badactor.Scenarios {
		if s.Name == name {
			badactor.Check(t, name, s.Run(t, 1))
			return
		}
	}
	t.Fatalf("no scenario %q", name)
}
