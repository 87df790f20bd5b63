// Package compat holds shmmon's C++ peers and the cross-language tests that run them against
// the Go side with real processes (compatibility is tested, not assumed).
//
// The peers are written the way ordinary Boost.Interprocess programs are, and `make compat`
// builds them into compat/bin/:
//
//   - boost_worker [-v] [NAME [PERIOD_MS]]: every beat reopens NAME, maps it, clears the
//     worker half and stores its counter; it retries on any error and exits 0 on SIGTERM.
//   - boost_checker NAME SIZE INTERVAL_MS [COUNT] [THRESHOLD]: removes, creates and truncates
//     NAME, then maps it on every check and prints "check K result R seq S", with the
//     original checker's quirks (failures never reset; -2 exactly at the threshold).
//   - boost_bench: the Boost reference figures of BENCHMARKS.md.
//   - c_worker (C, clients/c/shmmon.h only) and py_worker.py (compat/python/, the shmmon
//     package only): workers of the C and Python clients, one set of flags for both: beat
//     every --period ms (through the one-call form, or the named object of --name), K threads
//     of M beats (--threads, --beats), a burst between two marks for a system-call trace
//     (--burst), or print the byte layout (--layout).
//   - c_bench and py_bench.py: the C and Python clients' figures of BENCHMARKS.md.
//   - tcpwd_client (C, plain POSIX sockets): a client of the original framework's TCP socket watchdog
//     (package tcpwd) that registers, feeds, forwards and prints what is forwarded to it;
//     SIGUSR1 makes it stop feeding while it stays connected.
//
// The C++ peers block SIGTERM and SIGINT and collect them only while they wait, through the
// one header stop_signals.hpp.
//
// The tests of compat_test.go run every pairing — Go monitor (`shmmon watch`) or C++ checker,
// Go worker (the test binary itself), C++ worker, C or Python client — through a healthy phase
// and a hang (SIGSTOP), plus restarts of either side and objects truncated or removed under
// the monitor. The other files run the peers under `shmmon run` and `serve` (serve_test.go),
// in the process table (proctab_test.go), through the notify protocol (notify_test.go) and
// the TCP watchdog (tcpwd_test.go), against serve's HTTP endpoint and hooks
// (metrics_test.go); clients_test.go checks what is particular to the C and Python clients
// (their layout against shmobj's, builds, system calls, retry and follow rules, threads,
// install). They skip with a reason when g++, the Boost headers, gcc, python3 or strace are
// missing, unless CI=true, where the same absence fails them. This package has no Go API.
package compat
