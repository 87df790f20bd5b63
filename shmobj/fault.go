package shmobj

import (
	"runtime/debug"
)

// Guard makes a memory fault on the calling goroutine panic instead of crashing the process,
// and returns the previous setting for [Unguard]. Together they bracket a block of raw
// accesses ([Segment.RawSeq], [Segment.RawStoreStatus]) in a function that returns an error:
//
//	func check(seg *shmobj.Segment) (err error) {
//		defer shmobj.Unguard(shmobj.Guard(), &err)
//		seq := seg.RawSeq()
//		...
//	}
//
// Every other accessor of [Segment] guards itself.
func Guard() bool { return debug.SetPanicOnFault(true) }

// Unguard restores the fault setting saved by [Guard] and turns a recovered memory fault into
// [ErrFault] in *err. Any other panic is a bug and is raised again. It must itself be the
// deferred function (defer Unguard(...)), since recover only works there.
func Unguard(old bool, err *error) {
	debug.SetPanicOnFault(old)
	if v := recover(); v != nil {
		if _, ok := v.(interface{ Addr() uintptr }); ok {
			*err = ErrFault
			return
		}
		panic(v)
	}
}
