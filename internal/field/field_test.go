package field

import (
	"errors"
	"io"
	"testing"
	"time"
)

func TestError(t *testing.T) {
	relation := &Error{Pkg: "supervise", Field: "backoff", Value: time.Minute, Problem: "must be at most",
		Other: "backoff_max", OtherValue: 30 * time.Second, Inverse: "must be at least"}
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"problem", &Error{Pkg: "monitor", Field: "interval", Value: time.Duration(0), Problem: "must be at least 1ms"},
			"monitor: interval 0s must be at least 1ms"},
		{"want", &Error{Pkg: "monitor", Field: "stalls", Value: 0, Problem: "is out of range", Want: "1 to 1048576"},
			"monitor: stalls 0 is out of range (want 1 to 1048576)"},
		{"unit", &Error{Pkg: "shmobj", Field: "size", Value: int64(15), Problem: "is too small", Want: "at least 16", Unit: "bytes"},
			"shmobj: size 15 is too small (want at least 16 bytes)"},
		{"text quoted, no field", &Error{Pkg: "config", Value: "x y", Problem: "is not a duration"},
			`config: "x y" is not a duration`},
		{"relation", relation, "supervise: backoff 1m0s must be at most backoff_max (30s)"},
		{"relation flipped", relation.Flip(), "supervise: backoff_max 30s must be at least backoff (1m0s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if have := tt.err.Error(); have != tt.want {
				t.Errorf("have %q\nwant %q", have, tt.want)
			}
		})
	}
	if e := (&Error{Err: io.EOF}); !errors.Is(e, io.EOF) {
		t.Error("an Error does not unwrap to its Err")
	}
}

func TestAll(t *testing.T) {
	a, b, c := &Error{Field: "a"}, &Error{Field: "b"}, &Error{Field: "c"}
	err := errors.Join(a, errors.New("other"), errors.Join(b, nil, errors.Join(c)))
	all := All(err)
	if len(all) != 3 || all[0] != a || all[1] != b || all[2] != c {
		t.Errorf("All = %v, want a, b, c in order", all)
	}
	if All(nil) != nil || len(All(a)) != 1 {
		t.Errorf("All(nil) = %v, All(a) = %v", All(nil), All(a))
	}
}
