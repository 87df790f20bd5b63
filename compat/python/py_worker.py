"""py_worker: a Python worker written with the shmmon package only, for the compat tests.

  py_worker.py [--name NAME] [--period MS] [--for MS]   beat every MS ms (default 20), for MS ms
                                                        (default: until killed); print "ready"
                                                        after the first beat
  py_worker.py [--name NAME] --threads K --beats M      K threads beat M times each, then print
                                                        "beats K*M" and exit 0
  py_worker.py [--name NAME] --burst N                  beat, wait 1.2 s, beat (past the first
                                                        follow check), then beat N times between
                                                        two writes to stderr ("burst begin",
                                                        "burst end")
  py_worker.py --layout                                 print the package's byte layout

Without --name it beats with shmmon.beat() (the object SHMMON_NAME names), else through
shmmon.Worker(NAME). Run it with PYTHONPATH=clients/python, or with the package installed.
"""

import argparse
import os
import sys
import threading
import time

import shmmon


def main():
    p = argparse.ArgumentParser(prog="py_worker")
    p.add_argument("--name")
    p.add_argument("--period", type=int, default=20)
    p.add_argument("--for", dest="duration", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--beats", type=int, default=0)
    p.add_argument("--burst", type=int, default=0)
    p.add_argument("--layout", action="store_true")
    a = p.parse_args()
    if a.layout:
        print("sequence %d pid %d record %d retired %d min_size %d max_name %d follow_ms %d" % (
            shmmon.OFF_SEQUENCE, shmmon.OFF_WORKER_PID, shmmon.RECORD_LEN, shmmon.REC_RETIRED,
            shmmon.MIN_SIZE, shmmon.MAX_NAME_LEN, round(shmmon.FOLLOW_PERIOD * 1000)))
        return 0
    if (a.threads > 0) != (a.beats > 0):
        p.error("--threads and --beats go together")
    beat = shmmon.beat
    if a.name is not None:
        try:
            beat = shmmon.Worker(a.name).beat
        except ValueError as e:
            p.error("bad --name: %s" % e)

    if a.burst > 0:
        # Past the first follow period, so that the burst runs in the steady state: one beat
        # now, one after the period (it runs the check), then the burst within the next.
        beat()
        time.sleep(1.2)
        beat()
        os.write(2, b"burst begin\n")   # the markers a system-call trace is cut at
        for _ in range(a.burst):
            beat()
        os.write(2, b"burst end\n")
        return 0
    if a.threads > 0:
        def beater():
            # Pause 1 ms every 100 beats, so that the run spans several of the monitor's checks.
            for i in range(1, a.beats + 1):
                beat()
                if i % 100 == 0:
                    time.sleep(0.001)
        ts = [threading.Thread(target=beater) for _ in range(a.threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        print("beats %d" % (a.threads * a.beats), flush=True)
        return 0

    beat()
    print("ready", flush=True)
    start = time.monotonic()
    while True:
        time.sleep(a.period / 1000)
        beat()
        if a.duration and (time.monotonic() - start) * 1000 >= a.duration:
            return 0


if __name__ == "__main__":
    sys.exit(main())
