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
segbeat=$(ns BenchmarkSegmentBeat)
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
| Boost worker pattern: open_only + map + clear half + store, per beat | $(f1 "$breopen") | | Beat is **$(ratio "$breopen" "$beat") faster** |

## Check (monitor side)

| what | ns/op | allocs/op | ratio |
|---|---:|---:|---|
| \`(*monitor.Heartbeat).Check\`, sequence unchanged | $(f1 "$stalled") | $(allocs BenchmarkCheck/stalled) | |
| \`Check\` after a beat (progress), minus the loop's \`Segment.Beat\` ($(f1 "$segbeat") ns) | $checkonly | $(allocs BenchmarkCheck/progress) | |
| Boost checker pattern: map + read + compare per check | $(f1 "$bmap") | | Check is **$(ratio "$bmap" "$stalled") faster** |
| one scan of 10,000 objects (clock read once per scan) | $(us "$scan") | $(allocs BenchmarkScan/objects=10000) | |
| one scan of 10,000 objects, Boost map-per-check | $(ms "$bscan") | | the scan is **$(ratio "$bscan" "$scan") faster** |

## Restart of a hung worker (\`shmmon run\`)

| what | ms |
|---|---:|
| hang verdict → new program started (terminate the group, reap, start) | $(metric BenchmarkRestartLatency ms-shmmon/op) |
| hang verdict → the new program's first beat (includes the program's own start) | $(metric BenchmarkRestartLatency ms-first-beat/op) |

The worker ends on SIGTERM, so \`--kill-after\` never adds to these; a worker that ignores
SIGTERM adds exactly \`--kill-after\`. The first restart after a healthy run has no backoff.

## Publishing

| what | µs/op |
|---|---:|
| publish one object (temporary name, size, record, rename) | $(awk -v a="$publish" 'BEGIN { printf "%.1f", a / 1000 }') |

## Notes

- The fault-safe Beat and Check run under \`debug.SetPanicOnFault\` with a deferred recover, so
  an object truncated under the mapping cannot crash the process; that guard costs a non-inlined
  call and two runtime calls per operation, which is what separates Beat from the floor.
- The issue's targets (Beat ≤ 10 ns, Check ≤ 20 ns, 10,000-object scan ≤ 300 µs) were set on a
  machine where the floor measured 4.4 ns; compare the ratio to the floor when the floor differs.
- Raw output of this run: \`bench.out\` (not committed).
MD
