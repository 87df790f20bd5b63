// Package security holds shmmon's bad-actor tests: every input another local user can write
// (a process-table record, an object in /dev/shm, a pidfile, a loopback connection, a file
// name) is attacked by a real second user, a throwaway account, while a real shmmon runs as
// root. TestScenarios runs one trial of every scenario of package internal/badactor and fails
// when shmmon signalled a process it did not own, hung past SIGTERM or killed a healthy worker
// of its own; the fault suite runs the same scenarios for many trials (RELIABILITY.md). The
// other tests attack what no scenario does: names that would forge a listing's rows, the CLI,
// a forged monitor pid.
//
// The tests need root (to create the account, and to be the root shmmon attacked): without it
// they skip on a developer's machine and fail under CI=true. This package has no Go API.
package security
