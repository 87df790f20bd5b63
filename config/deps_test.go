package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// depsFile is a file of workers, one per entry of extra (its name first, then its keys).
func depsFile(workers ...string) string {
	var b strings.Builder
	for _, w := range workers {
		name, keys, _ := strings.Cut(w, " ")
		b.WriteString("[[worker]]\nname = \"" + name + "\"\ncommand = [\"bin/w\"]\n")
		if keys != "" {
			b.WriteString(strings.ReplaceAll(keys, "; ", "\n") + "\n")
		}
	}
	return b.String()
}

// TestDependencyKeys: after, binds_to and ready_timeout are read, defaulted and checked; a
// change of them alone does not restart a worker.
func TestDependencyKeys(t *testing.T) {
	f, err := parse("[defaults]\nready_timeout = \"5s\"\n" + depsFile(
		`db ready_timeout = "30s"`,
		`cache`,
		`app after = ["db", "cache"]; binds_to = ["db", "web"]`,
		`web after = ["cache"]`))
	if err != nil {
		t.Fatal(err)
	}
	db, cache, app := f.Workers[0], f.Workers[1], f.Workers[2]
	if db.ReadyTimeout != 30*time.Second || cache.ReadyTimeout != 5*time.Second || db.After != nil || db.BindsTo != nil {
		t.Errorf("db %+v, cache %+v: want ready_timeout 30s and the default 5s, no dependencies", db.Deps, cache.Deps)
	}
	if !slices.Equal(app.After, []string{"db", "cache"}) || !slices.Equal(app.BindsTo, []string{"db", "web"}) ||
		!slices.Equal(app.Needs(), []string{"db", "cache", "web"}) {
		t.Errorf("app: after %q binds_to %q needs %q", app.After, app.BindsTo, app.Needs())
	}
	if d, _ := parse(supervisedHead); d.Workers[0].ReadyTimeout != DefaultReadyTimeout {
		t.Errorf("default ready_timeout %v, want %v", d.Workers[0].ReadyTimeout, DefaultReadyTimeout)
	}
	// A dependency may be watched; a watched worker waits for nothing (serve starts none).
	if _, err := parse(watchedHead + "ready_timeout = \"2s\"\n" + depsFile(`x after = ["w"]`)); err != nil {
		t.Errorf("a supervised worker after a watched one: %v", err)
	}
	b := app.clone()
	b.After, b.BindsTo, b.ReadyTimeout = nil, []string{"x"}, time.Hour
	if app.Equal(b) || !app.EqualExceptLive(b) {
		t.Errorf("dependencies changed: Equal %v EqualExceptLive %v, want false and true", app.Equal(b), app.EqualExceptLive(b))
	}
}

// TestDependencyErrors: each problem is one line, FILE:LINE: KEY, naming the bad value and
// what is accepted; a cycle is listed.
func TestDependencyErrors(t *testing.T) {
	for _, tt := range []struct {
		name, text, want string
	}{
		{"unknown", depsFile(`a`, `b after = ["a", "nope"]`),
			`test.toml:7: worker "b" after: "nope" is not a worker of this file (want the name of another [[worker]])`},
		{"self", depsFile(`a binds_to = ["a"]`),
			`test.toml:4: worker "a" binds_to: "a" is this worker itself (want the name of another [[worker]])`},
		{"cycle", depsFile(`a after = ["b"]`, `b binds_to = ["a"]`),
			`test.toml:8: worker "b" binds_to: a cycle: a -> b -> a (want dependencies that end at workers that need none)`},
		{"long cycle", depsFile(`x`, `a after = ["x", "b"]`, `b after = ["c"]`, `c after = ["a"]`),
			`test.toml:15: worker "c" after: a cycle: a -> b -> c -> a (`},
		{"twice", depsFile(`a`, `b after = ["a", "a"]`), `test.toml:7: worker "b" after: "a" is listed twice (want each worker once)`},
		{"not a list", depsFile(`a`, `b after = "a"`), `test.toml:7: worker "b" after: got string "a" (want an array of worker names, e.g. ["db", "cache"])`},
		{"not a name", depsFile(`a`, `b after = [1]`), `test.toml:7: worker "b" after: element 1: got integer 1 (want a worker's name as a string)`},
		{"watched", depsFile(`a`) + "[[worker]]\nname = \"w\"\npid = 2\nafter = [\"a\"]\n",
			`test.toml:7: worker "w" after: only allowed in a supervised worker, one with command`},
		{"in defaults", "[defaults]\nafter = [\"a\"]\n" + depsFile(`a`), `test.toml:2: defaults after: only allowed in a [[worker]] table`},
		{"timeout", depsFile(`a ready_timeout = "0s"`), `test.toml:4: worker "a" ready_timeout: "0s" must be more than 0`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(tt.text)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("parse:\n%s\ngot  %v\nwant one line starting %s", tt.text, err, tt.want)
			}
		})
	}
}
