package config_test

import (
	"fmt"

	"github.com/shmmon/shmmon/config"
)

// Parse resolves every worker over the defaults.
func ExampleParse() {
	f, err := config.Parse("shmmon.toml", []byte(`
[defaults]
interval = "500ms"

[[worker]]
name = "goworker"
command = ["bin/goworker", "-period", "100ms"]
restart = "on-failure"

[[worker]]
name = "db"
pidfile = "/run/db/db.pid"
stalls = 5
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, w := range f.Workers {
		fmt.Printf("%s: supervised=%v interval=%v stalls=%d restart=%q\n", w.Name, w.Supervised(), w.Interval, w.Stalls, w.Restart)
	}
	// Output:
	// goworker: supervised=true interval=500ms stalls=3 restart="on-failure"
	// db: supervised=false interval=500ms stalls=5 restart=""
}

// Every problem of a file is reported, with its line and key.
func ExampleParse_errors() {
	_, err := config.Parse("shmmon.toml", []byte(`
[[worker]]
name = "db"
pidfile = "run/db.pid"
interval = "0s"
restart = "never"

[[worker]]
name = "db"
command = ["bin/db"]
`))
	fmt.Println(err)
	// Output:
	// shmmon.toml:4: worker "db" pidfile: "run/db.pid" is not absolute (want an absolute path, e.g. "/run/app.pid")
	// shmmon.toml:5: worker "db" interval: "0s" must be at least 1ms
	// shmmon.toml:6: worker "db" restart: only allowed in a supervised worker, one with command (this one is watched through pidfile)
	// shmmon.toml:9: worker "db" name: duplicate: worker #1 (line 3) has the same name (want a unique name per worker)
}
