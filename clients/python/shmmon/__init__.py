"""Make a Python program a shmmon worker: standard library only.

    import shmmon
    while True:
        do_work()
        shmmon.beat()    # beats $SHMMON_NAME (set by shmmon run/serve); a no-op without it

or, naming the object::

    with shmmon.Worker("abcd") as w:    # ValueError for a bad name, and no other error
        while True:
            do_work()
            w.beat()

The contract is the Go worker's (package worker):

- Opening a Worker opens the existing object NAME, ``/dev/shm/NAME`` (what Boost's
  ``shm_open("/NAME")`` opens on Linux), maps it once, clears the worker half and writes this
  process's pid at offset 8. The monitor creates the object; a worker never does.
- A beat adds one to the sequence at offset 0, makes no system call and is safe from many
  threads.
- A missing object (no monitor yet, or one that went away) makes beats no-ops, and the object
  is tried again at most about once per second. So is one that cannot be used yet: not a
  regular file, or under 16 bytes (a Boost checker that created but has not sized it).
- Once per second one beat, whichever comes first after the second is up, also checks the
  object: when its monitor marked it retired (the flag at size/2 + 76) or the name shows
  another object (another inode, or a size below the mapping), it reopens it by name. So a
  worker follows a re-published object within about a second.

How a beat stays correct. Python has no atomic add on shared memory, so a beat is a read, an
add and a write of the 64-bit sequence, made under a lock of the Worker: beats of several
threads of this process never interleave, and none is lost. That is enough because only this
process writes the sequence (the monitor only reads it; one process beats one object: after
``os.fork()`` the child must not beat its parent's Worker). The monitor reads the sequence with
one atomic 64-bit load, so what matters is that the write is one 64-bit store: the sequence is
accessed through a ``memoryview`` cast to ``'Q'`` (native unsigned 64-bit), whose item access
CPython compiles to a fixed 8-byte ``memcpy``, i.e. one load and one store of the aligned word
(offset 0 of a page-aligned mapping), and an aligned 8-byte store is atomic on x86-64 and
arm64. ``struct.pack_into`` is not used: its standard-size formats write byte by byte, and a
read in between sees a torn value. The read-add-write as a whole is atomic only with respect
to this process's other beats; the compat tests read the sequence millions of times while
threads beat and check that it never goes back and ends at the exact count.

SIGBUS. A mapping faults when the page it touches is no longer in the object: a third party
truncated it under the worker (to 0 bytes, say). In Python that kills the interpreter (SIGBUS),
as with any truncated mapped file. shmmon never shrinks an object a worker may have mapped: a
new object, or a new size, is a new file renamed over the name, and the old one keeps its size
while the worker moves; the Boost checker removes and re-creates. Under ``shmmon run`` or
``shmmon serve`` a worker killed that way is restarted like any crash.
"""

import mmap
import os
import stat
import threading
import time

__all__ = ["Worker", "beat", "ENV_NAME"]

ENV_NAME = "SHMMON_NAME"
"""The environment variable naming the object :func:`beat` beats."""

MAX_NAME_LEN = 255
"""The longest object name, in bytes."""

MIN_SIZE = 16
"""The smallest object a worker maps: a sequence in each half."""

FOLLOW_PERIOD = 1.0
"""Seconds between two checks of the object (and two tries of a missing one)."""

OFF_SEQUENCE = 0
"""Offset of the uint64 heartbeat sequence in the worker half."""

OFF_WORKER_PID = 8
"""Offset of the int64 worker pid in the worker half (when the half has 16 bytes)."""

RECORD_LEN = 128
"""Length of the monitor's status record at the start of the monitor half."""

REC_RETIRED = 76
"""Offset of the uint32 retired flag in the status record."""

_DIR = "/dev/shm/"
_MASK = (1 << 64) - 1


def _check_name(name):
    """Raise ValueError unless name can name an object (the rule of shmobj.ValidateName)."""
    if not isinstance(name, str):
        raise TypeError("shmmon: object name must be a str, not %s" % type(name).__name__)
    b = os.fsencode(name)
    why = None
    if not b:
        why = "empty"
    elif len(b) > MAX_NAME_LEN:
        why = "%d bytes long" % len(b)
    elif b"/" in b:
        why = "contains '/'"
    elif b"\0" in b:
        why = "contains a NUL byte"
    elif b in (b".", b".."):
        why = "reserved"
    if why:
        shown = name if len(name) <= 40 else name[:40] + "..."
        raise ValueError(
            "shmmon: invalid object name %r (%s): want 1-%d bytes, no '/' or NUL, not '.' or '..'"
            % (shown, why, MAX_NAME_LEN))


class Worker:
    """Beats one object. Safe for use from many threads; see the module's documentation.

    Worker(name) never fails because of the object: a missing or unusable one makes
    :meth:`beat` a no-op until a monitor publishes it (:attr:`error` says why). A bad name
    raises ValueError.
    """

    def __init__(self, name):
        _check_name(name)
        self._name = name
        self._path = _DIR + name
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._mm = None        # the mapping; None while there is none
        self._seq = None       # the sequence, a one-item memoryview of 'Q'
        self._retired = None   # the record's retired flag, a one-item memoryview of 'I'
        self._views = []       # every memoryview of self._mm, released before it is closed
        self._ident = None     # (st_dev, st_ino) of the mapped object
        self._size = 0
        self._error = None
        self._closed = False
        with self._lock:
            self._attach()
            self._next = time.monotonic() + FOLLOW_PERIOD

    @property
    def name(self):
        """The object's name."""
        return self._name

    @property
    def attached(self):
        """Whether the worker has an object to beat now."""
        return self._seq is not None

    @property
    def error(self):
        """None while attached, else the OSError of the last try to open the object
        (FileNotFoundError: no monitor yet; PermissionError: its mode shuts this user out)."""
        return self._error

    def beat(self):
        """Add one to the sequence: no system call, no allocation beyond Python's own."""
        with self._lock:
            seq = self._seq
            if seq is not None:
                seq[0] = (seq[0] + 1) & _MASK   # one 8-byte load, one 8-byte store
            now = time.monotonic()
            if now >= self._next:
                self._next = now + FOLLOW_PERIOD
                if not self._closed:
                    self._attach()

    def close(self):
        """Unmap the object. Safe to call twice; beats after it do nothing."""
        with self._lock:
            self._closed = True
            self._switch(None, None, 0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _attach(self):
        """Open the object by name and, unless it is the one mapped (neither retired nor
        shrunk), map it, start its worker half over and switch to it. Call with the lock."""
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            self._fail(e)
            return
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size < MIN_SIZE:
                self._fail(OSError("shmmon: %s is no object (not a regular file of at least %d bytes)"
                                   % (self._path, MIN_SIZE)))
                return
            ident = (st.st_dev, st.st_ino)
            if (self._seq is not None and ident == self._ident and st.st_size >= self._size
                    and not (self._retired is not None and self._retired[0])):
                return   # still ours
            mm = mmap.mmap(fd, st.st_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as e:
            self._fail(e)
            return
        except (OverflowError, ValueError) as e:   # a size no mapping can have
            self._fail(OSError("shmmon: cannot map %s: %s" % (self._path, e)))
            return
        finally:
            os.close(fd)
        self._switch(mm, ident, st.st_size)
        self._error = None

    def _fail(self, err):
        """Note why the object cannot be opened; beats go nowhere until it can."""
        self._error = err
        if self._seq is not None:
            self._switch(None, None, 0)

    def _switch(self, mm, ident, size):
        """Make mm the mapping beats go to, starting its worker half over. Beats hold the lock,
        so the old mapping can be closed at once. Call with the lock."""
        for v in reversed(self._views):
            v.release()
        if self._mm is not None:
            self._mm.close()
        self._mm, self._ident, self._size = mm, ident, size
        self._views, self._seq, self._retired = [], None, None
        if mm is None:
            return
        whole = memoryview(mm)
        half = size // 2
        seq = whole[OFF_SEQUENCE:OFF_SEQUENCE + 8].cast("Q")
        self._views = [whole, seq]
        seq[0] = 0
        if half >= OFF_WORKER_PID + 8:
            whole[OFF_WORKER_PID + 8:half] = bytes(half - OFF_WORKER_PID - 8)
            pid = whole[OFF_WORKER_PID:OFF_WORKER_PID + 8].cast("q")
            pid[0] = self._pid
            pid.release()
        if half >= RECORD_LEN and half % 8 == 0:
            self._retired = whole[half + REC_RETIRED:half + REC_RETIRED + 4].cast("I")
            self._views.append(self._retired)
        self._seq = seq


_default = None
_default_done = False
_default_lock = threading.Lock()


def beat():
    """Beat the object named by the environment variable SHMMON_NAME, which ``shmmon run``
    and ``shmmon serve`` set. The first call opens it, as :class:`Worker` does; without the
    variable, or with an invalid name in it, beat does nothing."""
    global _default, _default_done
    w = _default
    if w is None:
        if _default_done:
            return
        with _default_lock:
            if not _default_done:
                name = os.environ.get(ENV_NAME)
                if name:
                    try:
                        _default = Worker(name)
                    except ValueError:
                        pass
                _default_done = True
        w = _default
        if w is None:
            return
    w.beat()
