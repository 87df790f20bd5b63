//go:build !amd64

package shmobj

import "sync/atomic"

// Release stores for the status record's hot fields: on architectures other than amd64,
// sync/atomic's sequentially consistent stores (see store_amd64.go).

func storeRel64(p *atomic.Uint64, v uint64) { p.Store(v) }
func storeRelI64(p *atomic.Int64, v int64)  { p.Store(v) }
func storeRel32(p *atomic.Uint32, v uint32) { p.Store(v) }
