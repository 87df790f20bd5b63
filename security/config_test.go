package security

import "testing"

// TestFIFOConfig: a FIFO swapped in for serve's config fails the reloads at once, whether a
// change or a SIGHUP caused them, and SIGTERM still ends serve promptly (path 6).
func TestFIFOConfig(t *testing.T) { checkOneTrial(t, "FIFO config") }
