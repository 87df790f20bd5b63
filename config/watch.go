package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Settle is how long a [Watcher] waits after an event that names the file for more before it
// reports the change: a save is often several events (truncate, write, rename).
const Settle = 100 * time.Millisecond

// Watcher reports the changes of a configuration file, for a live reload. It watches
// directories, not the file: editors that save by writing a new file and renaming it over the
// old one would leave a watch on the file itself behind. It watches the directory of the path
// and, when the path is or passes through symbolic links, the directory of the file it
// resolves to, resolved again after every change: so a file written in place, a file renamed
// over it, a link pointed elsewhere, and the swap of a Kubernetes ConfigMap
// (config.toml -> ..data/config.toml, ..data -> ..2026_01_02_..., ..data replaced by a
// rename) are all changes.
//
// Create one with [Watch]; its goroutine runs until [Watcher.Close].
type Watcher struct {
	// C receives a value once a change has settled ([Settle] after the last event naming the
	// file or the file it resolves to, or once another event in a watched directory turned out
	// to resolve the path to another file). Values do not queue: changes made while one is
	// waiting to be received are the same change.
	C <-chan struct{}
	// Errors receives the errors of the watch: the kernel's queue of events overflowed (a
	// change may have been missed, so C receives a value too), a directory could not be
	// watched. Errors that find no room are dropped.
	Errors <-chan error

	path   string
	fsw    *fsnotify.Watcher
	c      chan struct{}
	errs   chan error
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	target string   // the file path resolves to; "" while it resolves to nothing; run's own
	dirs   []string // the directories watched; run's own
}

// Watch starts watching the configuration file at path, an absolute path. The directory of the
// path must exist; the file need not.
func Watch(path string) (*Watcher, error) {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("config: watching %s: %w", path, err)
	}
	w := &Watcher{
		path: path,
		fsw:  fsw,
		c:    make(chan struct{}, 1),
		errs: make(chan error, 8),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	w.C, w.Errors = w.c, w.errs
	var dirs []string
	w.target, dirs = resolve(path)
	for _, d := range dirs {
		if err := fsw.Add(d); err != nil {
			fsw.Close()
			return nil, fmt.Errorf("config: watching %s: %w", d, err)
		}
	}
	w.dirs = dirs
	go w.run()
	return w, nil
}

// Close stops the watch and waits for its goroutine. It is safe to call more than once; C and
// Errors receive nothing after it.
func (w *Watcher) Close() error {
	var err error
	w.once.Do(func() {
		close(w.stop)
		<-w.done
		err = w.fsw.Close()
	})
	return err
}

// resolve returns the file path resolves to ("" when it resolves to nothing) and the
// directories to watch for it.
func resolve(path string) (target string, dirs []string) {
	dirs = []string{filepath.Dir(path)}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", dirs
	}
	if d := filepath.Dir(target); d != dirs[0] {
		dirs = append(dirs, d)
	}
	return target, dirs
}

func (w *Watcher) run() {
	defer close(w.done)
	timer := time.NewTimer(Settle)
	timer.Stop()
	armed, named := false, false
	for {
		select {
		case <-w.stop:
			timer.Stop()
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return // fsnotify gave up: nothing more will come
			}
			if ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename|fsnotify.Remove) == 0 {
				continue
			}
			// An event naming the file waits for the rest of its save; any other event in
			// a watched directory (a link of a ConfigMap swapped, say) is a reason to resolve
			// the path again, but must not put off a change under way.
			if name := filepath.Clean(ev.Name); name == w.path || name == w.target {
				named = true
				timer.Reset(Settle)
				armed = true
			} else if !armed {
				timer.Reset(Settle)
				armed = true
			}
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			w.report(fmt.Errorf("config: watching %s: %w", w.path, err))
			named = true
			timer.Reset(Settle)
			armed = true
		case <-timer.C:
			armed = false
			target, dirs := resolve(w.path)
			if target != w.target {
				named = true
				w.target = target
			}
			if !slices.Equal(dirs, w.dirs) {
				w.rewatch(dirs)
			}
			if named {
				named = false
				select {
				case w.c <- struct{}{}:
				default:
				}
			}
		}
	}
}

// rewatch watches dirs instead of w.dirs. Two paths of one directory (a path through a link,
// and the resolved one) share one kernel watch, which removing either ends: so every directory
// wanted is added again after the ones no longer wanted are removed.
func (w *Watcher) rewatch(dirs []string) {
	for _, d := range w.dirs {
		if !slices.Contains(dirs, d) {
			w.fsw.Remove(d) // fails if the directory is gone, which ended its watch anyway
		}
	}
	for _, d := range dirs {
		if err := w.fsw.Add(d); err != nil {
			w.report(fmt.Errorf("config: watching %s: %w", d, err))
		}
	}
	w.dirs = dirs
}

// report sends err on Errors if there is room.
func (w *Watcher) report(err error) {
	select {
	case w.errs <- err:
	default:
	}
}
