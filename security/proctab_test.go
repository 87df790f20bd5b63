package security

import (
	"testing"

	"github.com/shmmon/shmmon/internal/badactor"
)

// proctabScenario returns the scenario of package badactor called name.
func proctabScenario(t *testing.T, name string) badactor.Scenario {
	t.Helper()
	for _, s := range badactor.Scenarios {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no scenario %q in package badactor", name)
	return badactor.Scenario{}
}

// TestProctabForgedRecord is path 1: a record another user writes into a 0666 process table,
// naming a root process with an old heartbeat (or a bad record naming a process that has the
// table attached), never gets that process signalled by checkproc or serve's sweep.
func TestProctabForgedRecord(t *testing.T) {
	s := proctabScenario(t, "forged process-table record")
	badactor.Check(t, s.Name, s.Run(t, 1))
}

// TestProctabZeroedSemaphore is path 2: another user setting the table's semaphore to 0
// neither blocks checkproc or serve forever nor keeps SIGTERM from ending them.
func TestProctabZeroedSemaphore(t *testing.T) {
	s := proctabScenario(t, "zeroed semaphore")
	badactor.Check(t, s.Name, s.Run(t, 1))
}
