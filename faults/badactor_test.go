//go:build faults

package faults

import (
	"testing"

	"github.com/shmmon/shmmon/internal/badactor"
)

// TestBadActors runs every attack of package badactor (another local user against a root
// shmmon) for its trials: no process shmmon did not own may get a signal, shmmon must end
// promptly on SIGTERM, and no healthy worker may be killed.
func TestBadActors(t *testing.T) {
	if len(badactor.Scenarios) == 0 {
		t.Fatal("package badactor registers no scenario")
	}
	for _, s := range badactor.Scenarios {
		t.Run(s.Name, func(t *testing.T) {
			c := newCase(t, s.Name, "0 processes signalled that shmmon did not own, 0 hangs past SIGTERM")
			c.row.Section = sectionBadActor
			o := s.Run(t, s.Trials)
			c.row.Trials, c.row.Signalled, c.row.Hangs, c.row.FalseKills = o.Trials, o.Signalled, o.Hangs, o.FalseKills
			c.row.observe("%s", o.Detail)
			badactor.Check(t, s.Name, o)
		})
	}
}
