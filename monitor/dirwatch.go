package monitor

import (
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/fsnotify/fsnotify"

	"github.com/shmmon/shmmon/shmobj"
)

// dirWatch is the process's one watch (fsnotify: inotify on Linux) on shmobj.Dir. It raises
// the changed flag of every heartbeat whose object an event names — a removal, a rename, a
// replacement, a chmod, a truncation (stores into the mapped page are no events) — so a
// heartbeat verifies its object (a stat) only after a change, not at every check. It runs
// while some heartbeat is subscribed: the last to unsubscribe closes it, which ends its
// goroutine.
type dirWatch struct {
	fsw  *fsnotify.Watcher
	done chan struct{}             // closed when read returns
	subs map[string][]*atomic.Bool // by object name; nearly always one each
	// broken is set when the watch can no longer be trusted (the directory went, or an
	// error other than an overflow): every subscriber then verifies at every check.
	broken atomic.Bool
}

var (
	dirMu  sync.Mutex // guards dirCur and the subs of every dirWatch
	dirCur *dirWatch  // the running watch, nil when none
)

// subscribe makes changed be raised whenever an event names the object name, and returns
// the watch, which the caller passes to unsubscribe. It returns nil when no watch can run;
// the caller must then verify at every check.
func subscribe(name string, changed *atomic.Bool) *dirWatch {
	dirMu.Lock()
	defer dirMu.Unlock()
	if dirCur == nil {
		fsw, err := fsnotify.NewWatcher()
		if err != nil {
			return nil
		}
		if err := fsw.Add(shmobj.Dir); err != nil {
			fsw.Close()
			return nil
		}
		dirCur = &dirWatch{fsw: fsw, done: make(chan struct{}), subs: map[string][]*atomic.Bool{}}
		go dirCur.read()
	}
	dirCur.subs[name] = append(dirCur.subs[name], changed)
	return dirCur
}

// unsubscribe undoes subscribe; the last subscriber stops the watch and waits for its
// goroutine.
func (d *dirWatch) unsubscribe(name string, changed *atomic.Bool) {
	dirMu.Lock()
	if fs := slices.DeleteFunc(d.subs[name], func(f *atomic.Bool) bool { return f == changed }); len(fs) > 0 {
		d.subs[name] = fs
	} else {
		delete(d.subs, name)
	}
	last := len(d.subs) == 0 && dirCur == d
	if last {
		dirCur = nil
	}
	dirMu.Unlock()
	if last {
		d.fsw.Close()
		<-d.done
	}
}

// trusted reports whether the watch still sees every change.
func (d *dirWatch) trusted() bool { return d != nil && !d.broken.Load() }

// read raises the flags events name until the watch is closed.
func (d *dirWatch) read() {
	defer close(d.done)
	for {
		select {
		case ev, ok := <-d.fsw.Events:
			if !ok {
				return
			}
			if filepath.Clean(ev.Name) == shmobj.Dir {
				d.raiseAll(true) // the directory itself went: nothing more will be seen
				continue
			}
			dirMu.Lock()
			for _, f := range d.subs[filepath.Base(ev.Name)] {
				f.Store(true)
			}
			dirMu.Unlock()
		case err, ok := <-d.fsw.Errors:
			if !ok {
				return
			}
			// Events were lost: everyone verifies once; any other error ends the trust.
			d.raiseAll(!errors.Is(err, fsnotify.ErrEventOverflow))
		}
	}
}

// raiseAll raises every subscriber's flag, and marks the watch broken.
func (d *dirWatch) raiseAll(broken bool) {
	if broken {
		d.broken.Store(true)
	}
	dirMu.Lock()
	defer dirMu.Unlock()
	for _, fs := range d.subs {
		for _, f := range fs {
			f.Store(true)
		}
	}
}
