package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogKeys: log is made absolute (against dir, else the working directory), and only a
// supervised worker's; log_max_size and log_keep are checked by package worklog, at their
// line.
func TestLogKeys(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	good := []struct {
		name, src, log string
		max            int64
		keep           int
	}{
		{"absolute", supervisedHead + "log = \"/var/log/w.log\"\n", "/var/log/w.log", 10 << 20, 5},
		{"relative to dir", supervisedHead + "dir = \"/srv/w\"\nlog = \"logs/w.log\"\n", "/srv/w/logs/w.log", 10 << 20, 5},
		{"relative to serve's directory", supervisedHead + "log = \"w.log\"\n", filepath.Join(cwd, "w.log"), 10 << 20, 5},
		{"none", supervisedHead, "", 10 << 20, 5},
		{"sizes and keep", supervisedHead + "log = \"/l\"\nlog_max_size = \"64KiB\"\nlog_keep = 0\n", "/l", 64 << 10, 0},
		{"from the defaults", "[defaults]\nlog_max_size = 1048576\nlog_keep = 2\n\n" + supervisedHead + "log = \"/l\"\n", "/l", 1 << 20, 2},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			f, err := parse(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			w := f.Workers[0]
			if w.Log != tt.log || int64(w.LogMaxSize) != tt.max || w.LogKeep != tt.keep {
				t.Errorf("log %q, max %d, keep %d; want %q, %d, %d", w.Log, w.LogMaxSize, w.LogKeep, tt.log, tt.max, tt.keep)
			}
			if o := w.SupervisorOptions().Log; o.Path != tt.log || o.MaxSize != tt.max || o.Keep != tt.keep {
				t.Errorf("supervisor's log options %+v", o)
			}
		})
	}
	bad := []struct{ name, src, want string }{
		{"in a watched worker", watchedHead + "log = \"/l\"\n", `test.toml:4: worker "w" log: only allowed in a supervised worker`},
		{"in the defaults", "[defaults]\nlog = \"/l\"\n", "test.toml:2: defaults log: only allowed in a [[worker]] table"},
		{"not a string", supervisedHead + "log = 1\n", `test.toml:4: worker "w" log: got integer 1`},
		{"too small", supervisedHead + "log_max_size = \"1KiB\"\n", `test.toml:4: worker "w" log_max_size: "1KiB" is too small (want at least 65536 (64KiB) bytes)`},
		{"not a size", supervisedHead + "log_max_size = \"big\"\n", `test.toml:4: worker "w" log_max_size: "big" is not a size`},
		{"keep negative", supervisedHead + "log_keep = -1\n", `test.toml:4: worker "w" log_keep: -1 is out of range (want 0 to 1000 old files)`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(tt.src)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %v, want it to begin %q", err, tt.want)
			}
		})
	}
}

// TestControlKeys: [serve] control is an absolute path a socket can have; control_group a
// group of the user database, resolved.
func TestControlKeys(t *testing.T) {
	f, err := parse("[serve]\ncontrol = \"/run/x/c.sock\"\ncontrol_group = \"root\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if f.Serve.Control != "/run/x/c.sock" || f.Serve.ControlGroup == nil || *f.Serve.ControlGroup != 0 {
		t.Errorf("serve %+v", f.Serve)
	}
	if f, err := parse("[serve]\n"); err != nil || f.Serve.Control != "" || f.Serve.ControlGroup != nil {
		t.Errorf("no keys: %+v, %v", f, err)
	}
	long := "/" + strings.Repeat("d", 107)
	bad := []struct{ name, src, want string }{
		{"relative", "[serve]\ncontrol = \"c.sock\"\n", `test.toml:2: serve control: "c.sock" is not absolute`},
		{"too long", "[serve]\ncontrol = \"" + long + "\"\n", "is 108 bytes (want a path of at most 107 bytes"},
		{"no such group", "[serve]\ncontrol_group = \"no-such-group-shmmon\"\n", `test.toml:2: serve control_group: "no-such-group-shmmon": no such group`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
