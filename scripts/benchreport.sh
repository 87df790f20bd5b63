#!/usr/bin/env bash
# benchreport.sh BENCH_OUT: writes BENCHMARKS.md (to stdout) from the output of one
# `make bench` run, so every ratio compares figures measured in the same run.
set -euo pipefail
in=${1:?usage: benchreport.sh bench.out}

# ns NAME: the ns/op of the benchmark whose name (without the -GOMAXPROCS suffix) is NAME.
ns() {
	awk -v want="$1" '$1 ~ /^Benchmark/ { n = $1; sub(/-[0-9]+$/, "", n); if (n == want) { for (i = 2; i < NF; i++) if ($(i+1) == "ns/op") { print $i; exit } } }' "$in"
}
allocs() {
	awk -v want="$1" '$1 ~ /^Benchmark/ { n = $1; sub(/-[0-9]+$/, "", n); if (n == want) { for (i = 2; i < NF; i++) if ($(i+1) == "allocs/op") { print $i; exit } } }' "$in"
}
# metric NAME UNIT: the value a benchmark reported with b.ReportMetric in UNIT.
metric() {
	awk -v want="$1" -v unit="$2" '$1 ~ /^Benchmark/ { n = $1; sub(/-[0-9]+$/, "", n); if (n == want) { for (i = 2; i < NF; i++) if ($(i+1) == unit) { printf "%.2f", $i; exit } } }' "$in"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f×", a / b }'; }
f1() { awk -v a="$1" 'BEGIN { printf "%.1f", a }'; }
us() { awk -v a="$1" 'BEGIN { printf "%.0f µs", a / 1000 }'; }
ms() { awk -v a="$1" 'BEGIN { printf "%.1f ms", a / 1e6 }'; }

floor=$(ns BenchmarkAtomicAddFloor)
beat=$(ns BenchmarkBeat)
beatpar=$(ns BenchmarkBeatParallel)
stalled=$(ns BenchmarkCheck/stalled)
progress=$(ns BenchmarkCheck/progress)
scan=$(ns BenchmarkScan/objects=10000)
publish=$(ns BenchmarkPublish)
breopen=$(ns BenchmarkBoostReopenBeat)
bmap=$(ns BenchmarkBoostMapCheck)
bscan=$(ns BenchmarkBoostScan/objects=10000)
scan100k=$(ns BenchmarkScan/objects=100000)
publish10k=$(ns BenchmarkPublish10k)
notify=$(ns BenchmarkNotifyDatagram)
tcp=$(ns BenchmarkTCPPacket)
cpu=$(metric BenchmarkServeLoad cpu-%core)
rss=$(metric BenchmarkServeLoad rss-MiB)
anon=$(metric BenchmarkServeLoad anon-MiB)
shmem=$(metric BenchmarkServeLoad shmem-MiB)
hwm=$(metric BenchmarkServeLoad hwm-MiB)
# verdict A B WANT: "met" when A/B ≥ WANT, else "**not met**".
verdict() { awk -v a="$1" -v b="$2" -v w="$3" 'BEGIN { if (a / b >= w) print "met"; else print "**not met**" }'; }
below() { awk -v a="$1" -v w="$2" 'BEGIN { if (a < w) print "met"; else print "**not met**" }'; }
segbeat=$(ns BenchmarkSegmentBeat)
cbeat=$(ns BenchmarkCBeat)
cbeatpar=$(ns BenchmarkCBeatParallel)
pybeat=$(ns BenchmarkPythonBeat)
pynotify=$(ns BenchmarkPythonNotifyDatagram)
pyver=$(awk '$1 == "#" && $2 == "python" { print $3; exit }' "$in")
checkonly=$(awk -v p="$progress" -v b="$segbeat" 'BEGIN { printf "%.1f", p - b }')

cat <<MD
# Benchmarks

Measured by \`make bench\` in one run on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'),
$(uname -sr)), $(date -u +%Y-%m-%d). Regenerate with \`make bench\`. Absolute figures move with the
machine; the ratios below compare figures from this same run.

## Beat (worker side)

| what | ns/op | allocs/op | ratio |
|---|---:|---:|---|
| one atomic add into the mapped page, no fault safety (floor) | $(f1 "$floor") | $(allocs BenchmarkAtomicAddFloor) | 1× |
| \`(*worker.Worker).Beat\` (fault-safe) | $(f1 "$beat") | $(allocs BenchmarkBeat) | $(awk -v a="$beat" -v b="$floor" 'BEGIN { printf "%.1f× the floor", a / b }') |
| \`Beat\` from 2 goroutines at once (same cache line) | $(f1 "$beatpar") | $(allocs BenchmarkBeatParallel) | |
| Boost worker pattern: open_only + map + clear half + store, per beat | $(f1 "$breopen") | | Beat is **$(ratio "$breopen" "$beat") faster** (target ≥ 1000×: $(verdict "$breopen" "$beat" 1000)) |
| systemd-style notify: one \`WATCHDOG=1\` datagram (sendto on an open unix socket) | $(f1 "$notify") | $(allocs BenchmarkNotifyDatagram) | Beat is **$(ratio "$notify" "$beat") faster** (target ≥ 200×: $(verdict "$notify" "$beat" 200)) |
| the original framework's TCP watchdog: one 552-byte packet written on an open loopback connection | $(f1 "$tcp") | $(allocs BenchmarkTCPPacket) | Beat is **$(ratio "$tcp" "$beat") faster** |
| C client: \`shmmon_worker_beat\` (clients/c/shmmon.h: an atomic add and a coarse-clock read) | $(f1 "$cbeat") | | **$(ratio "$breopen" "$cbeat") faster** than the Boost reopen pattern; $(awk -v a="$cbeat" -v b="$floor" 'BEGIN { printf "%.1f× the floor", a / b }') |
| C client from 2 threads at once (same cache line) | $(f1 "$cbeatpar") | | |
| Python client: \`shmmon.Worker.beat\` (CPython $pyver: a lock, a 64-bit load and store, a clock read) | $(f1 "$pybeat") | | **$(ratio "$pynotify" "$pybeat") faster** than the datagram below |
| systemd-style notify from Python: one \`WATCHDOG=1\` datagram (\`socket.sendto\` on an open unix socket) | $(f1 "$pynotify") | | |

## Check (monitor side)

| what | ns/op | allocs/op | ratio |
|---|---:|---:|---|
| \`(*monitor.Heartbeat).Check\`, sequence unchanged | $(f1 "$stalled") | $(allocs BenchmarkCheck/stalled) | |
| \`Check\` after a beat (progress), minus the loop's \`Segment.Beat\` ($(f1 "$segbeat") ns) | $checkonly | $(allocs BenchmarkCheck/progress) | |
| Boost checker pattern: map + read + compare per check | $(f1 "$bmap") | | Check is **$(ratio "$bmap" "$stalled") faster** |
| one scan of 10,000 objects (clock read once per scan) | $(us "$scan") | $(allocs BenchmarkScan/objects=10000) | |
| one scan of 10,000 objects, Boost map-per-check | $(ms "$bscan") | | the scan is **$(ratio "$bscan" "$scan") faster** |
| one scan of 100,000 objects | $(ms "$scan100k") | $(allocs BenchmarkScan/objects=100000) | $(awk -v a="$scan100k" -v b="$scan" 'BEGIN { printf "%.1f× the 10,000 scan", a / b }') |
| a resource-limit check of one worker, once per interval (only a worker with a limit): its tree from /proc (a Go worker) / its cgroup; CPU time | $(us "$(metric BenchmarkCheckLimits/tree cpu-ns/op)") / $(us "$(metric BenchmarkCheckLimits/cgroup cpu-ns/op)") | $(allocs BenchmarkCheckLimits/tree) | the judgement alone: $(f1 "$(ns BenchmarkCheckLimits/judge)") ns |

## One \`shmmon serve\` watching 10,000 objects at 1 Hz

The real command, 10,000 watched-only workers, every object beaten at 10 Hz by one other
process; serve's own CPU time and memory over a 20 s window after all were ok
(\`BenchmarkServeLoad\` in package faults).

| what | value | target |
|---|---:|---|
| CPU, percent of one core | $cpu % | under 1%: $(below "$cpu" 1) |
| resident memory (VmRSS) | $rss MiB | under 64 MiB: $(below "$rss" 64) |
| of which its own (RssAnon: heap, stacks) | $anon MiB | |
| of which the objects' pages it maps (RssShmem, 4 KiB × 10,000, shared with the workers) | $shmem MiB | |
| of which the executable's and libraries' pages (RssFile) | $(awk -v r="$rss" -v a="$anon" -v s="$shmem" 'BEGIN { printf "%.1f", r - a - s }') MiB | |
| peak resident (VmHWM) | $hwm MiB | |

Where it goes: a watched-only worker holds no goroutine. Its checks run with every other
check of its interval on one goroutine, on a grid of slots (a tenth of the interval, at most
50 ms), reading the clock once per slot; the exits of all watched processes come from one epoll
set on their pidfds, read by one goroutine; an object is stat(2)ed only after the one inotify
watch on /dev/shm names it (and once a minute as a safety net). What is left, $(awk -v c="$cpu" 'BEGIN { printf "%.2f", c }') µs of CPU
per check, is the check over 10,000 cold pages (the sequence and the status record) and
per-worker state; a bare scan of 10,000 objects takes $(us "$scan") (above), $(awk -v a="$scan" 'BEGIN { printf "%.2f", a / 1e9 * 100 }')% of a core at 1 Hz.

The memory target is not met, and cannot be by serve's own memory alone: the 10,000 mapped
pages are $shmem MiB (the monitor maps each object once and touches the sequence and the
record on every check), and the executable's own pages and libc are $(awk -v r="$rss" -v a="$anon" -v s="$shmem" 'BEGIN { printf "%.1f", r - a - s }') MiB (RssFile), which
leaves $(awk -v r="$rss" -v a="$anon" -v s="$shmem" 'BEGIN { printf "%.1f", 64 - (r - a - s) - s }') MiB, $(awk -v r="$rss" -v a="$anon" -v s="$shmem" 'BEGIN { printf "%.1f", (64 - (r - a - s) - s) * 1024 / 10000 }') KiB per worker, for serve's heap. It uses $(awk -v a="$anon" 'BEGIN { printf "%.1f", a * 1024 / 10000 }') KiB per
worker (its configuration, heartbeat and checker, mapping, pidfd handle, watch and books, and
the garbage collector's headroom).

## Restart of a hung worker (\`shmmon run\`)

| what | ms |
|---|---:|
| hang verdict → new program started (terminate the group, reap, start) | $(metric BenchmarkRestartLatency ms-shmmon/op) |
| hang verdict → the new program's first beat (includes the program's own start) | $(metric BenchmarkRestartLatency ms-first-beat/op) |

The worker ends on SIGTERM, so \`--kill-after\` never adds to these; a worker that ignores
SIGTERM adds exactly \`--kill-after\`. The first restart after a healthy run has no backoff.

## Publishing

| what | time |
|---|---:|
| publish one object (temporary name, size, record, rename) | $(awk -v a="$publish" 'BEGIN { printf "%.1f µs", a / 1000 }') |
| publish 10,000 objects, as serve does at start (owner check + publish each) | $(ms "$publish10k") |

## Notes

- The fault-safe Beat and Check run under \`debug.SetPanicOnFault\` with a deferred recover, so
  an object truncated under the mapping cannot crash the process; that guard costs a non-inlined
  call and two runtime calls per operation, which is what separates Beat from the floor.
- Beat ≥ 1000× the Boost reopen pattern needs Beat ≤ $(awk -v a="$breopen" 'BEGIN { printf "%.1f", a / 1000 }') ns here, and ≥ 200× a notify datagram
  needs Beat ≤ $(awk -v a="$notify" 'BEGIN { printf "%.1f", a / 200 }') ns, against a floor of $(f1 "$floor") ns for the bare atomic add (the floor itself
  is $(ratio "$breopen" "$floor") and $(ratio "$notify" "$floor") faster). The fault guard costs $(awk -v a="$beat" -v b="$floor" 'BEGIN { printf "%.1f", a - b }') ns of Beat, and giving it up would
  let a truncated object kill the worker: the targets are not met on this machine, and the
  ratio to the floor is the figure to watch.
- A monitor maps every object once: one memory map area each, so watching more than about
  60,000 objects in one process needs \`vm.max_map_count\` (default 65530) raised; \`make bench\`
  raises it to 262144 when run as root, for the 100,000-object scan.
- The issue's targets (Beat ≤ 10 ns, Check ≤ 20 ns, 10,000-object scan ≤ 300 µs) were set on a
  machine where the floor measured 4.4 ns; compare the ratio to the floor when the floor differs.
- The C and Python clients are timed by \`compat/bin/c_bench\` and \`compat/python/py_bench.py\`
  in the same run. A C beat is the atomic add plus a read of the coarse monotonic clock (from
  the vDSO), which paces its once-per-second check of the object. A Python beat is bound by the
  interpreter; its reference is what a Python program would otherwise send: a notify datagram,
  sent from Python too.
- Raw output of this run: \`bench.out\` (not committed).
MD
