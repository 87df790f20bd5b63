package security

import (
	"strings"
	"testing"

	"github.com/shmmon/shmmon/internal/badactor"
)

// TestScenarios runs one trial of every attack of package badactor, each a subtest named as
// its scenario, and fails on any process signalled that shmmon did not own, hang past SIGTERM
// or healthy worker killed (badactor.Check). The attacks, by the path of the security issue:
//
//  1. a record another user writes into a 0666 process table, naming a root process with an
//     old heartbeat (or a bad record naming a process that has the table attached), never gets
//     that process signalled by checkproc or serve's sweep;
//  2. another user setting the table's semaphore to 0 neither blocks checkproc or serve
//     forever nor keeps SIGTERM from ending them;
//  3. pidfiles another user owns, or could replace, naming root processes are refused and
//     logged;
//  4. an object another user planted, naming a root process that looks like the worker, or
//     beaten from a process of the attacker's that looks like it, is not adopted, and that
//     process is left alone;
//  5. another user registering a worker's name on the TCP watchdog, as its receiver or its
//     feeder, and forwarding with a forged source, gets nothing, and the real client is never
//     killed;
//  6. a FIFO planted as a pidfile, swapped in for serve's config, or planted at an object's
//     name blocks nothing (a start, a reload, a SIGTERM), and a monitor that may not replace
//     the FIFO says whose it is.
func TestScenarios(t *testing.T) {
	badactor.Each(t, func(t *testing.T, s badactor.Scenario) {
		o := s.Run(t, 1)
		badactor.Check(t, s.Name, o)
		if check := moreChecks[s.Name]; check != nil {
			check(t, o)
		}
	})
}

// moreChecks are what some scenarios check beyond badactor.Check, by scenario name.
var moreChecks = map[string]func(t *testing.T, o badactor.Outcome){
	badactor.PlantedFIFO.Name: func(t *testing.T, o badactor.Outcome) {
		if !strings.Contains(o.Detail, "watch as another user: exit status 1") || !strings.Contains(o.Detail, "belongs to uid") {
			t.Errorf("another user's watch did not fail with an error naming the FIFO's owner: %s", o.Detail)
		}
	},
}
