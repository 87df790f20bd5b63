package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLoadFiles: what Load takes and refuses by the kind and the size of the file, table
// driven; nothing it refuses makes it wait.
func TestLoadFiles(t *testing.T) {
	const worker = "[[worker]]\nname = \"a\"\npid = 1234\n"
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) string // returns the path to load
		workers int                                   // when it loads
		size    int64                                 // when it loads
		err     string                                // in the error; "" = it loads
	}{
		{"regular file", func(t *testing.T, dir string) string {
			return writeFile(t, filepath.Join(dir, "c.toml"), []byte(worker))
		}, 1, int64(len(worker)), ""},
		{"empty file", func(t *testing.T, dir string) string {
			return writeFile(t, filepath.Join(dir, "c.toml"), nil)
		}, 0, 0, ""},
		{"symbolic link to a file", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "real.toml"), []byte(worker))
			return symlinkTo(t, "real.toml", filepath.Join(dir, "c.toml"))
		}, 1, int64(len(worker)), ""},
		{"exactly MaxSize", func(t *testing.T, dir string) string {
			return writeFile(t, filepath.Join(dir, "c.toml"), append([]byte(worker+"#"), bytes.Repeat([]byte("x"), MaxSize-len(worker)-1)...))
		}, 1, MaxSize, ""},
		{"one byte over MaxSize", func(t *testing.T, dir string) string {
			path := writeFile(t, filepath.Join(dir, "c.toml"), []byte(worker))
			if err := os.Truncate(path, MaxSize+1); err != nil { // sparse: cheap
				t.Fatal(err)
			}
			return path
		}, 0, 0, "c.toml is 16777217 bytes; a config may have at most 16777216 (16 MiB)"},
		{"a FIFO", func(t *testing.T, dir string) string {
			path := filepath.Join(dir, "c.toml")
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
			return path
		}, 0, 0, "c.toml is a named pipe, not a regular file"},
		{"a link to a FIFO", func(t *testing.T, dir string) string {
			if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
				t.Fatal(err)
			}
			return symlinkTo(t, "fifo", filepath.Join(dir, "c.toml"))
		}, 0, 0, "c.toml is a named pipe, not a regular file"},
		{"a device", func(t *testing.T, dir string) string { return "/dev/zero" }, 0, 0, "/dev/zero is a character device, not a regular file"},
		{"a directory", func(t *testing.T, dir string) string { return dir }, 0, 0, "is a directory, not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.setup(t, t.TempDir())
			type result struct {
				f   *File
				err error
			}
			done := make(chan result, 1)
			go func() { f, err := Load(path); done <- result{f, err} }()
			var r result
			select {
			case r = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("Load(%s) blocked", path)
			}
			if tt.err == "" {
				if r.err != nil || len(r.f.Workers) != tt.workers || r.f.Size != tt.size {
					t.Fatalf("Load(%s) = %v; want %d workers, Size %d", path, r.err, tt.workers, tt.size)
				}
				return
			}
			if r.err == nil || !strings.HasPrefix(r.err.Error(), "config: ") || !strings.Contains(r.err.Error(), tt.err) {
				t.Fatalf("Load(%s) = %v; want config: ...%s", path, r.err, tt.err)
			}
		})
	}
}

func writeFile(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func symlinkTo(t *testing.T, target, path string) string {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	return path
}
