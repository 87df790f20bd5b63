// Package httpapi is the HTTP endpoint of `shmmon serve`: what operators and Prometheus see.
//
//	GET /          the status page: the workers worst first (state, supervision, beats per second
//	               and a sparkline of the last minute, stalls, kills, restarts), a hung or killed
//	               worker highlighted, and the events seen since it was opened; one page embedded in
//	               the binary, refreshed from /status every second, loading nothing from elsewhere,
//	               read-only (actions are the control socket's, which checks who asks)
//	GET /metrics   Prometheus exposition (text or protobuf, as the scraper asks) of every
//	               worker, the monitor's checks and reloads, and the Go and process collectors
//	GET /status    JSON: every worker's status record and the fleet's books ([Status])
//	GET /healthz   200 while every worker loop that should be checking checks on time and the
//	               last pass over the process table (if serve sweeps one) swept it, else 503
//	               naming the late workers and why the table's sweep fails ([Health])
//	GET /healthz/NAME  200 while the worker NAME runs or is being restarted within its limits,
//	               503 once it is down for good (given up, restart "never" or "on-failure" after
//	               a failed run, stopped by shmmon ctl), 404 for a name serve does not have
//	               ([WorkerHealth]): a Kubernetes liveness probe per worker
//	GET /readyz    200 while every worker is ready (its run said READY=1 or beat; a periodic job
//	               always counts), else 503 naming the others ([Readiness]): a readiness probe
//
// The worker metrics are read when scraped, from [fleet.Fleet.Status] (and the System V
// process table the fleet sweeps, as kind "proctab"); each series has the labels name (the
// worker) and kind (shm, notify, socket: how its beats arrive; proctab: a record of the
// process table):
//
//	shmmon_worker_up                     1 while the worker runs and is judged alive (state waiting, ok, stalled or starved)
//	shmmon_worker_sequence               last heartbeat sequence in the worker's object
//	shmmon_worker_stalls                 consecutive checks without progress
//	shmmon_worker_state{state}           1 for the worker's state, 0 for the others
//	shmmon_worker_last_progress_seconds  seconds since the sequence last moved (absent before the first beat)
//	shmmon_worker_check_late             1 when the worker's loop should check but missed its deadline
//	shmmon_worker_starts_total           starts (and adoptions) of a supervised worker's program
//	shmmon_worker_restarts_total         starts after the first
//	shmmon_worker_kills_total            kills of the worker for hanging
//	shmmon_worker_limit_kills_total      runs stopped for going over memory_max or cpu_max
//	shmmon_worker_oom_kills_total        processes the kernel's OOM killer killed in the worker's cgroup
//	shmmon_worker_starved_seconds_total  seconds of stalls not counted because the worker waited for a CPU (package sched)
//	shmmon_host_cpu_pressure_ratio       share of the last 10 s some runnable task waited for a CPU (/proc/pressure/cpu)
//	shmmon_worker_memory_bytes           resident memory of its processes at the last limit check (limited workers)
//	shmmon_worker_cpu_ratio              CPU of its processes in cores over stalls intervals (limited workers)
//	shmmon_worker_log_dropped_bytes_total  bytes of output its log file dropped (workers with a log)
//
// The counters count the events this serve saw since it began supervising the worker (a
// reload that restarts a worker keeps them); they start over when serve restarts, as
// Prometheus counters may. The monitor's own:
//
//	shmmon_check_duration_seconds        histogram of one check of one worker (every worker has
//	                                     its own loop: verify the object, read and judge the sequence)
//	shmmon_config_reloads_total{result}  reloads of the config file, result "success" or "failure"
//	shmmon_proctab_lock_timeouts_total   passes over the process table skipped because its lock was
//	                                     not free within 3s (only while serve sweeps a table)
//
// Reading the process table takes its lock, which anyone who may write the table can keep
// from being free: /status and /metrics then answer after at most proctab.LockTimeout, the
// table's part replaced by its error (proctab_error in /status; no proctab series in
// /metrics), and /healthz, which takes no lock, reports the sweep's trouble.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/shmmon/shmmon/fleet"
	"github.com/shmmon/shmmon/proctab"
)

// Source is what the endpoint reports on; [*fleet.Fleet] is one.
type Source interface {
	// Status returns every worker, sorted by name.
	Status() []fleet.WorkerStatus
	// ProctabRecords returns the records of the process table the source sweeps; nil and
	// no error when it sweeps none.
	ProctabRecords() ([]proctab.Record, error)
	// ProctabHealth tells how the sweep of that table goes, without blocking.
	ProctabHealth() fleet.ProctabHealth
}

// Server serves the endpoints of the package doc. Create it with [New].
type Server struct {
	src     Source
	reg     *prometheus.Registry
	checks  prometheus.Histogram
	reloads *prometheus.CounterVec
	mux     *http.ServeMux
	now     func() time.Time
	// How long a client may take to send a request's header, and keep a connection idle
	// between requests; a test shortens them.
	headerTimeout, idleTimeout time.Duration
}

// The connection limits of [Server.Serve].
const (
	headerTimeout = 10 * time.Second
	idleTimeout   = 2 * time.Minute
)

// New returns a Server reporting on src, with a registry of its own (the worker collector,
// the check histogram, the reload counter, and the Go and process collectors).
func New(src Source) *Server {
	s := &Server{
		src: src,
		reg: prometheus.NewRegistry(),
		checks: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "shmmon_check_duration_seconds",
			Help: "Duration of one check of one worker's heartbeat (each worker has its own loop: verify the object, read and judge the sequence).",
			// A check is a stat and a few atomic loads: microseconds, unless the machine is starved.
			Buckets: prometheus.ExponentialBuckets(10e-6, 4, 10),
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shmmon_config_reloads_total",
			Help: "Reloads of the config file, by result: success (applied) or failure (invalid or missing; the running config stays).",
		}, []string{"result"}),
		mux: http.NewServeMux(),
		now: time.Now,

		headerTimeout: headerTimeout,
		idleTimeout:   idleTimeout,
	}
	s.reloads.WithLabelValues("success")
	s.reloads.WithLabelValues("failure")
	s.reg.MustRegister(workerCollector{s}, s.checks, s.reloads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	s.mux.HandleFunc("GET /status", s.serveStatus)
	s.mux.HandleFunc("GET /healthz", s.serveHealth)
	s.mux.HandleFunc("GET /healthz/{name}", s.serveWorkerHealth)
	s.mux.HandleFunc("GET /readyz", s.serveReady)
	s.mux.HandleFunc("GET /{$}", s.servePage)
	return s
}

// ObserveCheck records one check of a worker that took took; it is the observer to give
// [fleet.Fleet.ObserveChecks]. It does not block.
func (s *Server) ObserveCheck(_ string, took time.Duration) { s.checks.Observe(took.Seconds()) }

// Reloaded counts a reload of the config file: a success when err is nil, else a failure.
func (s *Server) Reloaded(err error) {
	result := "success"
	if err != nil {
		result = "failure"
	}
	s.reloads.WithLabelValues(result).Inc()
}

// ServeHTTP serves the endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Serve serves the endpoints on ln until ctx is done, then shuts the server down (waiting
// up to a second for requests in flight) and returns nil; it returns the server's error if it
// fails before that. ln is closed when Serve returns. A connection is closed when its client
// takes more than 10 s to send a request's header, or leaves it idle for 2 minutes.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Bounded reads and idle connections: a client that connects and sends nothing, or keeps
	// a connection open forever, must not hold a goroutine and a descriptor of serve's.
	srv := &http.Server{Handler: s, ReadHeaderTimeout: s.headerTimeout, ReadTimeout: 3 * s.headerTimeout,
		IdleTimeout: s.idleTimeout}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Server) serveStatus(w http.ResponseWriter, _ *http.Request) {
	st := NewStatus(s.src, s.now())
	st.Reloads = &Reloads{Success: s.reloadCount("success"), Failure: s.reloadCount("failure")}
	writeJSON(w, http.StatusOK, st)
}

// reloadCount returns the reloads of the config file counted with result.
func (s *Server) reloadCount(result string) uint64 {
	var m dto.Metric
	s.reloads.WithLabelValues(result).Write(&m)
	return uint64(m.GetCounter().GetValue())
}

func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	h := NewHealth(s.src.Status(), s.now())
	h.addProctab(s.src.ProctabHealth())
	code := http.StatusOK
	if h.Status != "ok" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, h)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// Health is the body of /healthz.
type Health struct {
	// Status is "ok"; "late" when a worker is late; "proctab" when no worker is late but the
	// process table's sweep fails. The code is 503 unless it is "ok".
	Status string       `json:"status"`
	Late   []LateWorker `json:"late"` // the late workers; empty when none is
	// Proctab says why the last pass over the process table failed (its lock was not free,
	// say); absent while it sweeps fine, or sweeps nothing.
	Proctab *ProctabTrouble `json:"proctab,omitempty"`
}

// ProctabTrouble is why the sweep of the process table fails, in /healthz.
type ProctabTrouble struct {
	Error string    `json:"error"`
	Since time.Time `json:"since"` // when its passes began to fail
}

// LateWorker is one worker whose loop missed its deadline (see [fleet.WorkerStatus.Late]).
type LateWorker struct {
	Name      string    `json:"name"`
	LastCheck time.Time `json:"last_check"` // the loop's last check
	LateBy    float64   `json:"late_by_seconds"`
}

// NewHealth judges the workers at now: "ok" when no loop that should be checking is past its
// deadline. (/healthz adds the process table's trouble, if any.)
func NewHealth(ws []fleet.WorkerStatus, now time.Time) Health {
	h := Health{Status: "ok", Late: []LateWorker{}}
	for _, w := range ws {
		if w.Late(now) {
			h.Status = "late"
			h.Late = append(h.Late, LateWorker{Name: w.Worker.Name, LastCheck: w.LastCheck, LateBy: now.Sub(w.Deadline).Seconds()})
		}
	}
	return h
}

// addProctab adds the trouble of the process table's sweep, if it has any.
func (h *Health) addProctab(pt fleet.ProctabHealth) {
	if !pt.Sweeping || pt.Err == nil {
		return
	}
	h.Proctab = &ProctabTrouble{Error: pt.Err.Error(), Since: pt.Since}
	if h.Status == "ok" {
		h.Status = "proctab"
	}
}
