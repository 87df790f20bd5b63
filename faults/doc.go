// Package faults is shmmon's fault-injection suite: the evidence that a monitor never kills a
// healthy worker and never misses a hung one.
//
// The suite is made of tests only, behind the build tag "faults", so that the plain
// `go test ./...` does not run it; `make faults` does:
//
//	go test -tags faults -count=1 -v -timeout 15m ./faults
//
// Every case runs real processes: the shmmon command (built by the suite, without -race) as
// the monitor, and the test binary itself as the worker (see TestMain: it beats, hangs in a
// busy loop or in a blocking read, exits, ...). Each case records one row of an outcome table
// (case, trials, expected, observed, false kills, missed hangs) that the suite prints at the
// end; with FAULTS_REPORT=FILE it also writes the table as Markdown to FILE (`make faults`
// writes RELIABILITY.md).
//
// BenchmarkServeLoad (same build tag, run by `make bench`) measures the CPU and memory of one
// `shmmon serve` watching 10,000 objects at 1 Hz.
package faults
