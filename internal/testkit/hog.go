package testkit

import (
	_ "embed"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

//go:embed testdata/hog.py
var hogScript []byte

// Hog returns the path of a Python worker that beats its object while it grows its memory or
// keeps a core busy (see the script's doc: testdata/hog.py), for the tests of resource
// limits; world-readable, so a worker of another user can run it. It needs python3: without it
// the test is skipped, or fails under CI=true (make deps installs it).
func Hog(t testing.TB) string {
	t.Helper()
	_, err := exec.LookPath("python3")
	Require(t, err == nil, "the limit tests' worker needs python3")
	path := filepath.Join(PublicDir(t), "hog.py")
	if err := os.WriteFile(path, hogScript, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}
