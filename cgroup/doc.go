// Package cgroup gives each supervised worker a cgroup (v2) of its own, so that the end of a
// worker ends every process it started, those that left its process group (setsid) too, and
// so that its memory and processes can be limited by the kernel.
//
// [Open] finds the cgroup v2 hierarchy (the cgroup2 mount in /proc/self/mountinfo:
// /sys/fs/cgroup on current distributions, /sys/fs/cgroup/unified on hybrid hosts) and the
// monitor's own cgroup there (/proc/self/cgroup), and makes the workers' parent below it,
// OWN/shmmon. That needs the monitor to own its cgroup: it is the root of the hierarchy (a host,
// or a container's cgroup namespace), or a cgroup delegated to it (systemd's Delegate=yes,
// which marks it with the extended attribute trusted.delegate or user.delegate). Anything else
// — no v2 hierarchy, a cgroup not delegated, no permission, a kernel without cgroup.kill
// (before Linux 5.14) — is an error matching [ErrUnavailable] that says why: the monitor then
// uses process groups alone. [Setup] is Open for serve and run: it logs once what their
// workers get.
//
// Controllers: the memory and pids controllers are enabled for the workers' cgroups when the
// monitor's cgroup offers them. In a delegated cgroup shmmon enables them itself, moving
// itself first into the leaf OWN/monitor when it is the only process there (the kernel lets a
// cgroup with processes of its own hand no controller to its children: the layout systemd's
// delegation documentation asks for). A monitor that finds itself in OWN/monitor (it, or a
// previous monitor, moved there; or systemd's DelegateSubgroup=monitor put it there) takes
// OWN for its own. The root of a hierarchy is left as the host set it: what its
// cgroup.subtree_control enables is what the workers get. [Manager.Controllers] says which
// are enabled.
//
// A [Group] is one worker's cgroup, OWN/shmmon/NAME, for one run of its program: the program
// starts in it (CLONE_INTO_CGROUP through syscall.SysProcAttr.UseCgroupFD, or, where clone3
// is not available, by joining it before its exec: see proc.ChildOptions.Cgroup); memory.max
// and pids.max are set when those controllers are enabled (memory.oom.group too, so that an
// OOM kill ends the whole worker rather than one of its processes); its usage is read from
// memory.current and cpu.stat (or the members' /proc entries, without the memory controller),
// its OOM kills from memory.events; and at the end of the run [Group.Remove] kills what is left
// in it (cgroup.kill) and removes it. A cgroup is made by root (or the delegated user) only,
// and only shmmon puts processes into OWN/shmmon, so what is found in a worker's cgroup is
// that worker's: a restarted monitor finds an adopted worker's cgroup again ([Manager.Find]),
// and kills what a previous run left in one ([Manager.Create]).
package cgroup
