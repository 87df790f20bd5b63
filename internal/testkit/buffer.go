package testkit

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer is a log sink for tests that run monitors: it collects what many goroutines (a
// logger, a process's output copier) write while the test reads it. It is safe for concurrent
// use; the zero value is ready to use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines returns the complete lines written so far.
func (b *Buffer) Lines() []string {
	s := b.String()
	i := strings.LastIndexByte(s, '\n')
	if i < 0 {
		return nil
	}
	return strings.Split(s[:i], "\n")
}

// Count returns how many times sub was written.
func (b *Buffer) Count(sub string) int { return strings.Count(b.String(), sub) }

// Tail returns the last n bytes written, after "...\n" when earlier ones were left out.
func (b *Buffer) Tail(n int) string {
	s := b.String()
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}
