package worklog

import (
	"bytes"
	"sync"
	"time"
)

// chunk is output read at one time from one stream: whole lines, each ending in a newline.
type chunk struct {
	at   time.Time
	tag  string
	data []byte
}

// queue holds the chunks read but not written yet, up to limit bytes; what comes beyond is
// dropped and counted. Readers never wait on it: a program is never stalled by its logging.
type queue struct {
	mu      sync.Mutex
	cond    sync.Cond
	chunks  []chunk
	size    int
	limit   int
	pending int64 // dropped and not noted in the file yet
	closed  bool
}

func newQueue(limit int) *queue {
	q := &queue{limit: limit}
	q.cond.L = &q.mu
	return q
}

// put queues c, or drops it when the queue is full; it reports how many bytes it dropped.
func (q *queue) put(c chunk) int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.size+len(c.data) > q.limit {
		q.pending += int64(len(c.data))
		q.cond.Signal()
		return int64(len(c.data))
	}
	q.chunks = append(q.chunks, c)
	q.size += len(c.data)
	q.cond.Signal()
	return 0
}

// get waits for chunks (or a drop to note) and takes them all, with the bytes dropped since
// the last get; ok is false once the queue is closed and empty.
func (q *queue) get() (cs []chunk, dropped int64, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.chunks) == 0 && q.pending == 0 && !q.closed {
		q.cond.Wait()
	}
	cs, dropped = q.chunks, q.pending
	q.chunks, q.size, q.pending = nil, 0, 0
	return cs, dropped, len(cs) > 0 || dropped > 0 || !q.closed
}

// dropped counts n bytes dropped by a reader, to be noted in the file.
func (q *queue) dropped(n int64) {
	q.mu.Lock()
	q.pending += n
	q.cond.Signal()
	q.mu.Unlock()
}

// full reports whether n more bytes would not fit now: the reader may drop them without
// copying them first.
func (q *queue) full(n int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.size+n > q.limit
}

// skip drops the whole lines of data read while the queue is full (the unfinished one before
// them, in part, with them), leaving in part the unfinished line at its end, cut as lines
// cuts it; it returns how many bytes it dropped. Nothing is copied but that last line.
func skip(part *[]byte, data []byte) int64 {
	var dropped int64
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		dropped = int64(len(*part) + i + 1)
		*part = append((*part)[:0], data[i+1:]...)
	} else {
		*part = append(*part, data...)
	}
	for len(*part) >= MaxLine {
		dropped += MaxLine
		*part = append((*part)[:0], (*part)[MaxLine:]...)
	}
	return dropped
}

// close ends get's waits once the queue is empty.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
}

// lines splits output into whole lines: part is the unfinished line read before data, and
// is left with the unfinished end of data. A line longer than MaxLine, finished or not, is
// cut into pieces of MaxLine bytes, each given a newline. It returns a new slice.
func lines(part *[]byte, data []byte) []byte {
	// Room for every byte and the newlines of the cut pieces: one allocation.
	out := make([]byte, 0, len(*part)+len(data)+(len(*part)+len(data))/MaxLine+1)
	rest := data
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			*part = append(*part, rest...)
			break
		}
		line := rest[:i+1]
		rest = rest[i+1:]
		if len(*part) > 0 {
			*part = append(*part, line...)
			line, *part = *part, (*part)[:0]
			out = cutLines(out, line)
			continue
		}
		out = cutLines(out, line)
	}
	for len(*part) >= MaxLine {
		out = append(append(out, (*part)[:MaxLine]...), '\n')
		*part = append((*part)[:0], (*part)[MaxLine:]...)
	}
	return out
}

// cutLines appends line (which ends in a newline) to out, cut into pieces of at most MaxLine
// bytes before their newline.
func cutLines(out, line []byte) []byte {
	for len(line)-1 > MaxLine {
		out = append(append(out, line[:MaxLine]...), '\n')
		line = line[MaxLine:]
	}
	return append(out, line...)
}
