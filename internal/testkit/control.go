package testkit

import (
	"fmt"
	"os"
	"path/filepath"
)

// controlEnv is control.EnvPath, written out: importing package control (which imports
// proc) would make an import cycle of proc's tests, which use testkit.
const controlEnv = "SHMMON_CONTROL"

// ControlPath is the control socket of every serve the test binary starts (and of the shmmon
// ctl it runs), unless a test names its own: $SHMMON_CONTROL, set when the package is loaded
// (see control.DefaultPath) to a path of this test binary's. Without it, the tests' serves
// would all take the host's default, /run/shmmon/control.sock as root: refused while a real
// serve answers there, and refusing each other when test binaries run at once. A test
// binary started by another (a worker) keeps the one it inherited. [Cleanup] removes a socket
// left at it.
var ControlPath = func() string {
	if p := os.Getenv(controlEnv); p != "" {
		return p
	}
	p := filepath.Join(os.TempDir(), fmt.Sprintf("shmmon-test-%d.sock", os.Getpid()))
	os.Setenv(controlEnv, p)
	ownControl = true
	return p
}()

// ownControl says ControlPath is this test binary's own, for Cleanup to remove.
var ownControl bool
