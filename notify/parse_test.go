package notify

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Message
	}{
		{"empty", "", Message{}},
		{"beat", "WATCHDOG=1", Message{Watchdog: true}},
		{"beat with newline", "WATCHDOG=1\n", Message{Watchdog: true}},
		{"ready and status", "READY=1\nSTATUS=serving 3 clients", Message{Ready: true, Status: "serving 3 clients", HasStatus: true}},
		{"empty status", "STATUS=", Message{HasStatus: true}},
		{"status keeps =", "STATUS=a=b", Message{Status: "a=b", HasStatus: true}},
		{"trigger", "WATCHDOG=trigger", Message{Trigger: true}},
		{"beat and trigger", "WATCHDOG=1\nWATCHDOG=trigger", Message{Watchdog: true, Trigger: true}},
		{"stopping", "STOPPING=1", Message{Stopping: true}},
		{"ready 0 is not ready", "READY=0", Message{}},
		{"flag anywhere", "READY=0\nREADY=1", Message{Ready: true}},
		{"interval", "WATCHDOG_USEC=250000", Message{WatchdogInterval: 250 * time.Millisecond}},
		{"extend", "EXTEND_TIMEOUT_USEC=5000000", Message{ExtendTimeout: 5 * time.Second}},
		{"mainpid", "MAINPID=4242", Message{MainPid: 4242}},
		{"first value counts", "STATUS=one\nSTATUS=two\nMAINPID=7\nMAINPID=8", Message{Status: "one", HasStatus: true, MainPid: 7}},
		{"unknown keys ignored", "FDSTORE=1\nERRNO=2\nBUSERROR=x\nX-CUSTOM=1\nnoequals\n=1", Message{}},
		{"bad watchdog", "WATCHDOG=2", Message{Invalid: []string{"WATCHDOG=2"}}},
		{"bad interval", "WATCHDOG_USEC=abc\nWATCHDOG_USEC=5", Message{Invalid: []string{"WATCHDOG_USEC=abc"}}},
		{"zero interval", "WATCHDOG_USEC=0", Message{Invalid: []string{"WATCHDOG_USEC=0"}}},
		{"negative interval", "WATCHDOG_USEC=-5", Message{Invalid: []string{"WATCHDOG_USEC=-5"}}},
		{"interval overflows", "WATCHDOG_USEC=18446744073709551615", Message{Invalid: []string{"WATCHDOG_USEC=18446744073709551615"}}},
		{"bad mainpid", "MAINPID=0\nWATCHDOG=1", Message{Watchdog: true, Invalid: []string{"MAINPID=0"}}},
		{"status not utf-8", "STATUS=\xff\xfe\nREADY=1", Message{Ready: true, Invalid: []string{"STATUS=\xff\xfe"}}},
		{"crlf is part of the value", "READY=1\r\nWATCHDOG=1", Message{Watchdog: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q)\nhave %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	for name, in := range map[string]string{
		"nul":      "WATCHDOG=1\x00READY=1",
		"oversize": "STATUS=" + strings.Repeat("x", MaxSize),
	} {
		t.Run(name, func(t *testing.T) {
			m, err := Parse([]byte(in))
			if !errors.Is(err, ErrMalformed) || !reflect.DeepEqual(m, Message{}) {
				t.Errorf("Parse = %+v, %v; want a zero message and ErrMalformed", m, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line", err)
			}
		})
	}
}

// FuzzParse: Parse never panics; an error means a zero message; a kept status is UTF-8 and
// a parsed number is in range.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"WATCHDOG=1", "READY=1\nSTATUS=ok\n", "WATCHDOG_USEC=1000", "MAINPID=1\x00", "EXTEND_TIMEOUT_USEC=99999999999999999999"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			if !reflect.DeepEqual(m, Message{}) {
				t.Errorf("error %v with a message %+v", err, m)
			}
			if !errors.Is(err, ErrMalformed) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line wrapping ErrMalformed", err)
			}
			return
		}
		if !utf8.ValidString(m.Status) || len(m.Status) > MaxSize {
			t.Errorf("status %q kept", m.Status)
		}
		if m.WatchdogInterval < 0 || m.ExtendTimeout < 0 || m.MainPid < 0 {
			t.Errorf("negative value kept: %+v", m)
		}
	})
}
