package tcpwd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"unsafe"

	"github.com/shmmon/shmmon/shmobj"
)

// cPacket mirrors the C struct: Go lays out these field types as the x86-64 C ABI does.
type cPacket struct {
	head   [10]byte
	cmd    int32
	wdt    int32
	target [10]byte
	source [10]byte
	msg    [512]byte
}

func TestLayoutConstants(t *testing.T) {
	var p cPacket
	for _, c := range []struct {
		what      string
		got, want uintptr
	}{
		{"sizeof", unsafe.Sizeof(p), PacketSize},
		{"head", unsafe.Offsetof(p.head), OffHead},
		{"cmd", unsafe.Offsetof(p.cmd), OffCmd},
		{"wdt", unsafe.Offsetof(p.wdt), OffWdt},
		{"target", unsafe.Offsetof(p.target), OffTarget},
		{"source", unsafe.Offsetof(p.source), OffSource},
		{"msg", unsafe.Offsetof(p.msg), OffMsg},
	} {
		if c.got != c.want {
			t.Errorf("%s: struct says %d, constant %d", c.what, c.got, c.want)
		}
	}
}

func TestPacketRoundTrip(t *testing.T) {
	for _, p := range []Packet{
		{Head: "head", Cmd: CmdReceive, Target: "null", Source: "client1", Msg: "null"},
		{Head: "head", Cmd: CmdWatchdog, Wdt: WdtRegister, Source: "a"},
		{Cmd: CmdWatchdog, Wdt: WdtFeed, Source: "123456789"},
		{Head: "0123456789", Cmd: CmdForward, Wdt: -7, Target: "client2", Source: "client1", Msg: strings.Repeat("m", MsgLen)},
	} {
		b, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", p, err)
		}
		if len(b) != PacketSize || int32(binary.LittleEndian.Uint32(b[OffCmd:])) != p.Cmd ||
			int32(binary.LittleEndian.Uint32(b[OffWdt:])) != p.Wdt || !bytes.HasPrefix(b[OffSource:], []byte(p.Source+"\x00")) {
			t.Errorf("Marshal(%+v) = %q: fields not where the C struct has them", p, b)
		}
		var q Packet
		if err := q.UnmarshalBinary(b); err != nil || q != p {
			t.Errorf("round trip of %+v: got %+v, %v", p, q, err)
		}
	}
}

func TestMarshalRejects(t *testing.T) {
	for _, c := range []struct {
		p    Packet
		want string
	}{
		{Packet{Cmd: 3, Source: "a"}, "cmd 3"},
		{Packet{Cmd: CmdWatchdog, Wdt: 2, Source: "a"}, "wdt 2"},
		{Packet{Cmd: CmdReceive, Source: ""}, `source "" (empty)`},
		{Packet{Cmd: CmdReceive, Source: "0123456789"}, "10 bytes long"},
		{Packet{Cmd: CmdReceive, Source: "a/b"}, "'/'"},
		{Packet{Cmd: CmdReceive, Source: ".."}, "reserved"},
		{Packet{Cmd: CmdForward, Source: "a", Target: ""}, `target "" (empty)`},
		{Packet{Cmd: CmdReceive, Source: "a", Head: "01234567890"}, "head"},
		{Packet{Cmd: CmdReceive, Source: "a", Msg: strings.Repeat("m", MsgLen+1)}, "msg"},
		{Packet{Cmd: CmdReceive, Source: "a", Msg: "a\x00b"}, "no NUL"},
	} {
		_, err := c.p.MarshalBinary()
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Marshal(%+v) = %v, want a one-line error containing %q", c.p, err, c.want)
		}
	}
}

// seedPacket is a packet as the seed's C client sends it: strings written with sprintf into
// uninitialised memory, so the bytes after each NUL are garbage.
func seedPacket(cmd, wdt int32, target, source, msg string) []byte {
	b := make([]byte, PacketSize)
	for i := range b {
		b[i] = byte(0xa0 + i%31)
	}
	put := func(off int, s string) { copy(b[off:], s+"\x00") }
	put(OffHead, "head")
	binary.LittleEndian.PutUint32(b[OffCmd:], uint32(cmd))
	binary.LittleEndian.PutUint32(b[OffWdt:], uint32(wdt))
	put(OffTarget, target)
	put(OffSource, source)
	put(OffMsg, msg)
	return b
}

func TestUnmarshal(t *testing.T) {
	var p Packet
	if err := p.UnmarshalBinary(seedPacket(CmdForward, 0, "client2", "client1", "hello")); err != nil {
		t.Fatal(err)
	}
	if want := (Packet{Head: "head", Cmd: CmdForward, Target: "client2", Source: "client1", Msg: "hello"}); p != want {
		t.Errorf("got %+v, want %+v", p, want)
	}
	// The target of cmd 0 and 1 is not checked: the seed writes "null" there.
	if err := p.UnmarshalBinary(seedPacket(CmdWatchdog, WdtFeed, "", "client1", "")); err != nil {
		t.Errorf("feed with an empty target: %v", err)
	}

	noNUL := func(off int) func([]byte) {
		return func(b []byte) { copy(b[off:], "0123456789") }
	}
	for _, c := range []struct {
		name   string
		mutate func([]byte)
		want   string
	}{
		{"short", nil, "551 bytes"},
		{"cmd", func(b []byte) { b[OffCmd] = 3 }, "cmd 3"},
		{"negative cmd", func(b []byte) { binary.LittleEndian.PutUint32(b[OffCmd:], 0xffffffff) }, "cmd -1"},
		{"wdt", func(b []byte) { b[OffCmd], b[OffWdt] = 1, 2 }, "wdt 2"},
		{"source without NUL", noNUL(OffSource), "no NUL"},
		{"target without NUL", noNUL(OffTarget), "no NUL"},
		{"empty source", func(b []byte) { b[OffSource] = 0 }, "source"},
		{"empty target", func(b []byte) { b[OffTarget] = 0 }, "target"},
		{"slash", func(b []byte) { copy(b[OffSource:], "a/b\x00") }, "'/'"},
		{"dotdot", func(b []byte) { copy(b[OffTarget:], "..\x00") }, "reserved"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := seedPacket(CmdForward, 0, "client2", "client1", "hi")
			if c.mutate == nil {
				b = b[:PacketSize-1]
			} else {
				c.mutate(b)
			}
			q := Packet{Msg: "untouched"}
			err := q.UnmarshalBinary(b)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("got %v, want a one-line ErrMalformed containing %q", err, c.want)
			}
			if q.Msg != "untouched" {
				t.Errorf("a failed Unmarshal changed the packet: %+v", q)
			}
		})
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"a", "client1", "123456789", "a.b-c_d"} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "1234567890", "a/b", ".", "..", "a\x00"} {
		if err := ValidateName(bad); err == nil || !strings.HasPrefix(err.Error(), "tcpwd: ") {
			t.Errorf("ValidateName(%q) = %v, want a tcpwd error", bad, err)
		}
	}
}

// FuzzUnmarshal: UnmarshalBinary never panics; what it accepts follows the rules, encodes
// again, and decodes to the same packet.
func FuzzUnmarshal(f *testing.F) {
	f.Add(seedPacket(CmdReceive, 0, "null", "client1", "null"))
	f.Add(seedPacket(CmdForward, 0, "client2", "client1", "hello"))
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		if err := p.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrMalformed) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q: want a one-line ErrMalformed", err)
			}
			return
		}
		if shmobj.ValidateName(p.Source) != nil || len(p.Source) > MaxName ||
			p.Cmd == CmdForward && (shmobj.ValidateName(p.Target) != nil || len(p.Target) > MaxName) {
			t.Fatalf("accepted invalid names: %+v", p)
		}
		again, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("an accepted packet %+v does not encode: %v", p, err)
		}
		var q Packet
		if err := q.UnmarshalBinary(again); err != nil || q != p {
			t.Fatalf("decode(encode(%+v)) = %+v, %v", p, q, err)
		}
	})
}
