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
//   - tcpwd_client (C, plain POSIX sockets): a client of the original framework's TCP socket watchdog
//     (package tcpwd) that registers, feeds, forwards and prints what is forwarded to it;
//     SIGUSR1 makes it stop feeding while it stays connected.
//
// The C++ peers block SIGTERM and SIGINT and collect them only while they wait, through the
// one header stop_signals.hpp.
//
// The tests of compat_test.go run every pairing — Go monitor (`shmmon watch`) or C++ checker,
// Go worker (the test binary itself) or C++ worker — through a healthy phase and a hang
// (SIGSTOP), plus restarts of either side and objects truncated or removed under the monitor.
// The other files run the peers under `shmmon run` and `serve` (serve_test.go), in the
// process table (proctab_test.go), through the notify protocol (notify_test.go) and the TCP
// watchdog (tcpwd_test.go), and against serve's HTTP endpoint and hooks (metrics_test.go).
// They skip with a reason when g++ or the Boost headers are missing, unless CI=true, where
// the same absence fails them. This package has no Go API.
package compat
