#!/usr/bin/env python3
"""A worker for shmmon's limit tests: it beats its object while it uses resources.

It beats the object named by SHMMON_NAME (or its first argument) every HOG_PERIOD seconds
(default 0.02) as a Boost worker does: open the object, map it, write the next sequence at
offset 0 and its pid at 8, unmap. Between beats it
  - with HOG_GROW=N, allocates N more bytes (touched) per second, up to HOG_MAX bytes if set;
  - with HOG_BUSY=1, keeps one core busy.
It prints "ready" once its first beat is written.
"""
import mmap
import os
import struct
import sys
import time

name = sys.argv[1] if len(sys.argv) > 1 else os.environ["SHMMON_NAME"]
period = float(os.environ.get("HOG_PERIOD", "0.02"))
grow = int(os.environ.get("HOG_GROW", "0"))
most = int(os.environ.get("HOG_MAX", "0"))
busy = os.environ.get("HOG_BUSY") == "1"

held = []
size = 0
seq = 0
ready = False
last = time.monotonic()
while True:
    try:
        fd = os.open("/dev/shm/" + name, os.O_RDWR)
        try:
            m = mmap.mmap(fd, 16)
            seq += 1
            m[0:16] = struct.pack("=Qq", seq, os.getpid())
            m.close()
        finally:
            os.close(fd)
        if not ready:
            print("ready", flush=True)
            ready = True
    except OSError:
        pass  # no object yet, or it is being replaced: the next beat tries again
    now = time.monotonic()
    if grow and (not most or size < most):
        n = int(grow * (now - last))
        if n > 0:
            held.append(bytearray(b"\x01") * n)
            size += n
    last = now
    until = now + period
    if busy:
        while time.monotonic() < until:
            pass
    else:
        time.sleep(period)
