package config

import (
	"strings"
	"testing"
)

func TestTCPWatchdogTable(t *testing.T) {
	for text, want := range map[string]TCPWatchdog{
		"[tcp_watchdog]\n":                            {"127.0.0.1:5005", 1024},
		"[tcp_watchdog]\nlisten = \"8000\"\n":         {"127.0.0.1:8000", 1024},
		"[tcp_watchdog]\nlisten = \":8000\"\n":        {"127.0.0.1:8000", 1024},
		"[tcp_watchdog]\nlisten = \"0.0.0.0:8000\"\n": {"0.0.0.0:8000", 1024},
		"[tcp_watchdog]\nlisten = \"[::1]:8000\"\n":   {"[::1]:8000", 1024},
		"[tcp_watchdog]\nmax_connections = 1\n":       {"127.0.0.1:5005", 1},
		"[tcp_watchdog]\nmax_connections = 1048576\n": {"127.0.0.1:5005", 1 << 20},
	} {
		f, err := Parse("t.toml", []byte(text))
		if err != nil || f.TCPWatchdog == nil || *f.TCPWatchdog != want {
			t.Errorf("Parse(%q): %+v, %v; want %+v", text, f.TCPWatchdog, err, want)
		}
	}
	if f, _ := Parse("t.toml", []byte("")); f.TCPWatchdog != nil {
		t.Error("no [tcp_watchdog] table, but a TCPWatchdog")
	}
	for _, bad := range []struct{ text, want string }{
		{"[tcp_watchdog]\nlisten = 5005\n", `t.toml:2: tcp_watchdog listen: got integer 5005 (want a string`},
		{"[tcp_watchdog]\n\nlisten = \"nonsense:xx\"\n", `t.toml:3: tcp_watchdog listen: "nonsense:xx" is not a listen address (want`},
		{"[tcp_watchdog]\nlisten = \"0\"\n", `t.toml:2: tcp_watchdog listen: "0" is not a listen address`},
		{"[tcp_watchdog]\nport = 1\n", "t.toml:2: tcp_watchdog port: unknown key (want one of [listen max_connections])"},
		{"tcp_watchdog = 3\n", "t.toml:1: tcp_watchdog: got integer 3 (want a table: [tcp_watchdog])"},
		{"[tcp_watchdog]\nmax_connections = 0\n", "t.toml:2: tcp_watchdog max_connections: 0 is out of range (want 1 to 1048576)"},
		{"[tcp_watchdog]\nmax_connections = 1048577\n", "t.toml:2: tcp_watchdog max_connections: 1048577 is out of range (want 1 to 1048576)"},
		{"[tcp_watchdog]\nmax_connections = \"many\"\n", `t.toml:2: tcp_watchdog max_connections: got string "many" (want an integer, 1 to 1048576)`},
	} {
		_, err := Parse("t.toml", []byte(bad.text))
		if err == nil || !strings.Contains(err.Error(), bad.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q) = %v, want one line containing %q", bad.text, err, bad.want)
		}
	}
}
