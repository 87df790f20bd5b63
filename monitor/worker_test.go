package monitor

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/shmmon/shmmon/shmobj"
)

// TestWorkerReady: a run is ready at its first progress (or READY=1, or at its start when it
// has no hang verdict), once a run, with one EventReady; its end makes it not ready, and so
// does the next start until that run is ready in its turn.
func TestWorkerReady(t *testing.T) {
	for _, tc := range []struct {
		name    string
		unjudge bool
		ready   func(w *Worker, now time.Time) // what makes the run ready; nil: its start
	}{
		{"first beat", false, func(w *Worker, now time.Time) {
			w.Beat(shmobj.KindShm)
			w.Check(now)
		}},
		{"READY=1", false, func(w *Worker, now time.Time) { w.Ready(now) }},
		{"no hang verdict", true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("shmmon-worker-ready-%d", os.Getpid())
			t.Cleanup(func() { shmobj.Remove(name) })
			var mu sync.Mutex
			readies := 0
			opts := Options{Config: Config{Interval: time.Second}, OnEvent: func(e Event) {
				if e.Kind == EventReady {
					mu.Lock()
					readies++
					mu.Unlock()
				}
			}}
			now := time.Now()
			w, _, err := OpenWorker(name, opts, WorkerOptions{Supervised: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, now)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close(true)
			if tc.unjudge {
				w.Unjudge()
			}
			count := func() int { mu.Lock(); defer mu.Unlock(); return readies }
			for run := 1; run <= 2; run++ {
				w.ResetWorker() // as a supervisor does before every start
				w.Start(int64(os.Getpid()), StartNew, "prog", now)
				if tc.ready != nil {
					if w.Check(now.Add(time.Second)); w.Books().Ready {
						t.Fatalf("run %d: ready before anything made it so", run)
					}
					tc.ready(w, now.Add(2*time.Second))
				}
				if !w.Books().Ready || count() != run {
					t.Fatalf("run %d: ready %v after %d EventReady, want ready after %d", run, w.Books().Ready, count(), run)
				}
				// More progress is no second readiness.
				w.Beat(shmobj.KindShm)
				w.Check(now.Add(3 * time.Second))
				if count() != run {
					t.Errorf("run %d: %d EventReady, want %d", run, count(), run)
				}
				w.End(Exit{End: EndExit, Status: "exit 0"}, now.Add(4*time.Second))
				if w.Books().Ready {
					t.Errorf("run %d: still ready after its end", run)
				}
				now = now.Add(5 * time.Second)
			}
		})
	}
}
