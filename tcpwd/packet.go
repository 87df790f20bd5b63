package tcpwd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// The packet layout: sizes and offsets of the C struct (see the package documentation).
const (
	PacketSize = 552 // sizeof(struct packet)
	NameLen    = 10  // bytes of a name field, NUL included
	HeadLen    = 10  // bytes of head
	MsgLen     = 512 // bytes of msg

	OffHead   = 0
	OffCmd    = 12
	OffWdt    = 16
	OffTarget = 20
	OffSource = 30
	OffMsg    = 40
)

// MaxName is the longest name a packet can carry: its field must hold the NUL too.
const MaxName = NameLen - 1

// Commands (Packet.Cmd).
const (
	CmdReceive  int32 = 0 // the connection becomes the receiver of Source
	CmdWatchdog int32 = 1 // watchdog: register (WdtRegister) or feed (WdtFeed) Source
	CmdForward  int32 = 2 // forward the packet to the receiver of Target
)

// Watchdog operations (Packet.Wdt with CmdWatchdog).
const (
	WdtRegister int32 = 0
	WdtFeed     int32 = 1
)

// ErrMalformed is wrapped by the errors of packets that break the rules of the package
// documentation.
var ErrMalformed = errors.New("tcpwd: malformed packet")

// Packet is one decoded packet. Head and Msg are the bytes before their first NUL (or the
// whole field when it has none); Target and Source are names.
type Packet struct {
	Head   string
	Cmd    int32
	Wdt    int32
	Target string
	Source string
	Msg    string
}

// MarshalBinary encodes p into [PacketSize] bytes, every field NUL-padded. It fails when p is
// malformed (see the package documentation), when Head or Msg is longer than its field or
// holds a NUL, or when a name that is not checked (Target of cmd 0 and 1) does not fit or
// holds a NUL.
func (p Packet) MarshalBinary() ([]byte, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	b := make([]byte, PacketSize)
	for _, f := range []struct {
		what string
		s    string
		off  int
		max  int
	}{
		{"head", p.Head, OffHead, HeadLen},
		{"target", p.Target, OffTarget, NameLen},
		{"source", p.Source, OffSource, NameLen},
		{"msg", p.Msg, OffMsg, MsgLen},
	} {
		if len(f.s) > f.max || strings.IndexByte(f.s, 0) >= 0 {
			return nil, fmt.Errorf("tcpwd: %s %q: want at most %d bytes, no NUL", f.what, shorten(f.s), f.max)
		}
		copy(b[f.off:], f.s)
	}
	binary.LittleEndian.PutUint32(b[OffCmd:], uint32(p.Cmd))
	binary.LittleEndian.PutUint32(b[OffWdt:], uint32(p.Wdt))
	return b, nil
}

// UnmarshalBinary decodes the [PacketSize] bytes b into p. The error wraps [ErrMalformed]
// when b has another length or breaks the rules of the package documentation; p is then
// left unchanged. It never panics.
func (p *Packet) UnmarshalBinary(b []byte) error {
	if len(b) != PacketSize {
		return fmt.Errorf("%w: %d bytes (want %d)", ErrMalformed, len(b), PacketSize)
	}
	q := Packet{
		Head:   cstring(b[OffHead : OffHead+HeadLen]),
		Cmd:    int32(binary.LittleEndian.Uint32(b[OffCmd:])),
		Wdt:    int32(binary.LittleEndian.Uint32(b[OffWdt:])),
		Target: cstring(b[OffTarget : OffTarget+NameLen]),
		Source: cstring(b[OffSource : OffSource+NameLen]),
		Msg:    cstring(b[OffMsg : OffMsg+MsgLen]),
	}
	// A name must end within its field: a 10-byte name without a NUL is not a C string.
	for _, f := range []struct {
		what    string
		off     int
		checked bool
	}{{"source", OffSource, true}, {"target", OffTarget, q.Cmd == CmdForward}} {
		if f.checked && bytes.IndexByte(b[f.off:f.off+NameLen], 0) < 0 {
			return fmt.Errorf("%w: %s %q has no NUL within its %d bytes", ErrMalformed, f.what, b[f.off:f.off+NameLen], NameLen)
		}
	}
	if err := q.validate(); err != nil {
		return err
	}
	*p = q
	return nil
}

// validate applies the rules of malformed packets to the decoded fields.
func (p Packet) validate() error {
	switch p.Cmd {
	case CmdReceive, CmdForward:
	case CmdWatchdog:
		if p.Wdt != WdtRegister && p.Wdt != WdtFeed {
			return fmt.Errorf("%w: cmd 1 with wdt %d (want 0 register or 1 feed)", ErrMalformed, p.Wdt)
		}
	default:
		return fmt.Errorf("%w: cmd %d (want 0 receive, 1 watchdog or 2 forward)", ErrMalformed, p.Cmd)
	}
	if why := nameProblem(p.Source); why != "" {
		return fmt.Errorf("%w: source %q (%s): want %s", ErrMalformed, shorten(p.Source), why, wantName)
	}
	if p.Cmd == CmdForward {
		if why := nameProblem(p.Target); why != "" {
			return fmt.Errorf("%w: target %q (%s): want %s", ErrMalformed, shorten(p.Target), why, wantName)
		}
	}
	return nil
}

// wantName describes the names a packet accepts, for messages.
const wantName = "1-9 bytes, no '/' or NUL, not \".\" or \"..\""

// ValidateName reports whether name can travel in a name field: a valid object name (see
// [shmobj.ValidateName]) short enough to leave room for the NUL, so 1 to [MaxName] bytes.
// The error names the bad value and what is accepted.
func ValidateName(name string) error {
	if why := nameProblem(name); why != "" {
		return fmt.Errorf("tcpwd: invalid name %q (%s): want %s", shorten(name), why, wantName)
	}
	return nil
}

// nameProblem returns what is wrong with name, or "" when it is a valid name.
func nameProblem(name string) string {
	switch {
	case name == "":
		return "empty"
	case len(name) > MaxName:
		return fmt.Sprintf("%d bytes long", len(name))
	case strings.ContainsAny(name, "/\x00"):
		return "contains '/' or NUL"
	case name == "." || name == "..":
		return "reserved"
	}
	return ""
}

// cstring returns the bytes of b before its first NUL, or all of b.
func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// shorten cuts s to 40 bytes for messages.
func shorten(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
