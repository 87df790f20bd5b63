package supervise

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/shmobj"
)

// stampHandler records when the supervisor logged a hang verdict and a start.
type stampHandler struct {
	mu      sync.Mutex
	verdict []time.Time // "killing hung worker"
	started []time.Time // "started"
}

func (h *stampHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *stampHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *stampHandler) WithGroup(string) slog.Handler            { return h }
func (h *stampHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch r.Message {
	case "killing hung worker":
		h.verdict = append(h.verdict, time.Now())
	case "started":
		h.started = append(h.started, time.Now())
	}
	return nil
}

func (h *stampHandler) times(i int) (verdict, started time.Time, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.verdict) <= i || len(h.started) <= i+1 {
		return time.Time{}, time.Time{}, false
	}
	return h.verdict[i], h.started[i+1], true
}

// BenchmarkRestartLatency measures one restart of a hung worker: from the hang verdict to the
// new program's first beat. The worker (this test binary) beats once and hangs; it ends on
// SIGTERM, so the kill escalation never waits for KillAfter. Reported per restart:
// ms-shmmon (verdict → new program started: terminate, reap, start) and ms-first-beat
// (verdict → the new program's first beat, including the program's own start).
// A backoff would add to both; the first restart after a healthy run has none.
func BenchmarkRestartLatency(b *testing.B) {
	name := fmt.Sprintf("shmmon-bench-restart-%d", os.Getpid())
	stamps := &stampHandler{}
	s, err := New(name, Options{
		Command:    []string{os.Args[0]},
		Env:        []string{modeEnv + "=beat-once", "GORACE=atexit_sleep_ms=0"},
		Monitor:    monitor.Options{Config: monitor.Config{Interval: 10 * time.Millisecond, Stalls: 1, Grace: time.Second}},
		KillAfter:  time.Second,
		StartLimit: MaxStartLimit,
		// Every restart measured is the first after a healthy run, which is immediate:
		// a worker that ran 1ms counts as healthy here.
		BackoffReset: time.Millisecond,
		Logger:       slog.New(stamps),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done; shmobj.Remove(name) }()

	var shmmonTotal, beatTotal time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var verdict, started time.Time
		for {
			var ok bool
			if verdict, started, ok = stamps.times(i); ok {
				break
			}
			time.Sleep(50 * time.Microsecond)
		}
		// The new program's first beat: its pid in the worker half and a sequence above 0.
		var beat time.Time
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			snap, err := shmobj.Read(name)
			if err == nil && snap.Seq > 0 && snap.WorkerPid == snap.Record.WatchedPid && snap.Record.Restarts == uint64(i+1) {
				beat = time.Now()
				break
			}
			time.Sleep(50 * time.Microsecond)
		}
		if beat.IsZero() {
			b.Fatalf("restart %d: no first beat", i+1)
		}
		shmmonTotal += started.Sub(verdict)
		beatTotal += beat.Sub(verdict)
	}
	b.StopTimer()
	b.ReportMetric(float64(shmmonTotal.Microseconds())/1000/float64(b.N), "ms-shmmon/op")
	b.ReportMetric(float64(beatTotal.Microseconds())/1000/float64(b.N), "ms-first-beat/op")
}
