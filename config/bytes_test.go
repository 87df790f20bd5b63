package config

import (
	"strings"
	"testing"
)

// TestSizeUnits: size takes an integer number of bytes, or a whole number and an IEC unit.
func TestSizeUnits(t *testing.T) {
	for _, tt := range []struct {
		line string
		want Bytes
	}{
		{`size = 4096`, 4096},
		{`size = "64KiB"`, 64 << 10},
		{`size = "1 MiB"`, 1 << 20},
		{`size = "16B"`, 16},
	} {
		f, err := parse(supervisedHead + tt.line + "\n")
		if err != nil || f.Workers[0].Size != tt.want {
			t.Errorf("%s: %v, %v; want size %d", tt.line, f, err, tt.want)
		}
	}
	for _, tt := range []struct{ line, msg string }{
		{`size = "4kb"`, `"4kb" is not a size (want a whole number and a unit: B, KiB, MiB, GiB or TiB, e.g. "64KiB")`},
		{`size = "1.5GiB"`, `"1.5GiB" is not a size`},
		{`size = "-1KiB"`, `"-1KiB" is not a size`},
		{`size = "9999999TiB"`, `"9999999TiB" is not a size`},
		{`size = "1B"`, `"1B" is too small (want at least 16 bytes)`},
		{`size = true`, `got boolean true (want an integer number of bytes, at least 16)`},
	} {
		checkOneProblem(t, supervisedHead+tt.line+"\n", tt.line, `worker "w" size`, tt.msg)
	}
}

func TestBytesText(t *testing.T) {
	var b Bytes
	if err := b.UnmarshalText([]byte("4096")); err != nil || b != 4096 {
		t.Errorf("UnmarshalText(4096) = %d, %v", b, err)
	}
	if err := b.UnmarshalText([]byte("2 GiB")); err != nil || b != 2<<30 {
		t.Errorf("UnmarshalText(2 GiB) = %d, %v", b, err)
	}
	if err := b.UnmarshalText([]byte("")); err == nil || !strings.HasPrefix(err.Error(), `config: "" is not a size`) {
		t.Errorf("UnmarshalText(\"\") = %v", err)
	}
}
