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
# load N UNIT: a BenchmarkServeLoad figure at N workers.
load() { metric "BenchmarkServeLoad/workers=$1" "$2"; }
cpu=$(load 10000 cpu-%core)
rss=$(load 10000 rss-MiB)
anon=$(load 10000 anon-MiB)
shmem=$(load 10000 shmem-MiB)
file=$(load 10000 file-MiB)
hwm=$(load 10000 hwm-MiB)
anon0=$(load 0 anon-MiB)
perworker=$(awk -v a="$anon" -v z="$anon0" 'BEGIN { printf "%.2f", (a - z) * 1024 / 10000 }')
# big: the largest size measured (100,000, or what the limit of open files allowed).
big=$(awk '$1 ~ /^BenchmarkServeLoad\/workers=/ { n = $1; sub(/^BenchmarkServeLoad\/workers=/, "", n); sub(/-[0-9]+$/, "", n); if (n + 0 > m) m = n + 0 } END { print m + 0 }' "$in")
bigname=$(echo "$big" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta')
perworkerbig=$(awk -v a="$(load "$big" anon-MiB)" -v z="$anon0" -v n="$big" 'BEGIN { if (n > 0) printf "%.2f", (a - z) * 1024 / n }')
# latency HOG KIND: the DetectLatency figure (ms).
latency() { metric "BenchmarkDetectLatency/hog=$1" "$2"; }
promise=$(latency false promise-ms)
# within A B: "met" when A ≤ B, else "**not met** (over by X ms)".
within() { awk -v a="$1" -v b="$2" 'BEGIN { if (a <= b) print "met"; else printf "**not met** (over by %.0f ms)\n", a - b }'; }
below() { awk -v a="$1" -v w="$2" 'BEGIN { if (a < w) print "met"; else print "**not met**" }'; }
atmost() { awk -v a="$1" -v w="$2" 'BEGIN { if (a <= w) print "met"; else print "**not met**" }'; }
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
| \`(*worker.Worker).Beat\` (fault-safe) | $(f1 "$beat") | $(allocs BenchmarkBeat) | $(awk -v a="$beat" -v b="$floor" 'BEGIN { printf "%.1f× the floor", a / b }') (targets: ≤ 10 ns: $(atmost "$beat" 10); ≤ 2× the floor: $(atmost "$(awk -v a="$beat" -v b="$floor" 'BEGIN { print a / b }')" 2)) |
| \`Beat\` from 2 goroutines at once (same cache line) | $(f1 "$beatpar") | $(allocs BenchmarkBeatParallel) | |
| Boost worker pattern: open_only + map + clear half + store, per beat | $(f1 "$breopen") | | Beat is **$(ratio "$breopen" "$beat") faster** (reported, not a target) |
| systemd-style notify: one \`WATCHDOG=1\` datagram (sendto on an open unix socket) | $(f1 "$notify") | $(allocs BenchmarkNotifyDatagram) | Beat is **$(ratio "$notify" "$beat") faster** (reported, not a target) |
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

## One \`shmmon serve\` watching 10,000 and $bigname objects at 1 Hz

The real command, watched-only workers, every object beaten at 10 Hz by one other process;
serve's own CPU time and memory over a 20 s window after all were ok (\`BenchmarkServeLoad\` in
package faults). Serve's own memory is its anonymous memory (RssAnon: heap, stacks, runtime):
the objects' pages (RssShmem) are tmpfs pages shared with the workers, present whoever maps
them, and the executable's pages (RssFile) do not grow with the workers.
$(if [ "$big" -lt 100000 ]; then echo "
The largest size is $bigname, not 100,000: serve holds one pidfd per watched worker, and this
machine's hard limit of open files ($(ulimit -Hn)) cannot be raised, even by root; with more
descriptors, make bench measures 100,000."; fi)

| what | 0 workers (baseline) | 10,000 workers | $bigname workers | target |
|---|---:|---:|---:|---|
| CPU, percent of one core | $(load 0 cpu-%core) % | $cpu % | $(load "$big" cpu-%core) % | under 1% at 10,000: $(below "$cpu" 1) |
| RssAnon (serve's own) | $anon0 MiB | $anon MiB | $(load "$big" anon-MiB) MiB | |
| RssAnon per worker above the baseline | | $perworker KiB | $perworkerbig KiB | ≤ 2 KiB at 10,000: $(atmost "$perworker" 2) |
| VmRSS (resident) | $(load 0 rss-MiB) MiB | $rss MiB | $(load "$big" rss-MiB) MiB | |
| RssShmem (the objects' pages, 4 KiB each, shared) | $(load 0 shmem-MiB) MiB | $shmem MiB | $(load "$big" shmem-MiB) MiB | |
| RssFile (executable and libraries) | $(load 0 file-MiB) MiB | $file MiB | $(load "$big" file-MiB) MiB | |
| peak resident (VmHWM) | $(load 0 hwm-MiB) MiB | $hwm MiB | $(load "$big" hwm-MiB) MiB | |

Where it goes: a watched-only worker holds no goroutine. Its checks run with every other
check of its interval on one goroutine, on a grid of slots (a tenth of the interval, at most
50 ms), reading the clock once per slot; the exits of all watched processes come from one epoll
set on their pidfds, read by one goroutine; an object is stat(2)ed only after the one inotify
watch on /dev/shm names it (and once a minute as a safety net). A bare scan of 10,000 objects
takes $(us "$scan") (above), $(awk -v a="$scan" 'BEGIN { printf "%.2f", a / 1e9 * 100 }')% of a core at 1 Hz; the rest of serve's CPU is per-worker state and
the cold pages of the sequence and the record.

The RssAnon per worker is what each worker's state costs: its configuration (kept once, for
reloads to compare), its heartbeat (mapping, checker, books), its pidfd handle and exit
callback, its watch and pacing slot, and the garbage collector's headroom. Going below 2 KiB
would take packing the books (four time values, the limit figures) and the configuration
into compact per-fleet arrays instead of a struct per worker, and a pidfd held without an
os.File; the figure above says whether that is still needed.

## Detection latency: 1,000 supervised workers, 30 of them hung (interval 1 s, 3 stalls)

For each hung worker, the time from its last beat to the hang verdict and to the first signal
(\`BenchmarkDetectLatency\` in package faults), with and without a CPU hog on every core. The
promise is (stalls + 1) × interval + one slot of the pacer: $promise ms.

| load | verdict p50 | verdict p99 | verdict max | signal p50 | signal p99 | signal max | max within the promise |
|---|---:|---:|---:|---:|---:|---:|---|
| idle | $(latency false p50-verdict-ms) ms | $(latency false p99-verdict-ms) ms | $(latency false max-verdict-ms) ms | $(latency false p50-signal-ms) ms | $(latency false p99-signal-ms) ms | $(latency false max-signal-ms) ms | $(within "$(latency false max-signal-ms)" "$promise") |
| a busy loop on every core | $(latency true p50-verdict-ms) ms | $(latency true p99-verdict-ms) ms | $(latency true max-verdict-ms) ms | $(latency true p50-signal-ms) ms | $(latency true p99-signal-ms) ms | $(latency true max-signal-ms) ms | $(within "$(latency true max-signal-ms)" "$promise") |

## Reload at scale: 10,000 watched workers, one changed

The file is saved with one worker's interval changed (\`BenchmarkReload\` in package faults):
the time from the save to the changed worker being watched again, and the unchanged workers
touched (a new object, a new pid, a state change, a missed beat: each counts).

| what | value | target |
|---|---:|---|
| save → the changed worker watched again | $(metric BenchmarkReload reload-ms) ms | |
| unchanged workers touched, of 9,999 | $(metric BenchmarkReload touched | cut -d. -f1) | 0: $(atmost "$(metric BenchmarkReload touched)" 0) |

## Worker logs

| what | MB/s | allocs/op |
|---|---:|---:|
| split a program's output into whole lines (64 KiB: 546 lines of 120 bytes per op) | $(metric BenchmarkLogLines MB/s) | $(allocs BenchmarkLogLines) |
| timestamp, tag and write those lines to the log file (rotating at 16 MiB) | $(metric BenchmarkLogWrite MB/s) | $(allocs BenchmarkLogWrite) |

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
- The ratios to the Boost reopen pattern and to a notify datagram are reported, not targets:
  they move with the machine (Beat needs ≤ $(awk -v a="$breopen" 'BEGIN { printf "%.1f", a / 1000 }') ns here for 1000× the first, ≤ $(awk -v a="$notify" 'BEGIN { printf "%.1f", a / 200 }') ns for 200× the
  second). The targets are Beat ≤ 10 ns and ≤ 2× the bare atomic add of the same run. The fault
  guard costs $(awk -v a="$beat" -v b="$floor" 'BEGIN { printf "%.1f", a - b }') ns of Beat; giving it up would let a truncated object kill the worker.
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
