#!/usr/bin/env bash
# shmmon's live demo (run it with `make demo`, which builds bin/shmmon and the C++ peers first):
# one `shmmon serve` supervises a Go worker (worker.Beat()) and a C++ Boost.Interprocess worker
# from a config file. Then each hangs in its own way — the Go worker deadlocks, the C++ worker
# is frozen with SIGSTOP — and serve kills and restarts both; SIGTERM to serve stops everything
# and removes the objects. It ends by itself in under 10 seconds, exits non-zero when a step
# does not happen in time, and leaves no process and no /dev/shm object behind.
set -euo pipefail
cd "$(dirname "$0")"

go build -o bin/goworker ./examples/goworker
GO_NAME="shmmon-demo-go-$$"
CPP_NAME="shmmon-demo-cpp-$$"
tmp="$(mktemp -d /tmp/shmmon-demo.XXXXXX)"
serve_pid=""

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { printf '\ndemo: FAILED: %s\n' "$*" >&2; exit 1; }
# label prefixes every line of a program's output with its name.
label() { sed -u "s/^/[$1] /"; }

# field NAME KEY prints one field of `shmmon inspect --name NAME --json` (empty if unavailable).
field() {
	bin/shmmon inspect --name "$1" --json 2>/dev/null |
		sed -n "s/^ *\"$2\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}\$/\1/p"
}
# wait_for SECONDS WHAT COMMAND...: poll COMMAND every 100ms until it succeeds; fail after SECONDS.
wait_for() {
	local secs="$1" what="$2"
	shift 2
	local deadline=$((SECONDS + secs))
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || fail "$what: not within ${secs}s"
		sleep 0.1
	done
}
# healthy NAME [OLD_PID [KILLS]]: NAME is ok, watched by a pid other than OLD_PID, with KILLS kills.
healthy() {
	local pid
	pid="$(field "$1" watched_pid)"
	[ "$(field "$1" state)" = ok ] && [ -n "$pid" ] && [ "$pid" != 0 ] && [ "$pid" != "${2:-}" ] &&
		[ "$(field "$1" kills)" = "${3:-0}" ]
}
# hang NAME WHO SIGNAL HOW: hang the worker NAME (WHO: "Go worker", for the messages) with
# kill -SIGNAL (HOW: what the signal does to it), and wait until serve has killed it and started
# it again. The hung worker's pid is left in $hung_pid.
hang() {
	hung_pid="$(field "$1" watched_pid)"
	say "hang the $2 (kill -$3 $hung_pid: $4)"
	kill "-$3" "$hung_pid"
	wait_for 15 "$2 killed and restarted" healthy "$1" "$hung_pid" 1
	! kill -0 "$hung_pid" 2>/dev/null || fail "the hung $2 $hung_pid is still running"
}
# ls_demo: `shmmon ls`, this demo's objects only (other programs may have objects of their own).
ls_demo() { bin/shmmon ls | awk -v a="$GO_NAME" -v b="$CPP_NAME" 'NR == 1 || $1 == a || $1 == b'; }
# status NAME: one line from `shmmon inspect --json`.
status() {
	printf '%s: state=%s watched_pid=%s seq=%s kills=%s restarts=%s\n' "$1" "$(field "$1" state)" \
		"$(field "$1" watched_pid)" "$(field "$1" seq)" "$(field "$1" kills)" "$(field "$1" restarts)"
}
# demo_pids: every process that has one of this demo's objects in its SHMMON_NAME (the workers
# and anything they started; not serve itself).
demo_pids() {
	local p
	for p in /proc/[0-9]*; do
		tr '\0' '\n' 2>/dev/null <"$p/environ" |
			grep -qxE "SHMMON_NAME=($GO_NAME|$CPP_NAME)" && echo "${p#/proc/}"
	done
	return 0
}

cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
		kill -TERM "$serve_pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$serve_pid" 2>/dev/null || true
	fi
	for p in $(demo_pids); do kill -KILL "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -f "/dev/shm/$GO_NAME" "/dev/shm/$CPP_NAME"
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cfg="$tmp/demo.toml"
cat >"$cfg" <<EOF
# shmmon serve config of the demo: check every 300ms, 3 stalls in a row = hung.
[defaults]
interval = "300ms"

[[worker]]                      # Go: worker.Beat() every 100ms, object from SHMMON_NAME
name = "$GO_NAME"
command = ["bin/goworker", "-period", "100ms"]
kill_after = "2s"               # it ends on SIGTERM

[[worker]]                      # C++ Boost.Interprocess: reopen + map + store every 100ms
name = "$CPP_NAME"
command = ["compat/bin/boost_worker", "$CPP_NAME", "100"]
kill_after = "1s"               # a frozen process ignores SIGTERM: SIGKILL after 1s
EOF
say "the config: $cfg"
sed 's/^/    /' "$cfg"

say "shmmon serve --config $cfg  (its log: [serve]; the workers' output: [workers])"
mkfifo "$tmp/serve.fifo" "$tmp/workers.fifo"
tee "$tmp/serve.log" <"$tmp/serve.fifo" | label serve &
label workers <"$tmp/workers.fifo" &
bin/shmmon serve --config "$cfg" >"$tmp/workers.fifo" 2>"$tmp/serve.fifo" &
serve_pid=$!

both_healthy() { healthy "$GO_NAME" && healthy "$CPP_NAME"; }
wait_for 10 "both workers healthy" both_healthy
sleep 1
say "both healthy: shmmon ls"
ls_demo

hang "$GO_NAME" "Go worker" USR1 "its loop deadlocks; the process stays up"
sleep 0.5
say "the Go worker was killed (SIGTERM) and restarted: new pid, kills=1"
status "$GO_NAME"
ls_demo

hang "$CPP_NAME" "C++ worker" STOP "frozen, it cannot handle SIGTERM, so SIGKILL follows"
grep -q "worker=$CPP_NAME pid=$hung_pid event=exit reason=kill status=\"signal killed\" sigkill=true" \
	"$tmp/serve.log" || fail "no SIGKILL of the frozen C++ worker in serve's log"
seq_then="$(field "$CPP_NAME" seq)"
cpp_beating() { [ "$(field "$CPP_NAME" seq)" -gt "$seq_then" ] 2>/dev/null; }
wait_for 5 "the new C++ worker beating" cpp_beating
say "the C++ worker was killed (SIGKILL after kill_after) and restarted: new pid, beating, kills=1"
status "$CPP_NAME"
ls_demo

say "stop serve (SIGTERM): it stops its workers and removes their objects"
pids="$(demo_pids | paste -sd " ")"
kill -TERM "$serve_pid"
serve_gone() { ! kill -0 "$serve_pid" 2>/dev/null; }
wait_for 10 "serve stopped" serve_gone
rc=0
wait "$serve_pid" || rc=$?
serve_pid=""
for p in $pids; do ! kill -0 "$p" 2>/dev/null || fail "worker process $p is still running"; done
[ -z "$(demo_pids)" ] || fail "worker processes left: $(demo_pids | paste -sd " ")"
wait # the labels end once no process holds their pipes: everything written is printed
echo "shmmon serve exited $rc"
[ "$rc" = 0 ] || fail "shmmon serve exited $rc, want 0"
left="$(bin/shmmon ls --all | awk -v a="$GO_NAME" -v b="$CPP_NAME" '$1 == a || $1 == b')"
[ -z "$left" ] || fail "objects left behind: $left"
echo "workers stopped (pids $pids)"
echo "objects removed: no $GO_NAME or $CPP_NAME in \`shmmon ls --all\`"
