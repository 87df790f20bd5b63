package worklog

import (
	"bytes"
	"net"
	"os"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/testkit"
)

// TestReadNeverWaits: while nothing takes what the readers queued (the disk stalled), a
// program's writes still go through at once: what does not fit in the buffer is dropped and
// counted, never waited for.
func TestReadNeverWaits(t *testing.T) {
	p := &logProcess{q: newQueue(Buffer), conns: map[*net.UnixConn]bool{}, quit: make(chan struct{}), pipes: 1}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go p.read(r, TagOut)
	const total = 8 << 20
	line := append(bytes.Repeat([]byte("x"), 1023), '\n')
	start := time.Now()
	for written := 0; written < total; written += len(line) {
		w.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := w.Write(line); err != nil {
			t.Fatalf("after %d bytes: %v: the reader made the program wait", written, err)
		}
	}
	took := time.Since(start)
	w.Close()
	testkit.WaitFor(t, 5*time.Second, "the reader to end", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.pipes == 0
	})
	p.q.mu.Lock()
	queued := p.q.size
	p.q.mu.Unlock()
	if queued > Buffer || queued < Buffer-2*len(line) || int64(queued)+p.dropped.Load() != total {
		t.Errorf("queued %d bytes and dropped %d of %d: want the buffer (%d) full and the rest dropped", queued, p.dropped.Load(), total, Buffer)
	}
	t.Logf("8 MiB written in %v with the writer stalled: %d bytes dropped", took.Round(time.Millisecond), p.dropped.Load())
}
