package security

import (
	"testing"

	"github.com/shmmon/shmmon/internal/badactor"
)

// TestForeignPidfile: pidfiles another user owns, or could replace, naming root processes are
// refused and logged; no process is signalled (path 3 of the issue).
func TestForeignPidfile(t *testing.T) { checkOneTrial(t, "foreign pidfile") }

// TestFIFOPidfile: a FIFO planted as a pidfile neither blocks serve's start nor its SIGTERM
// (path 6).
func TestFIFOPidfile(t *testing.T) { checkOneTrial(t, "FIFO pidfile") }

// checkOneTrial runs one trial of the scenario called name and checks its outcome.
func checkOneTrial(t *testing.T, name string) {
	t.Helper()
	for _, s := range badactor.Scenarios {
		if s.Name == name {
			badactor.Check(t, name, s.Run(t, 1))
			return
		}
	}
	t.Fatalf("no scenario %q in package badactor", name)
}
