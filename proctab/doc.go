// Package proctab is the System V process table of the original C++ heartbeat framework:
// one shared-memory segment of fixed-size records, one per process, locked by a System V
// semaphore, swept by a checkproc daemon that kills the processes whose heartbeat timed out.
//
// The format is the original's, so existing C++ services and Go programs share one table:
//
//	segment    System V key 0x5095 (Options.Key), 1000 records (Options.Slots)
//	record     72 bytes, x86-64 C layout:
//	  0   int32     pid; 0 = free slot
//	  4   char[51]  name, NUL-terminated (the older name[50] has the same offsets)
//	  56  int32     timeout, seconds
//	  64  int64     atime: Unix seconds of the last heartbeat
//	lock       System V semaphore key 0x5095 (Options.SemKey), one semaphore used as a mutex:
//	           created and set to 1 when absent, taken with -1 and released with +1, both with
//	           SEM_UNDO, so a holder that dies releases it
//
// Everyone who may write the table may write any record and set the semaphore, so neither
// is trusted:
//
//   - [Open] creates a table mode 0660 ([DefaultMode]; Options.Mode and Options.Group for
//     clients of several users), not the original's 0666. [Attach] never creates one.
//   - Every wait for the lock is bounded by [LockTimeout] (and by the context of a
//     [Table.Sweep]): a lock that is never free (a semaphore set to 0) is an error matching
//     [ErrLockTimeout], never a hang.
//   - [Table.Sweep] is checkproc done safely: it never signals pid 1 or less or itself (a
//     cleared record read as pid 0 would otherwise signal the whole process group), it
//     signals through a pidfd so a pid reused meanwhile is never hit, a record whose pid now
//     names a process that started after the record's last heartbeat is cleared, never
//     killed, and a timed-out record is acted on only when its process has the table
//     attached and its user may write the table; bad records (a timeout under 1 s, a
//     heartbeat in the future) and the records it cannot trust are refused: cleared and
//     logged (event=record-refused), never acted on.
package proctab
