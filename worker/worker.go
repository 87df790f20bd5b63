// Package worker is the worker side of shmmon: a program proves it is alive by calling
// [Beat] (or [Worker.Beat]) regularly, at least twice per check interval.
//
// A beat is one atomic add into a shared-memory object that a monitor (`shmmon watch`,
// `shmmon run`, or a C++ Boost.Interprocess checker) polls: no system call, no allocation,
// safe from many goroutines. The worker never fails because of its object:
//
//   - a missing object (no monitor yet, or a monitor that went away) makes Beat a no-op, and
//     the worker tries to open it again about once a second;
//   - an object the monitor replaced (it is marked retired, or the name shows another inode)
//     is followed within about a second;
//   - an object truncated under the worker faults on the next beat; the fault is recovered
//     and the worker reopens by name.
//
// Opening the object clears the worker half and writes the worker's pid, so the sequence
// starts again at 1; the monitor treats the restart as progress.
package worker

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmmon/shmmon/shmobj"
)

// EnvName is the environment variable naming the object that the package-level [Beat]
// beats. `shmmon run` sets it for its child.
const EnvName = "SHMMON_NAME"

// FollowPeriod is how often a [Worker] checks that its object is still the one its name
// shows (and retries opening a missing one).
const FollowPeriod = time.Second

// Worker beats one shared-memory object. Create it with [Open]; its methods are safe for
// concurrent use, except that Beat must not run concurrently with or after Close.
type Worker struct {
	name string
	pid  int64
	cur  atomic.Pointer[shmobj.Segment] // nil while the object is missing

	faulted atomic.Bool // a beat hit a memory fault: reopen now

	mu      sync.Mutex
	prev    *shmobj.Segment // the mapping before the last switch; a Beat may still be in it
	lastErr error

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// Open starts beating the object name. It opens the existing object (open_only, as a Boost
// worker does), maps it once, clears the worker half and writes the pid. A missing or
// unusable object is not an error: Beat is a no-op until a monitor publishes it. Open starts
// one goroutine that follows the object; [Worker.Close] stops it.
//
// The error wraps [shmobj.ErrInvalidName] when name is not a valid object name; there is no
// other error.
func Open(name string) (*Worker, error) {
	if err := shmobj.ValidateName(name); err != nil {
		return nil, err
	}
	w := &Worker{
		name: name,
		pid:  int64(os.Getpid()),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	w.reopen()
	go w.follow()
	return w, nil
}

// Name returns the object's name.
func (w *Worker) Name() string { return w.name }

// Beat bumps the sequence by one. It makes no system call and no allocation; with no object
// it does nothing.
func (w *Worker) Beat() {
	// After a fault, every beat would fault again (a signal and a recover each) until the
	// follower reopens the object: the flag first.
	if s := w.cur.Load(); s != nil && !w.faulted.Load() {
		if s.Beat() != nil {
			w.faulted.Store(true)
		}
	}
}

// Attached reports whether the worker currently has an object to beat.
func (w *Worker) Attached() bool { return w.cur.Load() != nil }

// Err returns why the last attempt to open the object failed (e.g. it does not exist, or is
// not readable by this user), or nil while the worker is attached.
func (w *Worker) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

// Close stops following the object and unmaps it. It is safe to call more than once. Beat
// must not be called concurrently with or after Close.
func (w *Worker) Close() error {
	w.closeOnce.Do(func() {
		close(w.stop)
		<-w.done
		w.mu.Lock()
		defer w.mu.Unlock()
		w.switchTo(nil)
		w.switchTo(nil) // the second switch unmaps what the first kept for in-flight beats
	})
	return nil
}

// follow checks once per FollowPeriod that the object is still there and still the one the
// name shows, and reopens it when it is not.
func (w *Worker) follow() {
	defer close(w.done)
	t := time.NewTicker(FollowPeriod)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		if w.stale() {
			w.reopen()
		}
	}
}

// stale reports whether the worker should reopen its object by name.
func (w *Worker) stale() bool {
	s := w.cur.Load()
	if s == nil || w.faulted.Load() {
		return true
	}
	if retired, err := s.Retired(); retired || err != nil {
		return true
	}
	return s.Verify() != nil
}

// reopen opens the object by name again and switches to it, or to nothing when it cannot be
// opened.
func (w *Worker) reopen() {
	w.faulted.Store(false)
	seg, err := shmobj.Attach(w.name)
	if err == nil {
		if err = seg.ResetWorker(w.pid); err != nil {
			seg.Close()
			seg = nil
		}
	}
	if errors.Is(err, os.ErrNotExist) {
		err = &missingError{name: w.name, err: err}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lastErr = err
	if seg == nil && w.cur.Load() == nil {
		return
	}
	w.switchTo(seg)
}

// switchTo makes seg the mapping that beats go to. The mapping it replaces stays mapped until
// the next switch, since a Beat on another goroutine may still be writing to it. w.mu must be
// held.
func (w *Worker) switchTo(seg *shmobj.Segment) {
	old := w.cur.Swap(seg)
	if w.prev != nil {
		w.prev.Close()
	}
	w.prev = old
}

// missingError says that the object is not there yet; it matches [os.ErrNotExist].
type missingError struct {
	name string
	err  error
}

func (e *missingError) Error() string {
	return "worker: object " + e.name + " does not exist (no monitor yet?): " + e.err.Error()
}

func (e *missingError) Unwrap() error { return e.err }

var std struct {
	once sync.Once
	w    *Worker
}

// Beat beats the object named by the environment variable SHMMON_NAME (see [EnvName]), which
// `shmmon run` sets for its child. The first call opens it, as [Open] does; without the
// variable, or with an invalid name in it, Beat does nothing.
func Beat() {
	std.once.Do(func() {
		if name := os.Getenv(EnvName); name != "" {
			std.w, _ = Open(name)
		}
	})
	if std.w != nil {
		std.w.Beat()
	}
}
