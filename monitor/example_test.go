package monitor_test

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/shmmon/shmmon/monitor"
	"github.com/shmmon/shmmon/worker"
)

// A monitor on one object: publish it, let a worker beat, and check once per interval.
// The times are simulated here; a real loop passes time.Now() (see monitor.Watch).
func ExampleWorker() {
	name := fmt.Sprintf("shmmon-example-%d", os.Getpid())
	start := time.Now()
	m, _, err := monitor.OpenWorker(name, monitor.Options{Config: monitor.Config{Interval: time.Second, Stalls: 2}},
		monitor.WorkerOptions{Logger: slog.New(slog.DiscardHandler)}, start)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close(true) // unmap and remove the object

	w, _ := worker.Open(name)
	defer w.Close()

	for i, beats := range []int{3, 1, 0, 0, 2} {
		for range beats {
			w.Beat()
		}
		r := m.Check(start.Add(time.Duration(i+1) * time.Second))
		fmt.Printf("check %d: %d (%v)\n", i+1, r, r)
	}
	// Output:
	// check 1: 0 (ok)
	// check 2: 0 (ok)
	// check 3: -1 (stalled)
	// check 4: -2 (abnormal)
	// check 5: 0 (ok)
}
