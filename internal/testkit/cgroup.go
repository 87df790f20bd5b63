package testkit

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// EnvCgroupControllers is how CI declares the cgroup v2 controllers its host offers shmmon's
// workers ("memory pids", or "none"), which no package can install: under CI=true, a test that
// needs a controller the host lacks fails unless this variable, set in .ci/run, says the host
// has none of it; then the test is skipped, with the declaration in its reason.
const EnvCgroupControllers = "SHMMON_CGROUP_CONTROLLERS"

// RequireController skips the test unless the controller name is among have (the controllers
// enabled for the workers' cgroups). Under CI=true it fails instead, unless
// [EnvCgroupControllers] declares the host without it.
func RequireController(t testing.TB, have []string, name string) {
	t.Helper()
	if slices.Contains(have, name) {
		return
	}
	why := "the cgroup " + name + " controller is not enabled for shmmon's workers here (enabled: " + strings.Join(have, " ") + ")"
	declared, set := os.LookupEnv(EnvCgroupControllers)
	if InCI() && set && !slices.Contains(strings.Fields(declared), name) {
		t.Skipf("%s; CI declares this host without it (%s=%q)", why, EnvCgroupControllers, declared)
	}
	Require(t, false, why)
}
