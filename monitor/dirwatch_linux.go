package monitor

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/shmmon/shmmon/shmobj"
	"golang.org/x/sys/unix"
)

// dirEvents are the changes to shmobj.Dir that may mean an object was removed, renamed,
// replaced, chmodded or truncated under its monitor.
const dirEvents = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_ATTRIB | unix.IN_MODIFY | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// dirWatch is the process's one inotify watch on shmobj.Dir. It raises the changed flag of
// every heartbeat whose object an event names, so a heartbeat verifies its object (a stat)
// only after a change, not at every check. It runs while some heartbeat is subscribed: the
// last to unsubscribe closes it, which ends its goroutine.
type dirWatch struct {
	f    *os.File
	done chan struct{}             // closed when read returns
	subs map[string][]*atomic.Bool // by object name; nearly always one each
	// broken is set when the watch can no longer be trusted (it was removed, or reading
	// failed): every subscriber then verifies at every check.
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
		fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
		if err != nil {
			return nil
		}
		if _, err := unix.InotifyAddWatch(fd, shmobj.Dir, dirEvents|unix.IN_ONLYDIR); err != nil {
			unix.Close(fd)
			return nil
		}
		// Non-blocking, the file is in the runtime poller: read waits without a thread, and
		// Close wakes it.
		dirCur = &dirWatch{f: os.NewFile(uintptr(fd), "inotify:"+shmobj.Dir), done: make(chan struct{}),
			subs: map[string][]*atomic.Bool{}}
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
		d.f.Close()
		<-d.done
	}
}

// trusted reports whether the watch still sees every change.
func (d *dirWatch) trusted() bool { return d != nil && !d.broken.Load() }

// read raises the flags events name until the file is closed.
func (d *dirWatch) read() {
	defer close(d.done)
	buf := make([]byte, 64*1024)
	for {
		n, err := d.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				d.broken.Store(true)
				d.raiseAll()
			}
			return
		}
		d.dispatch(buf[:n])
	}
}

// dispatch raises the flags named by the events in buf.
func (d *dirWatch) dispatch(buf []byte) {
	dirMu.Lock()
	defer dirMu.Unlock()
	for len(buf) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[0]))
		end := unix.SizeofInotifyEvent + int(ev.Len)
		if end > len(buf) {
			break
		}
		name := buf[unix.SizeofInotifyEvent:end]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		buf = buf[end:]
		switch {
		case ev.Mask&(unix.IN_IGNORED|unix.IN_UNMOUNT|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF) != 0:
			d.broken.Store(true) // the directory itself went: nothing more will be seen
			d.raiseAllLocked()
		case ev.Mask&unix.IN_Q_OVERFLOW != 0:
			d.raiseAllLocked() // events were lost: everyone verifies once
		default:
			for _, f := range d.subs[string(name)] {
				f.Store(true)
			}
		}
	}
}

func (d *dirWatch) raiseAll() {
	dirMu.Lock()
	defer dirMu.Unlock()
	d.raiseAllLocked()
}

func (d *dirWatch) raiseAllLocked() {
	for _, fs := range d.subs {
		for _, f := range fs {
			f.Store(true)
		}
	}
}
