package shmobj

import (
	"errors"
	"os"
	"testing"
)

func TestParseMode(t *testing.T) {
	for in, want := range map[string]os.FileMode{"0600": 0o600, "644": 0o644, "0001": 1, "0777": 0o777} {
		if m, err := ParseMode(in); err != nil || m != want {
			t.Errorf("ParseMode(%q) = %v, %v; want %v", in, m, err, want)
		}
	}
	for _, bad := range []string{"", "0", "0800", "01777", "rw-------", "-1"} {
		if _, err := ParseMode(bad); err == nil {
			t.Errorf("ParseMode(%q) succeeded", bad)
		}
	}
	var m Mode
	if err := m.UnmarshalText([]byte("0660")); err != nil || m != 0o660 {
		t.Errorf("UnmarshalText(0660) = %v, %v", m, err)
	}
}

func TestValidateSize(t *testing.T) {
	if err := ValidateSize(MinSize); err != nil {
		t.Errorf("ValidateSize(MinSize) = %v", err)
	}
	err := ValidateSize(MinSize - 1)
	if !errors.Is(err, ErrTooSmall) || err.Error() != "shmobj: size 15 is too small (want at least 16 bytes)" {
		t.Errorf("ValidateSize(15) = %v, want ErrTooSmall, one line", err)
	}
}
