package config

import (
	"syscall"
	"testing"
	"time"

	"github.com/shmmon/shmmon/monitor"
)

// TestStarvedMaxKey: starved_max is read by the monitor's rule: a duration, inherited from
// [defaults]; "0s" turns the starvation rule off; unset is the monitor's default. on_starved
// is a hook.
func TestStarvedMaxKey(t *testing.T) {
	f, err := parse(`
[defaults]
starved_max = "30s"

[[worker]]
name = "a"
command = ["bin/a"]
on_starved = "echo starved"

[[worker]]
name = "b"
command = ["bin/b"]
starved_max = "0s"

[[worker]]
name = "c"
pid = 4242
interval = "2s"
starved_max = "1m"
`)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []time.Duration{30 * time.Second, monitor.StarvationOff, time.Minute} {
		if have := f.Workers[i].MonitorConfig().WithDefaults().StarvedMax; have != want {
			t.Errorf("worker %s: starved_max %v, want %v", f.Workers[i].Name, have, want)
		}
	}
	if f.Workers[0].OnStarved != "echo starved" {
		t.Errorf("on_starved %q", f.Workers[0].OnStarved)
	}
	g, err := parse(supervisedHead + "interval = \"2s\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if have := g.Workers[0].MonitorConfig().WithDefaults().StarvedMax; have != 20*time.Second {
		t.Errorf("default starved_max at interval 2s: %v, want 20s (10 intervals)", have)
	}
}

func TestStarvedMaxBad(t *testing.T) {
	for _, c := range []struct{ line, msg string }{
		{`starved_max = "-1s"`, `"-1s" must not be negative`},
		{`starved_max = "soon"`, `"soon" is not a duration`},
	} {
		t.Run(c.line, func(t *testing.T) {
			checkOneProblem(t, supervisedHead+c.line+"\n", c.line, `worker "w" starved_max`, c.msg)
		})
	}
}

// TestDumpKeys: dump_signal and dump_wait reach the supervisor; dump_wait must be more than 0.
func TestDumpKeys(t *testing.T) {
	f, err := parse(supervisedHead + "dump_signal = \"QUIT\"\ndump_wait = \"1s\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if so := f.Workers[0].SupervisorOptions(); so.DumpSignal != syscall.SIGQUIT || so.DumpWait != time.Second {
		t.Errorf("dump signal %v, wait %v; want SIGQUIT, 1s", so.DumpSignal, so.DumpWait)
	}
	checkOneProblem(t, supervisedHead+"dump_wait = \"0s\"\n", `dump_wait = "0s"`, `worker "w" dump_wait`, `"0s" must be more than 0`)
	checkOneProblem(t, supervisedHead+"dump_signal = \"NOPE\"\n", `dump_signal = "NOPE"`, `worker "w" dump_signal`, `is not a signal`)
}
