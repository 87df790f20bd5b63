package httpapi

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shmmon/shmmon/fleet"
	"github.com/shmmon/shmmon/proctab"
	"github.com/shmmon/shmmon/sched"
	"github.com/shmmon/shmmon/shmobj"
	"github.com/shmmon/shmmon/view"
)

// The worker metrics; see the package doc.
var (
	labels   = []string{"name", "kind"}
	descUp   = prometheus.NewDesc("shmmon_worker_up", "1 while the worker runs and is judged alive (state waiting, ok, stalled or starved), else 0.", labels, nil)
	descSeq  = prometheus.NewDesc("shmmon_worker_sequence", "Last heartbeat sequence in the worker's object (it starts over when the worker restarts).", labels, nil)
	descStl  = prometheus.NewDesc("shmmon_worker_stalls", "Consecutive checks that found the worker's sequence unchanged.", labels, nil)
	descSt   = prometheus.NewDesc("shmmon_worker_state", "1 for the worker's current state, 0 for the others.", append(labels, "state"), nil)
	descAge  = prometheus.NewDesc("shmmon_worker_last_progress_seconds", "Seconds since the worker's sequence last moved (absent before its first beat).", labels, nil)
	descLate = prometheus.NewDesc("shmmon_worker_check_late", "1 when the worker's monitor loop should be checking but missed its deadline (as /healthz reports), else 0.", labels, nil)
	descStr  = prometheus.NewDesc("shmmon_worker_starts_total", "Starts of the worker's program, adoptions and restarts included, since serve began supervising it.", labels, nil)
	descRst  = prometheus.NewDesc("shmmon_worker_restarts_total", "Starts of the worker's program after the first, since serve began supervising it.", labels, nil)
	descKil  = prometheus.NewDesc("shmmon_worker_kills_total", "Kills of the worker for hanging, since serve began watching it.", labels, nil)
	descMem  = prometheus.NewDesc("shmmon_worker_memory_bytes", "Resident memory of the worker's processes (its cgroup's, else its process tree's) at its last limit check; only for a worker with memory_max or cpu_max.", labels, nil)
	descCPU  = prometheus.NewDesc("shmmon_worker_cpu_ratio", "CPU of the worker's processes in cores (1.5 = 150% of one core) over its last stalls intervals; only for a worker with memory_max or cpu_max.", labels, nil)
	descLim  = prometheus.NewDesc("shmmon_worker_limit_kills_total", "Runs of the worker stopped for going over memory_max or cpu_max, since serve began watching it.", labels, nil)
	descStv  = prometheus.NewDesc("shmmon_worker_starved_seconds_total", "Seconds of the worker's stalls not counted because it waited for a CPU (the starvation rule), since serve began watching it.", labels, nil)
	descPSI  = prometheus.NewDesc("shmmon_host_cpu_pressure_ratio", "Share of the last 10 s in which some runnable task waited for a CPU (/proc/pressure/cpu, some avg10, 0 to 1); absent without PSI.", nil, nil)
	descOOM  = prometheus.NewDesc("shmmon_worker_oom_kills_total", "Processes the kernel's OOM killer killed in the worker's cgroup, since serve began watching it.", labels, nil)
	descDrop = prometheus.NewDesc("shmmon_worker_log_dropped_bytes_total",
		"Bytes of the worker's output its log file dropped (the disk slower than the program, or failing), since serve began supervising it; only for workers with a log.", labels, nil)

	descLockTimeouts = prometheus.NewDesc("shmmon_proctab_lock_timeouts_total",
		"Passes over the System V process table skipped because its lock was not free within "+proctab.LockTimeout.String()+".", nil, nil)
)

// states are the values of the state label, in the order of shmobj's states.
var states = func() []shmobj.State {
	var s []shmobj.State
	for st := shmobj.StateUnknown; st <= shmobj.LastState; st++ {
		s = append(s, st)
	}
	return s
}()

// workerCollector reads the workers' metrics from the source at each scrape.
type workerCollector struct{ s *Server }

func (c workerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descSeq, descStl, descSt, descAge, descLate, descStr, descRst, descKil,
		descMem, descCPU, descLim, descOOM, descStv, descPSI, descDrop, descLockTimeouts} {
		ch <- d
	}
}

func (c workerCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.s.now()
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	counter := func(d *prometheus.Desc, v uint64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
	}
	stateSeries := func(cur shmobj.State, lv ...string) {
		for _, st := range states {
			gauge(descSt, b2f(st == cur), append(lv, st.String())...)
		}
	}
	for _, ws := range c.s.src.Status() {
		lv := []string{ws.Worker.Name, kind(ws)}
		st := state(ws)
		gauge(descUp, b2f(ws.Err == nil && up(st)), lv...)
		stateSeries(st, lv...)
		gauge(descLate, b2f(ws.Late(now)), lv...)
		counter(descStr, ws.Starts, lv...)
		counter(descRst, ws.Restarts, lv...)
		counter(descKil, ws.Kills, lv...)
		counter(descLim, ws.LimitKills, lv...)
		counter(descOOM, ws.OOMKills, lv...)
		ch <- prometheus.MustNewConstMetric(descStv, prometheus.CounterValue, ws.Starved.Seconds(), lv...)
		if !ws.Measured.IsZero() {
			gauge(descMem, float64(ws.Memory), lv...)
		}
		if ws.CPUKnown {
			gauge(descCPU, ws.CPU, lv...)
		}
		if ws.Worker.Log != "" {
			counter(descDrop, uint64(ws.LogDropped), lv...)
		}
		if ws.Err != nil {
			continue
		}
		gauge(descSeq, float64(ws.Snapshot.Seq), lv...)
		if r := ws.Snapshot.Record; ws.Snapshot.HasRecord {
			gauge(descStl, float64(r.Stalls), lv...)
			if r.LastProgress != 0 {
				gauge(descAge, now.Sub(time.Unix(0, r.LastProgress)).Seconds(), lv...)
			}
		}
	}
	if p := sched.Pressure(0); p.HostKnown {
		gauge(descPSI, p.Host/100)
	}
	if pt := c.s.src.ProctabHealth(); pt.Sweeping {
		ch <- prometheus.MustNewConstMetric(descLockTimeouts, prometheus.CounterValue, float64(pt.LockTimeouts))
	}
	// The process table may hold several records of one name (instances of a service):
	// the second and later get their slot in the name, so every series stays unique.
	recs, _ := c.s.src.ProctabRecords()
	seen := map[string]bool{}
	for _, r := range recs {
		name := r.Name
		if seen[name] {
			name = fmt.Sprintf("%s[%d]", r.Name, r.Slot)
		}
		seen[name] = true
		lv := []string{name, "proctab"}
		st := view.RecordState(view.Record(r, now))
		gauge(descUp, b2f(up(st)), lv...)
		stateSeries(st, lv...)
		gauge(descAge, now.Sub(r.Atime).Seconds(), lv...)
	}
}

// kind is how the worker's beats arrive, from its record: shm when it has none yet (as
// package view says it).
func kind(ws fleet.WorkerStatus) string {
	if ws.Snapshot.HasRecord {
		return ws.Snapshot.Record.Kind.String()
	}
	return shmobj.KindShm.String()
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
