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
