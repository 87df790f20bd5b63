package config

import (
	"slices"
	"testing"

	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/proc"
)

// TestLimitKeys: the resource keys are read by their owners' types, inherited from
// [defaults], and handed to the monitor (memory_max, cpu_max) and the supervisor (pids_max,
// the rlimits, in the order nofile, core, nproc).
func TestLimitKeys(t *testing.T) {
	f, err := parse(`
[defaults]
memory_max = "512MiB"
cpu_max = "150%"
limit_core = 0

[[worker]]
name = "w"
command = ["bin/w"]
pids_max = 64
limit_nofile = "1024:4096"
limit_nproc = "unlimited"
cgroup = false
on_limit = "echo over"

[[worker]]
name = "v"
pid = 4242
memory_max = 1048576
`)
	if err != nil {
		t.Fatal(err)
	}
	w, v := f.Workers[0], f.Workers[1]
	if have := w.MonitorOptions().Limits; have != (monitor.Limits{MemoryMax: 512 << 20, CPUMax: 1500}) {
		t.Errorf("w's limits %+v", have)
	}
	so := w.SupervisorOptions()
	want := []proc.Rlimit{{Resource: proc.Nofile, Limit: proc.Limit{Soft: 1024, Hard: 4096}},
		{Resource: proc.Core, Limit: proc.Limit{}}, {Resource: proc.Nproc, Limit: proc.Limit{Soft: proc.Unlimited, Hard: proc.Unlimited}}}
	if so.PidsMax != 64 || !slices.Equal(so.Rlimits, want) || w.Cgroup || w.OnLimit != "echo over" {
		t.Errorf("w: pids %d, rlimits %v, cgroup %v, on_limit %q", so.PidsMax, so.Rlimits, w.Cgroup, w.OnLimit)
	}
	if have := v.MonitorOptions().Limits; have != (monitor.Limits{MemoryMax: 1 << 20, CPUMax: 1500}) || v.LimitCore != nil || v.Cgroup {
		t.Errorf("the watched worker: limits %+v, core %v, cgroup %v (supervision keys do not apply)", have, v.LimitCore, v.Cgroup)
	}
	if !f.Defaults.Cgroup {
		t.Error("cgroup is not on by default")
	}
	o := w
	o.OnLimit = "other"
	if !w.EqualExceptLive(o) || w.Equal(o) {
		t.Error("on_limit is not a hook (a change of it alone would restart the worker)")
	}
}

// TestLimitValues: each bad value is one problem naming the key, the value as written and
// what is accepted.
func TestLimitValues(t *testing.T) {
	for _, tt := range []struct{ head, line, key, msg string }{
		{supervisedHead, `memory_max = "lots"`, `worker "w" memory_max`, `"lots" is not a size (want a whole number and a unit`},
		{supervisedHead, `memory_max = -1`, `worker "w" memory_max`, `-1 must not be negative (want 0 (no limit) or a size)`},
		{supervisedHead, `cpu_max = 150`, `worker "w" cpu_max`, `got integer 150 (want a percentage of one core, e.g. "150%" or "12.5%")`},
		{supervisedHead, `cpu_max = "1.55%"`, `worker "w" cpu_max`, `"1.55%" is not a share of a core`},
		{supervisedHead, `pids_max = -1`, `worker "w" pids_max`, `-1 is out of range (want 0 (no limit) or 1 to 4194304)`},
		{supervisedHead, `limit_nofile = "4096:1024"`, `worker "w" limit_nofile`, `"4096:1024" has a soft limit above the hard one`},
		{supervisedHead, `limit_core = -1`, `worker "w" limit_core`, `-1 is not a resource limit (want "SOFT:HARD" or one number`},
		{supervisedHead, `limit_nproc = true`, `worker "w" limit_nproc`, `got boolean true (want "SOFT:HARD"`},
		{supervisedHead, `cgroup = "no"`, `worker "w" cgroup`, `got string "no" (want true or false)`},
		{watchedHead, `pids_max = 10`, `worker "w" pids_max`, `only allowed in a supervised worker`},
		{watchedHead, `cgroup = false`, `worker "w" cgroup`, `only allowed in a supervised worker`},
	} {
		t.Run(tt.line, func(t *testing.T) { checkOneProblem(t, tt.head+tt.line+"\n", tt.line, tt.key, tt.msg) })
	}
}
