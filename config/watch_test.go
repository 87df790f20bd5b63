package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// watching starts a Watcher on path, closed when the test ends.
func watching(t *testing.T, path string) *Watcher {
	t.Helper()
	w, err := Watch(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// changed waits for a change on w and fails the test without one.
func changed(t *testing.T, w *Watcher, what string) {
	t.Helper()
	select {
	case <-w.C:
	case err := <-w.Errors:
		t.Fatalf("%s: watch error %v", what, err)
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no change reported", what)
	}
}

// unchanged fails the test if w reports a change within 5 settle periods.
func unchanged(t *testing.T, w *Watcher, what string) {
	t.Helper()
	select {
	case <-w.C:
		t.Fatalf("%s: a change reported", what)
	case <-time.After(5 * Settle):
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestWatchFile: a file written in place, replaced by a rename, removed and made again is a
// change each time; another file of the directory is not.
func TestWatchFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shmmon.toml")
	must(t, os.WriteFile(path, []byte("# one\n"), 0o600))
	w := watching(t, path)

	must(t, os.WriteFile(path, []byte("# two\n"), 0o600))
	changed(t, w, "written in place")
	must(t, os.WriteFile(filepath.Join(dir, "other.toml"), nil, 0o600))
	unchanged(t, w, "another file written")
	must(t, os.WriteFile(filepath.Join(dir, ".new"), []byte("# three\n"), 0o600))
	must(t, os.Rename(filepath.Join(dir, ".new"), path))
	changed(t, w, "renamed over")
	must(t, os.Remove(path))
	changed(t, w, "removed")
	must(t, os.WriteFile(path, []byte("# four\n"), 0o600))
	changed(t, w, "made again")

	// Close is idempotent, and nothing is reported after it.
	must(t, w.Close())
	must(t, w.Close())
	must(t, os.WriteFile(path, []byte("# five\n"), 0o600))
	unchanged(t, w, "written after Close")
}

// TestWatchConfigMap: a path through links as Kubernetes mounts a ConfigMap
// (config.toml -> ..data/config.toml, ..data -> ..TIMESTAMP): swapping ..data atomically
// for a link to a new directory is a change, and so is a later write of the new file.
func TestWatchConfigMap(t *testing.T) {
	dir := t.TempDir()
	version := func(stamp, text string) {
		t.Helper()
		must(t, os.Mkdir(filepath.Join(dir, stamp), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, stamp, "config.toml"), []byte(text), 0o644))
	}
	version("..2026_01_01_00_00_00.1", "# one\n")
	must(t, os.Symlink("..2026_01_01_00_00_00.1", filepath.Join(dir, "..data")))
	path := filepath.Join(dir, "config.toml")
	must(t, os.Symlink("..data/config.toml", path))
	w := watching(t, path)

	// The kubelet's update: a new directory, a new link to it, renamed over ..data, the old
	// directory removed.
	version("..2026_01_02_00_00_00.2", "# two\n")
	must(t, os.Symlink("..2026_01_02_00_00_00.2", filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	must(t, os.RemoveAll(filepath.Join(dir, "..2026_01_01_00_00_00.1")))
	changed(t, w, "..data swapped")
	if b, err := os.ReadFile(path); err != nil || string(b) != "# two\n" {
		t.Fatalf("after the swap the config reads %q, %v", b, err)
	}

	// The new target is watched, the old one no longer matters.
	must(t, os.WriteFile(filepath.Join(dir, "..2026_01_02_00_00_00.2", "config.toml"), []byte("# three\n"), 0o644))
	changed(t, w, "the new target written in place")
	select {
	case err := <-w.Errors:
		t.Errorf("watch error: %v", err)
	default:
	}
}
