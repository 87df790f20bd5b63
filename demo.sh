#!/usr/bin/env bash
# shmmon's live demo (run it with `make demo`): a Go worker and a C++ Boost.Interprocess
# worker beat into /dev/shm, each watched by `shmmon watch`. Then each hangs in its own way —
# the Go worker deadlocks, the C++ worker is frozen with SIGSTOP — and shmmon catches and
# kills both. It ends by itself in under 10 seconds.
set -euo pipefail
cd "$(dirname "$0")"

go build -o bin/goworker ./examples/goworker
GO_NAME="shmmon-demo-go-$$"
CPP_NAME="shmmon-demo-cpp-$$"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -f "/dev/shm/$GO_NAME" "/dev/shm/$CPP_NAME"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# label prefixes every line of a program's output with its name.
label() { sed -u "s/^/[$1] /"; }

say "start a Go worker (worker.Beat() every 100ms) and a C++ Boost worker (reopen+map+store every 100ms)"
SHMMON_NAME="$GO_NAME" bin/goworker -period 100ms > >(label go-worker) 2>&1 &
go_pid=$!; pids+=("$go_pid")
compat/bin/boost_worker "$CPP_NAME" 100 > >(label cpp-worker) 2>&1 &
cpp_pid=$!; pids+=("$cpp_pid")

say "watch both: check every 300ms, 3 stalls in a row = hung"
bin/shmmon watch --name "$GO_NAME" --pid "$go_pid" --interval 300ms --kill-after 2s 2> >(label watch-go) &
watch_go=$!; pids+=("$watch_go")
bin/shmmon watch --name "$CPP_NAME" --pid "$cpp_pid" --interval 300ms --kill-after 1s 2> >(label watch-cpp) &
watch_cpp=$!; pids+=("$watch_cpp")

sleep 3
say "both healthy: shmmon ls"
bin/shmmon ls

say "hang the Go worker (SIGUSR1 deadlocks its loop; the process stays up)"
kill -USR1 "$go_pid"
rc=0; wait "$watch_go" || rc=$?
echo "shmmon watch for the Go worker exited $rc (3 = killed a hung worker)"
[ "$rc" = 3 ] || { echo "demo: expected exit 3" >&2; exit 1; }

say "freeze the C++ worker (SIGSTOP: it cannot even handle SIGTERM, so SIGKILL follows)"
kill -STOP "$cpp_pid"
rc=0; wait "$watch_cpp" || rc=$?
echo "shmmon watch for the C++ worker exited $rc (3 = killed a hung worker)"
[ "$rc" = 3 ] || { echo "demo: expected exit 3" >&2; exit 1; }

say "both hangs caught and killed; objects removed:"
bin/shmmon ls --all | grep -E "NAME|shmmon-demo-" || echo "(none left)"
