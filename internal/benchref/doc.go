// Package benchref holds the reference mechanisms that `make bench` measures a shmmon beat
// against, as Go benchmarks with the standard library only, so that the comparison does not
// depend on shmmon's own notify or TCP packages:
//
//   - BenchmarkNotifyDatagram: a systemd-style notify datagram per beat, "WATCHDOG=1" sent
//     with sendto(2) on an open unix datagram socket to a socket that a goroutine drains
//     (sd_notify itself also opens and closes a socket per call; that cost is left out, in
//     the datagram's favour);
//   - BenchmarkTCPPacket: a 552-byte packet per beat written on an open loopback TCP
//     connection that a goroutine reads with io.ReadFull, as the original framework's socket watchdog does.
//
// The C++ Boost.Interprocess patterns are measured by compat/bin/boost_bench in the same run.
// The package has no code of its own besides this documentation and its benchmarks.
package benchref
