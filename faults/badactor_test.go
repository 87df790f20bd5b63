//go:build faults

package faults

import (
	"testing"

	"github.com/shmmon/shmmon/internal/badactor"
)

// TestBadActors runs every attack of package badactor (another local user against a root
// shmmon) for its trials: no process shmmon did not own may get a signal, shmmon must end
// promptly on SIGTERM, and no healthy worker may be killed. The scenarios run in parallel
// (each has its own attacker, victims, table, objects and control socket).
func TestBadActors(t *testing.T) {
	t.Parallel()
	badactor.Each(t, func(t *testing.T, s badactor.Scenario) {
		t.Parallel()
		c := newCase(t, s.Name, "0 processes signalled that shmmon did not own, 0 hangs past SIGTERM")
		c.row.Section = sectionBadActor
		o := s.Run(t, s.Trials)
		c.row.Trials, c.row.Signalled, c.row.Hangs, c.row.FalseKills = o.Trials, o.Signalled, o.Hangs, o.FalseKills
		c.row.observe("%s", o.Detail)
		badactor.Check(t, s.Name, o)
	})
}
