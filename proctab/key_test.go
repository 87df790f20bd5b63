package proctab

import "testing"

func TestParseKey(t *testing.T) {
	for in, want := range map[string]int{"0x5095": 0x5095, "20629": 20629, "1": 1, "0x7fffffff": 1<<31 - 1} {
		if k, err := ParseKey(in); err != nil || k != want {
			t.Errorf("ParseKey(%q) = %d, %v; want %d", in, k, err, want)
		}
	}
	for in, want := range map[string]string{
		"zz":         `proctab: key "zz" is not a key`,
		"0":          `proctab: key "0" is out of range`,
		"-3":         `proctab: key "-3" is out of range`,
		"0x80000000": `proctab: key "0x80000000" is out of range`,
	} {
		if _, err := ParseKey(in); err == nil || err.Error() != want+" (want a positive number, decimal or 0x hex, e.g. 0x5095)" {
			t.Errorf("ParseKey(%q) = %v, want %s (...)", in, err, want)
		}
	}
}

func TestValidateSlots(t *testing.T) {
	for n, ok := range map[int]bool{1: true, MaxSlots: true, 0: false, -1: false, MaxSlots + 1: false} {
		if err := ValidateSlots(n); (err == nil) != ok {
			t.Errorf("ValidateSlots(%d) = %v", n, err)
		}
	}
}
