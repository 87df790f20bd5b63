package worklog

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"
)

// The log process's costs: what a line of output costs it to split (in the reader) and to
// write (in the writer), in bytes of output a second. A program writes at most that much
// through its log process before the buffer fills and lines are dropped.

// output is 64 KiB of 120-byte lines, a pipe's worth.
var output = bytes.Repeat(append(bytes.Repeat([]byte("x"), 119), '\n'), 546)

// BenchmarkLogLines: the reader splits output into whole lines.
func BenchmarkLogLines(b *testing.B) {
	b.SetBytes(int64(len(output)))
	b.ReportAllocs()
	var part []byte
	for b.Loop() {
		lines(&part, output)
	}
}

// BenchmarkLogWrite: the writer timestamps, tags and writes lines to the file, rotating it at
// 16 MiB.
func BenchmarkLogWrite(b *testing.B) {
	w := &file{path: filepath.Join(b.TempDir(), "w.log"), max: 16 << 20, keep: 1}
	defer w.close()
	b.SetBytes(int64(len(output)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.write(chunk{at: time.Now(), tag: TagOut, data: output}); err != nil {
			b.Fatal(err)
		}
	}
}
