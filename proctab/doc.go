// Package proctab is the System V process table of the original C++ heartbeat framework:
// one shared-memory segment of fixed-size records, one per process, locked by a System V
// semaphore, swept by a checkproc daemon that kills the processes whose heartbeat timed out.
//
// The format is the original's, so existing C++ services and Go programs share one table:
//
//	segment    System V key 0x5095 (Options.Key), 1000 records (Options.Slots), mode 0666
//	record     72 bytes, x86-64 C layout:
//	  0   int32     pid; 0 = free slot
//	  4   char[51]  name, NUL-terminated (the older name[50] has the same offsets)
//	  56  int32     timeout, seconds
//	  64  int64     atime: Unix seconds of the last heartbeat
//	lock       System V semaphore key 0x5095 (Options.SemKey), one semaphore used as a mutex:
//	           created and set to 1 when absent, taken with -1 and released with +1, both with
//	           SEM_UNDO, so a holder that dies releases it
//
// [Table.Sweep] is checkproc done safely: it never signals pid 1 or less or itself (a
// cleared record read as pid 0 would otherwise signal the whole process group), it signals
// through a pidfd so a pid reused meanwhile is never hit, and a record whose pid now names a
// process that started after the record's last heartbeat is cleared, never killed.
package proctab
