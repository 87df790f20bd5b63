"""py_bench: times the beat of the Python client for BENCHMARKS.md, in Go benchmark format:

  BenchmarkPythonBeat <iters> <ns> ns/op              shmmon.Worker.beat from one thread
  BenchmarkPythonNotifyDatagram <iters> <ns> ns/op    one "WATCHDOG=1" datagram sent from Python
                                                      (socket.sendto on an open unix socket, as a
                                                      notify library does), drained by a child
                                                      process

and first a line "# python VERSION PATH" naming the interpreter. It creates its own object
(shmmon-pybench-<pid>, 4096 bytes), as a monitor would, and removes it and the socket at the
end. Run it with PYTHONPATH=clients/python.
"""

import functools
import os
import platform
import signal
import socket
import sys
import tempfile
import time

import shmmon


def bench(label, op):
    """Grow the count as Go's testing package does until one run takes at least 1 s; print it."""
    n = 1
    while True:
        loop = range(n)
        t0 = time.perf_counter_ns()
        for _ in loop:
            op()
        ns = time.perf_counter_ns() - t0
        if ns >= 1_000_000_000:
            print("%s %d %.2f ns/op" % (label, n, ns / n), flush=True)
            return
        want = 1.2e9 * n / ns if ns > 0 else n * 100
        n = max(n + 1, int(min(want, n * 100)))


def beat_bench():
    name = "shmmon-pybench-%d" % os.getpid()
    path = "/dev/shm/" + name
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        os.ftruncate(fd, 4096)
        os.close(fd)
        w = shmmon.Worker(name)
        try:
            if not w.attached:
                raise SystemExit("py_bench: cannot attach %s: %s" % (name, w.error))
            bench("BenchmarkPythonBeat", w.beat)
        finally:
            w.close()
    finally:
        os.unlink(path)


def notify_bench():
    with tempfile.TemporaryDirectory() as d:
        addr = os.path.join(d, "notify")
        rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        rx.bind(addr)
        child = os.fork()
        if child == 0:   # drain in another process: a thread would take the sender's GIL
            try:
                while True:
                    rx.recv(64)
            finally:
                os._exit(0)
        rx.close()
        tx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)   # unbound, as sd_notify's
        msg = b"WATCHDOG=1"
        try:
            # partial: one call per op, as w.beat is
            bench("BenchmarkPythonNotifyDatagram", functools.partial(tx.sendto, msg, addr))
        finally:
            tx.close()
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)


def main():
    # For the report: which interpreter the figures are of.
    print("# python %s %s" % (platform.python_version(), sys.executable), flush=True)
    beat_bench()
    notify_bench()
    return 0


if __name__ == "__main__":
    sys.exit(main())
