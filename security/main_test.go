package security

import (
	"os"
	"testing"

	"github.com/shmmon/shmmon/internal/badactor"
	"github.com/shmmon/shmmon/internal/testkit"
)

// TestMain lets the test binary be the attacker and the victim of the scenarios (see package
// badactor).
func TestMain(m *testing.M) {
	if code, ok := badactor.Main(); ok {
		os.Exit(code)
	}
	code := m.Run()
	testkit.Cleanup()
	os.Exit(code)
}
