// Command goworker is the Go worker of shmmon's demo: a loop that does some work and calls
// worker.Beat() each round. The object comes from SHMMON_NAME, as `shmmon run` sets it.
//
// SIGUSR1 makes it hang the way real programs do: its loop deadlocks on a mutex, so it stops
// beating while the process stays up and would answer SIGTERM.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/shmmon/shmmon/worker"
)

func main() {
	period := flag.Duration("period", 100*time.Millisecond, "time between beats")
	flag.Parse()
	if *period <= 0 {
		fmt.Fprintf(os.Stderr, "goworker: invalid -period %v: want more than 0\n", *period)
		os.Exit(2)
	}
	hang := make(chan os.Signal, 1)
	signal.Notify(hang, syscall.SIGUSR1)

	var mu sync.Mutex
	go func() {
		<-hang
		fmt.Printf("goworker %d: SIGUSR1: deadlocking the work loop (no more beats)\n", os.Getpid())
		mu.Lock() // held forever: the next round of the loop blocks
	}()

	fmt.Printf("goworker %d: beating %s every %v\n", os.Getpid(), os.Getenv(worker.EnvName), *period)
	for round := 1; ; round++ {
		mu.Lock()
		time.Sleep(*period) // the "work"
		mu.Unlock()
		worker.Beat()
		if round%50 == 0 {
			fmt.Printf("goworker %d: %d beats\n", os.Getpid(), round)
		}
	}
}
