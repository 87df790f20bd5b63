package httpapi

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shmmon/shmmon/config"
	"github.com/shmmon/shmmon/fleet"
	"github.com/shmmon/shmmon/shmobj"
)

const alertsDir = "../contrib/prometheus"

// TestAlertRulesNames checks that every shmmon metric the shipped alert rules use is one this
// package exports.
func TestAlertRulesNames(t *testing.T) {
	rules, err := os.ReadFile(alertsDir + "/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s := New(fakeSource{ws: []fleet.WorkerStatus{{Worker: config.Worker{Name: "w"}, Snapshot: shmobj.Snapshot{HasRecord: true,
		Record: shmobj.Record{State: shmobj.StateOK, LastProgress: now.UnixNano()}}}}})
	s.ObserveCheck("w", time.Millisecond)
	fams, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range fams {
		exported[f.GetName()] = true
	}
	used := regexp.MustCompile(`\bshmmon_[a-z_]+`).FindAllString(string(rules), -1)
	if len(used) < 5 {
		t.Fatalf("the rules use only %q", used)
	}
	for _, name := range used {
		base := name
		for _, suffix := range []string{"_count", "_sum", "_bucket"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && exported[b] {
				base = b
			}
		}
		if !exported[base] {
			t.Errorf("alerts.yml uses %s, which shmmon does not export", name)
		}
	}
}

// TestAlertRulesPromtool checks the rules with promtool (Debian package prometheus; `make
// deps` installs it) and runs their unit tests, alerts_test.yml.
func TestAlertRulesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is missing (run make deps: apt-get install prometheus)")
		}
		t.Skip("promtool is missing (apt-get install prometheus, or make deps); CI=true makes this a failure")
	}
	for _, args := range [][]string{
		{"check", "rules", alertsDir + "/alerts.yml"},
		{"test", "rules", alertsDir + "/alerts_test.yml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
