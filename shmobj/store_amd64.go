//go:build amd64

package shmobj

import (
	"sync/atomic"
	"unsafe"
)

// Release stores for the status record's hot fields. On amd64 (x86-TSO) an aligned 8- or
// 4-byte MOV is single-copy atomic and already has release ordering, which is all a reader
// in another process needs; sync/atomic's Store compiles to XCHG, a full barrier that costs
// several ns per field on every check. Readers still use atomic loads.

func storeRel64(p *atomic.Uint64, v uint64) { *(*uint64)(unsafe.Pointer(p)) = v }
func storeRelI64(p *atomic.Int64, v int64)  { *(*int64)(unsafe.Pointer(p)) = v }
func storeRel32(p *atomic.Uint32, v uint32) { *(*uint32)(unsafe.Pointer(p)) = v }
