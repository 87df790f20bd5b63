package testkit

import (
	"os"
	"strings"
	"time"

	"github.com/shmmon/shmmon/worker"
)

// Flood is a worker that floods its log: it writes 1 KiB lines to stdout (and every eighth to
// stderr too) at rate bytes per second, beating (worker.Beat, SHMMON_NAME) after each line and
// after each pause, so that only a write that blocks could make it stall. It never returns.
func Flood(rate int) {
	line := []byte(strings.Repeat("f", 1023) + "\n")
	start, written := time.Now(), 0
	for i := 0; ; i++ {
		os.Stdout.Write(line)
		if i%8 == 0 {
			os.Stderr.Write(line)
		}
		written += len(line)
		worker.Beat()
		if ahead := time.Duration(float64(written)/float64(rate)*float64(time.Second)) - time.Since(start); ahead > time.Millisecond {
			time.Sleep(ahead)
			worker.Beat()
		}
	}
}
