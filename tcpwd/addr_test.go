package tcpwd

import (
	"strings"
	"testing"
)

func TestListenAddr(t *testing.T) {
	for in, want := range map[string]string{
		"5005":           "127.0.0.1:5005",
		":5005":          "127.0.0.1:5005",
		"0.0.0.0:8000":   "0.0.0.0:8000",
		"127.1.1.1:8000": "127.1.1.1:8000",
		"[::1]:65535":    "[::1]:65535",
	} {
		if got, err := ListenAddr(in); err != nil || got != want {
			t.Errorf("ListenAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ":", "0", ":0", "65536", "localhost:5005", "1.2.3:5005", "x", "::1:5005", "5005 ", "-1"} {
		got, err := ListenAddr(bad)
		if err == nil || !strings.Contains(err.Error(), "want PORT") || strings.Contains(err.Error(), "\n") {
			t.Errorf("ListenAddr(%q) = %q, %v; want a one-line error", bad, got, err)
		}
	}
}
