// Package shmobj owns shmmon's POSIX shared-memory objects: their names, their byte layout
// and every access to their mapped memory.
//
// The objects are the ones C++ programs create and open with Boost.Interprocess
// (shared_memory_object + mapped_region): a user name "abcd" is the POSIX object "/abcd",
// which Linux shows as /dev/shm/abcd. [Open] takes the same three modes as Boost
// ([CreateOnly], [OpenOnly], [OpenOrCreate]) and [Remove] behaves like
// shared_memory_object::remove.
//
// # Layout
//
// An object of size S (at least [MinSize]) is split in two halves. The worker half
// [0, S/2) is the one Boost workers write:
//
//	offset  type    meaning
//	0       uint64  heartbeat sequence; 0 = no beat yet; +1 per beat
//	8       int64   worker pid, written once by Go workers (0 = unknown; Boost workers clear it)
//	16..            zero
//
// The monitor half [S/2, S) holds shmmon's status record when S/2 >= [RecordLen]; Boost
// peers ignore it. All fields are 8-byte aligned, in native byte order, and written with
// atomic stores:
//
//	offset  type     meaning
//	0       [8]byte  magic "SHMMON01"
//	8       uint32   record version (1)
//	12      uint32   record length (128)
//	16      int64    monitor pid
//	24      int64    watched worker pid (0 = unknown)
//	32      uint64   last sequence seen
//	40      int64    time of last progress, Unix ns
//	48      int64    time of last check, Unix ns
//	56      int64    check interval, ns
//	64      uint32   consecutive stalls
//	68      uint32   stall threshold
//	72      uint32   state (see [State])
//	76      uint32   retired: 1 = replaced by its monitor; workers must reopen by name
//	80      uint64   kills performed
//	88      uint64   restarts performed
//	96      uint32   kind of heartbeat (see [Kind]): 0 shm, 1 notify, 2 socket, 3 none, 4 proctab
//	100..127         reserved, zero
//
// When the monitor half has room for it, the record is followed by the worker's status text
// (the notify protocol's STATUS=): a uint32 length at 128, then up to [MaxStatusText] bytes.
//
// # Trust
//
// Anyone may create a file under a free name in /dev/shm, and anyone an object's mode lets in
// may write its bytes, record included. So this package trusts neither a name nor what an
// object says about itself:
//
//   - Every open of a name never blocks and never follows a symbolic link
//     (O_NONBLOCK|O_NOFOLLOW); only a regular file is read or mapped, after fstat says so.
//     A FIFO, a socket or a directory under the name fails with [ErrNotRegular], and
//     [Publish] replaces such a file like any stale object. [Read] reads at most the worker
//     pid and the record, whatever the object's size.
//   - [Adopt] keeps an object only when this process's user owns it, no one outside the
//     configured mode may write it, it has no other name (one link) and the wanted size;
//     anything else is replaced, and [Adoption] says why. [Inspect] gives the owner and
//     identity of an object with its contents, for callers that must judge its record.
//   - Names shmmon publishes obey [ValidatePublishName]: no control characters.
//
// # Faults
//
// A mapping is larger than its object when a third party truncates the object: touching the
// missing pages raises SIGBUS. Every access to mapped memory in this package runs with
// [runtime/debug.SetPanicOnFault] and recovers the fault, so such an object never crashes the
// process: the access returns [ErrFault] instead. [Segment.Verify] detects a truncated,
// deleted or replaced object without touching the mapping.
package shmobj
