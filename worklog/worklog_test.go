package worklog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shmmon/shmmon/internal/field"
	"github.com/shmmon/shmmon/internal/testkit"
)

// TestMain lets the test binary be the log process its tests start (Open runs
// os.Executable).
func TestMain(m *testing.M) {
	if code, ok := Main(os.Args); ok {
		os.Exit(code)
	}
	code := m.Run()
	testkit.Cleanup()
	os.Exit(code)
}

func TestLines(t *testing.T) {
	long := strings.Repeat("x", MaxLine)
	tests := []struct {
		name        string
		part, data  string
		want, after string
	}{
		{"whole lines", "", "a\nb\n", "a\nb\n", ""},
		{"a partial line waits", "", "a\nbc", "a\n", "bc"},
		{"the partial line ends", "bc", "d\ne", "bcd\n", "e"},
		{"nothing whole", "ab", "cd", "", "abcd"},
		{"a long line is cut", "", long + "yz\n", long + "\nyz\n", ""},
		{"a long partial line is cut", long[:10], long, long + "\n", long[:10]},
		{"an empty line stays", "", "\n\n", "\n\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			part := []byte(tt.part)
			have := lines(&part, []byte(tt.data))
			if string(have) != tt.want || string(part) != tt.after {
				t.Errorf("lines(%.20q, %.20q) = %.40q, left %.20q; want %.40q, left %.20q", tt.part, tt.data, have, part, tt.want, tt.after)
			}
		})
	}
}

func TestQueueDrops(t *testing.T) {
	q := newQueue(10)
	if d := q.put(chunk{data: []byte("12345\n")}); d != 0 {
		t.Fatalf("first put dropped %d", d)
	}
	if d := q.put(chunk{data: []byte("123456\n")}); d != 7 {
		t.Fatalf("put beyond the limit dropped %d, want 7", d)
	}
	cs, dropped, ok := q.get()
	if len(cs) != 1 || dropped != 7 || !ok {
		t.Fatalf("get = %d chunks, %d dropped, %v; want 1, 7, true", len(cs), dropped, ok)
	}
	q.close()
	if _, _, ok := q.get(); ok {
		t.Fatal("get after close of an empty queue: ok")
	}
}

// TestFileRotation: lines with their time and tag; the file rotated before it would grow
// beyond max; at most keep old files, each at most max.
func TestFileRotation(t *testing.T) {
	for _, keep := range []int{0, 1, 3} {
		t.Run(fmt.Sprintf("keep %d", keep), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sub", "w.log")
			w := &file{path: path, max: MinMaxSize, keep: keep}
			at := time.Date(2026, 3, 1, 10, 0, 0, 123456000, time.UTC)
			line := strings.Repeat("y", 999) + "\n"
			for i := range 400 { // about 6 files of output
				tag := TagOut
				if i%2 == 1 {
					tag = TagErr
				}
				if lost, err := w.write(chunk{at: at, tag: tag, data: []byte(line)}); err != nil || lost != 0 {
					t.Fatalf("write: lost %d, %v", lost, err)
				}
			}
			w.close()
			for i := 0; i <= keep+1; i++ {
				name := path
				if i > 0 {
					name = OldFile(path, i)
				}
				data, err := os.ReadFile(name)
				if i == keep+1 {
					if err == nil {
						t.Errorf("%s exists: more than %d old files", name, keep)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(data) > MinMaxSize {
					t.Errorf("%s is %d bytes, more than %d", name, len(data), MinMaxSize)
				}
				first, _, _ := bytes.Cut(data, []byte("\n"))
				if want := "2026-03-01T10:00:00.123456Z "; !bytes.HasPrefix(first, []byte(want)) {
					t.Errorf("%s begins %.40q, want %q", name, first, want)
				}
				for _, tag := range []string{" out ", " err "} {
					if !bytes.Contains(data, []byte(tag)) {
						t.Errorf("%s has no line tagged %q", name, tag)
					}
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		opts  Options
		field string
	}{
		{Options{MaxSize: MinMaxSize - 1}, "log_max_size"},
		{Options{MaxSize: MinMaxSize, Keep: -1}, "log_keep"},
		{Options{MaxSize: MinMaxSize, Keep: MaxKeep + 1}, "log_keep"},
	}
	for _, tt := range tests {
		errs := field.All(tt.opts.ValidateResolved())
		if len(errs) != 1 || errs[0].Field != tt.field {
			t.Errorf("%+v: %v, want one error of %s", tt.opts, errs, tt.field)
		}
	}
	if err := (Options{}).WithDefaults().ValidateResolved(); err != nil {
		t.Errorf("the defaults: %v", err)
	}
}

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.log")
	write := func(name string, n0, n int, partial string) {
		var b strings.Builder
		for i := n0; i < n0+n; i++ {
			fmt.Fprintf(&b, "line %d\n", i)
		}
		b.WriteString(partial)
		if err := os.WriteFile(name, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(OldFile(path, 2), 0, 3, "")
	write(OldFile(path, 1), 3, 3, "")
	write(path, 6, 3, "partial")
	tests := []struct {
		n, keep int
		want    string
	}{
		{2, 2, "line 7,line 8"},
		{5, 2, "line 4,line 5,line 6,line 7,line 8"},
		{20, 2, "line 0,line 1,line 2,line 3,line 4,line 5,line 6,line 7,line 8"},
		{20, 1, "line 3,line 4,line 5,line 6,line 7,line 8"},
		{0, 2, ""},
	}
	for _, tt := range tests {
		ls, pos, err := Tail(path, tt.keep, tt.n)
		if err != nil {
			t.Fatal(err)
		}
		if have := strings.Join(ls, ","); have != tt.want {
			t.Errorf("Tail(%d, keep %d) = %q, want %q", tt.n, tt.keep, have, tt.want)
		}
		if fi, _ := os.Stat(path); pos.Offset != fi.Size()-int64(len("partial")) {
			t.Errorf("Tail(%d) position %d, want before the partial line", tt.n, pos.Offset)
		}
	}
	if _, _, err := Tail(path, 2, MaxTail+1); err == nil {
		t.Errorf("Tail(%d): no error", MaxTail+1)
	}
	if ls, _, err := Tail(filepath.Join(t.TempDir(), "none.log"), 5, 3); err != nil || len(ls) != 0 {
		t.Errorf("Tail of a missing file = %q, %v; want nothing", ls, err)
	}
	if err := os.Symlink(path, path+".link"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Tail(path+".link", 0, 3); err == nil {
		t.Error("Tail through a symbolic link: no error")
	}
}

func TestSkip(t *testing.T) {
	long := strings.Repeat("x", MaxLine)
	tests := []struct {
		name, part, data, after string
		dropped                 int64
	}{
		{"the end of a line kept", "ab", "c\nd\nef", "ef", 6},
		{"an unfinished line kept", "ab", "cd", "abcd", 0},
		{"a long unfinished line cut", "", "a\n" + long + "yz", "yz", 2 + MaxLine},
	}
	for _, tt := range tests {
		part := []byte(tt.part)
		if d := skip(&part, []byte(tt.data)); d != tt.dropped || string(part) != tt.after {
			t.Errorf("%s: skip = %d, left %.20q; want %d, %q", tt.name, d, part, tt.dropped, tt.after)
		}
	}
}
