package testkit

import (
	"fmt"
	"sync"
	"testing"
)

func TestBuffer(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() { fmt.Fprintf(&b, "line %d\n", i) })
	}
	wg.Wait()
	b.Write([]byte("partial"))
	if n := len(b.Lines()); n != 4 {
		t.Errorf("%d complete lines, want 4", n)
	}
	if n := b.Count("line "); n != 4 {
		t.Errorf("Count = %d, want 4", n)
	}
}

func TestBufferTail(t *testing.T) {
	for _, tt := range []struct {
		name    string
		written string
		n       int
		want    string
	}{
		{"empty", "", 4, ""},
		{"shorter", "abc", 4, "abc"},
		{"exact", "abcd", 4, "abcd"},
		{"longer", "abcdef", 4, "...\ncdef"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b Buffer
			b.Write([]byte(tt.written))
			if got := b.Tail(tt.n); got != tt.want {
				t.Errorf("Tail(%d) of %q = %q, want %q", tt.n, tt.written, got, tt.want)
			}
		})
	}
}
