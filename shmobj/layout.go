package shmobj

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"
)

const (
	// MinSize is the smallest object shmmon accepts: a sequence in each half.
	MinSize = 16
	// DefaultSize is the size the monitor gives a new object: one page.
	DefaultSize = 4096
	// RecordLen is the length of the status record in the monitor half.
	RecordLen = 128
	// RecordVersion is the version of the status record this package writes.
	RecordVersion = 1
	// Magic marks a monitor half that holds a status record.
	Magic = "SHMMON01"
)

// Offsets in the worker half.
const (
	OffSequence  = 0 // uint64 heartbeat sequence
	OffWorkerPid = 8 // int64 worker pid (0 = unknown)
)

// Offsets of the status record's fields, counted from the start of the monitor half.
const (
	RecMagic        = 0
	RecVersion      = 8
	RecLength       = 12
	RecMonitorPid   = 16
	RecWatchedPid   = 24
	RecLastSeq      = 32
	RecLastProgress = 40
	RecLastCheck    = 48
	RecInterval     = 56
	RecStalls       = 64
	RecThreshold    = 68
	RecState        = 72
	RecRetired      = 76
	RecKills        = 80
	RecRestarts     = 88
	RecKind         = 96
)

// The status text follows the record in the monitor half, when the half has room for it
// (at least [RecordLen] + 4 + [MaxStatusText] bytes): a uint32 length, then the bytes.
const (
	OffStatusTextLen = RecordLen     // uint32, from the start of the monitor half
	OffStatusText    = RecordLen + 4 // the text, from the start of the monitor half
	// MaxStatusText is the longest status text kept; longer text is cut.
	MaxStatusText = 256
)

// Kind says how a worker's beats arrive. Whatever the kind, each beat advances the
// sequence at offset 0, so every reader of the object sees it.
type Kind uint32

// The kinds of heartbeat.
const (
	KindShm     Kind = iota // the worker writes the sequence itself (Go worker, Boost worker, shmmon beat)
	KindNotify              // the monitor writes it for each WATCHDOG=1 of the systemd notify protocol
	KindSocket              // the monitor writes it for each feed packet of the TCP watchdog
	KindNone                // no heartbeat: the program is supervised without a hang verdict
	KindProctab             // the monitor writes it while the program's System V process-table record is alive
)

var kindNames = [...]string{"shm", "notify", "socket", "none", "proctab"}

// String returns "shm", "notify", "socket", "none" or "proctab", or "kind(N)" for an unknown
// value.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint32(k))
}

// State is the verdict a monitor last recorded for its worker.
type State uint32

// The states of the status record.
const (
	StateUnknown  State = iota // no monitor has judged the worker
	StateWaiting               // waiting for the first beat
	StateOK                    // the sequence is moving
	StateStalled               // the sequence stopped, below the threshold
	StateAbnormal              // the threshold was reached: the worker is hung
	StateKilled                // the monitor killed the hung worker
	StateExited                // the watched process ended by itself
	StateRunning               // a program without a heartbeat runs: it is not judged
	StateStarved               // the sequence stopped, but the worker waited for a CPU: the stall is not counted
)

// LastState is the last of the states above.
const LastState = StateStarved

var stateNames = [...]string{"unknown", "waiting", "ok", "stalled", "abnormal", "killed", "exited", "running", "starved"}

// String returns the lower-case name of s, e.g. "ok", or "state(9)" for an unknown value.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint32(s))
}

// record overlays the monitor half of a mapping. Its field offsets are the Rec* constants
// (checked by a test); atomic types keep every access a single atomic load or store.
type record struct {
	magic        [8]byte
	version      atomic.Uint32
	length       atomic.Uint32
	monitorPid   atomic.Int64
	watchedPid   atomic.Int64
	lastSeq      atomic.Uint64
	lastProgress atomic.Int64
	lastCheck    atomic.Int64
	interval     atomic.Int64
	stalls       atomic.Uint32
	threshold    atomic.Uint32
	state        atomic.Uint32
	retired      atomic.Uint32
	kills        atomic.Uint64
	restarts     atomic.Uint64
	kind         atomic.Uint32
	_            [28]byte
}

// Record is a decoded status record.
type Record struct {
	Version      uint32
	MonitorPid   int64
	WatchedPid   int64         // 0 = unknown
	LastSeq      uint64        // last sequence the monitor saw
	LastProgress int64         // Unix ns of the last progress; 0 = none yet
	LastCheck    int64         // Unix ns of the last check; 0 = none yet
	Interval     time.Duration // check interval
	Stalls       uint32        // consecutive stalls
	Threshold    uint32        // stalls that make the worker abnormal
	State        State
	Retired      bool // the monitor replaced this object; workers must reopen by name
	Kills        uint64
	Restarts     uint64
	Kind         Kind // how the beats arrive
}

// Snapshot is a decoded view of a whole object.
type Snapshot struct {
	Size      int64
	Seq       uint64 // heartbeat sequence; 0 = no beat yet
	WorkerPid int64  // 0 = unknown (always 0 for Boost workers)
	HasRecord bool   // the monitor half holds a shmmon status record
	Record    Record // valid when HasRecord
	// StatusText is the worker's last STATUS= text (notify protocol), "" when none or when
	// the object has no room for it. Valid when HasRecord.
	StatusText string
}

// Decode decodes the bytes of a whole object, as read from its file. It never panics: input
// shorter than [MinSize] or a record of an unknown version is an error. A monitor half without
// the magic decodes as a plain Boost heartbeat (HasRecord false).
func Decode(b []byte) (Snapshot, error) {
	size := int64(len(b))
	if size < MinSize {
		return Snapshot{}, fmt.Errorf("%w: %d bytes, want at least %d", ErrTooSmall, size, MinSize)
	}
	head := b[:min(len(b)/2, OffWorkerPid+8)]
	var rec []byte
	half := len(b) / 2
	if half >= RecordLen {
		rec = b[half : half+RecordLen]
	}
	s, err := decodeParts(size, head, rec)
	if err == nil && s.HasRecord {
		s.StatusText = decodeText(b[half:])
	}
	return s, err
}

// decodeText returns the status text of a monitor half, "" when it has no room for one or
// its length is out of range.
func decodeText(half []byte) string {
	if len(half) < OffStatusText+MaxStatusText {
		return ""
	}
	n := binary.NativeEndian.Uint32(half[OffStatusTextLen:])
	if n > MaxStatusText {
		return ""
	}
	return string(half[OffStatusText : OffStatusText+int(n)])
}

// decodeParts decodes an object of the given size from the start of its worker half (8 or 16
// bytes) and its status record (nil when the monitor half has no room for one).
func decodeParts(size int64, head, r []byte) (Snapshot, error) {
	le := binary.NativeEndian
	s := Snapshot{Size: size, Seq: le.Uint64(head[OffSequence:])}
	if len(head) >= OffWorkerPid+8 {
		s.WorkerPid = int64(le.Uint64(head[OffWorkerPid:]))
	}
	if len(r) >= RecordLen {
		r = r[:RecordLen]
	}
	if len(r) < RecordLen || !bytes.Equal(r[RecMagic:RecMagic+8], []byte(Magic)) {
		return s, nil
	}
	if v := le.Uint32(r[RecVersion:]); v != RecordVersion {
		return s, fmt.Errorf("shmobj: status record version %d, want %d", v, RecordVersion)
	}
	s.HasRecord = true
	s.Record = Record{
		Version:      le.Uint32(r[RecVersion:]),
		MonitorPid:   int64(le.Uint64(r[RecMonitorPid:])),
		WatchedPid:   int64(le.Uint64(r[RecWatchedPid:])),
		LastSeq:      le.Uint64(r[RecLastSeq:]),
		LastProgress: int64(le.Uint64(r[RecLastProgress:])),
		LastCheck:    int64(le.Uint64(r[RecLastCheck:])),
		Interval:     time.Duration(le.Uint64(r[RecInterval:])),
		Stalls:       le.Uint32(r[RecStalls:]),
		Threshold:    le.Uint32(r[RecThreshold:]),
		State:        State(le.Uint32(r[RecState:])),
		Retired:      le.Uint32(r[RecRetired:]) != 0,
		Kills:        le.Uint64(r[RecKills:]),
		Restarts:     le.Uint64(r[RecRestarts:]),
		Kind:         Kind(le.Uint32(r[RecKind:])),
	}
	return s, nil
}
