package main

import (
	"os"
	"testing"

	"github.com/shmmon/shmmon/internal/testkit"
)

// TestMain removes what testkit made for the whole test binary (the shmmon build the tests of
// top and of the status page run).
func TestMain(m *testing.M) {
	code := m.Run()
	testkit.Cleanup()
	os.Exit(code)
}
