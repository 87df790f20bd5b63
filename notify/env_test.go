package notify

import (
	"slices"
	"testing"
)

func TestWithoutHandshake(t *testing.T) {
	for _, tt := range []struct {
		name      string
		env, want []string
	}{
		{"none", nil, nil},
		{"the handshake goes",
			[]string{"PATH=/bin", "NOTIFY_SOCKET=@x", "WATCHDOG_USEC=1000", "WATCHDOG_PID=42", "HOME=/"},
			[]string{"PATH=/bin", "HOME=/"}},
		{"names that only look like it stay",
			[]string{"NOTIFY_SOCKETS=1", "X_WATCHDOG_PID=2", "WATCHDOG_USEC_MAX=3", "NOTIFY=@y"},
			[]string{"NOTIFY_SOCKETS=1", "X_WATCHDOG_PID=2", "WATCHDOG_USEC_MAX=3", "NOTIFY=@y"}},
		{"empty value", []string{"NOTIFY_SOCKET=", "A=b"}, []string{"A=b"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if have := WithoutHandshake(slices.Clone(tt.env)); !slices.Equal(have, tt.want) {
				t.Errorf("WithoutHandshake(%q) = %q, want %q", tt.env, have, tt.want)
			}
		})
	}
}
